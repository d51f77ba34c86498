#!/bin/sh
# The namespace amends runs in (TEMPORAL_NAMESPACE), created once the server answers;
# kept if it exists. Run by the temporal-namespace service of deploy/compose.yaml.
set -eu
until temporal operator cluster health >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention 30d
echo "namespace $TEMPORAL_NAMESPACE is ready"

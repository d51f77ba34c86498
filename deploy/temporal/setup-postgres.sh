#!/bin/sh
# Temporal's two databases on PostgreSQL: persistence and (SQL) visibility, each created
# if missing and its schema brought up to the server image's version. Run by the
# temporal-schema service of deploy/compose.yaml (SQL_PASSWORD from deploy/.env).
set -eu
tool() { temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal "$@"; }
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  tool --db "$db" create || true   # exists already on every run after the first
  tool --db "$db" setup-schema -v 0.0 || true
  tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
done
echo "temporal schemas are up to date"

"""deploy/k8s, the kustomize base, builds and every object it yields is valid by the Kubernetes
schemas; its parts select each other (the PodDisruptionBudget and the metrics Service reach the
workers), the grace period covers the graceful shutdown, and the SLA policy is one a worker loads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import DEPLOY, K8S_VERSIONS, KustomizeError, render, validate_k8s
from worker.config import load_policy

BASE = DEPLOY / "k8s"


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_is_valid_by_the_kubernetes_schemas(version: str):
    objects = render(BASE)
    assert {o["kind"] for o in objects} >= {"Deployment", "PodDisruptionBudget", "Service", "ConfigMap"}
    assert validate_k8s(objects, version) == []


def test_the_schema_check_fails_a_misspelt_field(tmp_path: Path):
    broken = tmp_path / "k8s"
    shutil.copytree(BASE, broken)
    deployment = broken / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("  replicas: 2", "  replica: 2"))
    errors = validate_k8s(render(broken), K8S_VERSIONS[0])
    assert len(errors) == 1 and "'replica' was unexpected" in errors[0]


def test_the_schema_check_fails_a_grace_period_that_is_not_a_number(tmp_path: Path):
    broken = tmp_path / "k8s"
    shutil.copytree(BASE, broken)
    deployment = broken / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("terminationGracePeriodSeconds: 45",
                                                         "terminationGracePeriodSeconds: 45s"))
    errors = validate_k8s(render(broken), K8S_VERSIONS[0])
    assert len(errors) == 1 and "Deployment amends-worker" in errors[0]


def test_the_build_fails_when_the_kustomization_names_a_missing_file(tmp_path: Path):
    broken = tmp_path / "k8s"
    shutil.copytree(BASE, broken)
    (broken / "poddisruptionbudget.yaml").unlink()
    with pytest.raises(KustomizeError, match="poddisruptionbudget.yaml"):
        render(broken)


def test_the_disruption_budget_and_the_metrics_service_select_the_workers():
    objects = by_kind(render(BASE))
    pod_labels = objects["Deployment/amends-worker"]["spec"]["template"]["metadata"]["labels"]
    for selector in (objects["Deployment/amends-worker"]["spec"]["selector"]["matchLabels"],
                     objects["PodDisruptionBudget/amends-worker"]["spec"]["selector"]["matchLabels"],
                     objects["Service/amends-worker-metrics"]["spec"]["selector"]):
        assert selector.items() <= pod_labels.items()
    container = objects["Deployment/amends-worker"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    bind_port = int(env["AMENDS_METRICS_BIND"]["value"].rsplit(":", 1)[1])
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": bind_port}
    assert objects["Service/amends-worker-metrics"]["spec"]["ports"][0]["targetPort"] == "metrics"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}


def test_the_grace_period_covers_the_graceful_shutdown_with_a_margin():
    deployment = by_kind(render(BASE))["Deployment/amends-worker"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in deployment["containers"][0]["env"]}
    assert deployment["terminationGracePeriodSeconds"] >= float(env["AMENDS_GRACEFUL_SHUTDOWN"]) + 10


def test_settings_come_from_generated_config_maps_and_secrets_by_reference():
    objects = by_kind(render(BASE))
    pod = objects["Deployment/amends-worker"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    for source in container["envFrom"]:
        assert f"ConfigMap/{source['configMapRef']['name']}" in objects
    for e in container["env"]:
        secret = e.get("valueFrom", {}).get("secretKeyRef")
        assert secret or "value" in e
        if secret:
            assert secret["name"] == "amends-worker" and secret["key"] == e["name"]
    # Secret values never sit in the base: no Secret object, and only references to them.
    assert not [o for o in objects.values() if o["kind"] == "Secret"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    for var in ("AMENDS_SLA_POLICY", "AMENDS_CODEC_KEYS", "AMENDS_IDENTITY"):
        directory, filename = env[var].rsplit("/", 1)
        volume = volumes[mounts[directory]]
        if "configMap" in volume:
            assert filename in objects[f"ConfigMap/{volume['configMap']['name']}"]["data"]
        else:
            assert volume["secret"]["secretName"].startswith("amends-")


def test_the_sla_policy_config_map_is_a_policy_the_worker_loads(tmp_path: Path):
    data = by_kind(render(BASE))["ConfigMap/amends-sla-policy"]["data"]
    (tmp_path / "sla.toml").write_text(data["sla.toml"])
    policy = load_policy(tmp_path / "sla.toml")
    assert policy.deadlines  # the stages' deadlines, per severity

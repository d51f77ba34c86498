"""deploy/compose.yaml is a valid Compose file (the Compose Specification's schema) and a stack that
holds together: what each service waits for exists, secrets come from files or variables, never
from the file itself, and the workers stop gracefully."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.deploy import DEPLOY, check_compose

COMPOSE = DEPLOY / "compose.yaml"


def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_compose_file_is_valid_by_the_compose_specification():
    result = check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_fails_a_misspelt_key(tmp_path: Path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restarts: unless-stopped\n", 1))
    result = check_compose(broken)
    assert result.returncode != 0
    assert "restarts" in result.stdout + result.stderr


def test_the_schema_check_fails_a_condition_compose_does_not_know(tmp_path: Path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("condition: service_completed_successfully",
                                                  "condition: service_completed"))
    result = check_compose(broken)
    assert result.returncode != 0
    assert "service_completed" in result.stdout + result.stderr


def test_a_temporal_cluster_as_temporals_samples_run_it():
    s = services()
    images = {name: svc.get("image", "") for name, svc in s.items()}
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-schema"].startswith("temporalio/admin-tools:")
    assert images["temporal-namespace"].startswith("temporalio/admin-tools:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["postgresql"].startswith("postgres:")
    assert not any("auto-setup" in image for image in images.values())
    for script in ("setup-postgres.sh", "create-namespace.sh"):
        assert (DEPLOY / "temporal" / script).is_file()
    assert s["temporal"]["environment"]["DB"] == "postgres12"
    # The server's dynamic configuration: each key a list of values, as Temporal reads it.
    dynamic = yaml.safe_load((DEPLOY / "temporal" / "dynamicconfig.yaml").read_text())
    assert dynamic["frontend.enableExecuteMultiOperation"] == [{"value": True}]  # update-with-start


def test_setup_runs_once_before_two_workers():
    s = services()
    assert s["setup"]["command"] == ["setup"]
    assert s["worker"]["command"] == ["worker"] and s["worker"]["deploy"]["replicas"] == 2
    assert s["worker"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert s["setup"]["depends_on"]["temporal-namespace"]["condition"] == "service_completed_successfully"
    assert s["codec-server"]["command"][0] == "codec-server"
    assert "smtp" in s and s["worker"]["environment"]["AMENDS_SMTP_HOST"] == "smtp"


def test_everything_a_service_waits_for_or_mounts_is_declared():
    doc = yaml.safe_load(COMPOSE.read_text())
    for name, svc in doc["services"].items():
        for dep in svc.get("depends_on", {}):
            assert dep in doc["services"], f"{name} waits for {dep}, which is no service"
        for secret in svc.get("secrets", []):
            assert secret in doc["secrets"], f"{name} uses the secret {secret}, which is not declared"
        for config in svc.get("configs", []):
            assert config["source"] in doc["configs"]
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).is_file(), f"{name} mounts {source}, which does not exist"
    assert (COMPOSE.parent / doc["configs"]["sla-policy"]["file"]).is_file()


SECRET_NAME = re.compile(r"PASSWORD|PWD|TOKEN|SECRET|API_KEY")


def test_no_secret_is_written_in_the_file():
    """Every secret-like variable comes from deploy/.env or amends.env (ignored by git), or a secret file."""
    for name, svc in services().items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert str(value).startswith("${"), f"{name}: {key} is written in the compose file"
    ignored = (COMPOSE.parents[1] / ".gitignore").read_text().split()
    assert {"deploy/.env", "deploy/amends.env", "deploy/secrets/"} <= set(ignored)
    for example in (".env.example", "amends.env.example"):
        for line in (DEPLOY / example).read_text().splitlines():
            key, _, value = line.partition("=")
            if SECRET_NAME.search(key) and not line.startswith("#"):
                assert value == "", f"{example}: {key} has a value"


def test_workers_get_longer_to_stop_than_their_graceful_shutdown():
    worker = services()["worker"]
    graceful = int(dict(line.split("=", 1) for line in (DEPLOY / "amends.env.example").read_text().splitlines()
                        if line and not line.startswith("#"))["AMENDS_GRACEFUL_SHUTDOWN"])
    assert int(worker["stop_grace_period"].removesuffix("s")) > graceful

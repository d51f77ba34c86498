"""Every command of deploy/README.md is exercised: those run on the operator's machine are run here
as written, in a copy of deploy/; each `docker compose` command is checked against compose.yaml (the
service exists, the amends command line parses); each `kubectl` command against the kustomize base;
the `temporal` CLI's search attributes against a dev server; `amends setup` is tests/worker/test_setup.py's."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from activities.identity import IdentityConfig
from activities.webhooks import check_secret
from tests.support.deploy import BIN, DEPLOY, ROOT, render, run
from worker.cli import cli as amends_cli
from workflows import search
from workflows.codec import KeyRing

README = DEPLOY / "README.md"
COMPOSE = DEPLOY / "compose.yaml"
# Commands this module does not run, and the test that does.
ELSEWHERE = {"amends setup": ROOT / "tests" / "worker" / "test_setup.py"}


def blocks() -> list[list[str]]:
    """The commands of each ```sh block, a command a line."""
    found = re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.M | re.S)
    return [[line for line in re.sub(r"\\\n\s*", " ", block).splitlines() if line.strip() and not line.startswith("#")]
            for block in found]


def commands(first_word: str) -> list[str]:
    return [c for b in blocks() for c in b if c.split()[0] == first_word]


def test_every_command_is_of_a_kind_this_module_exercises():
    kinds = {"docker", "kubectl", "temporal", "ns=--namespace=\"$TEMPORAL_NAMESPACE\""} | HOST
    for block in blocks():
        for command in block:
            word = command.split()[0]
            assert word in kinds or any(command.startswith(e) for e in ELSEWHERE), command
    assert all(test.is_file() for test in ELSEWHERE.values())


# ---------------------------------------------------------------- on the operator's machine

HOST = {"make", "mkdir", ".venv/bin/amends", ".venv/bin/python", "cp", "printf", "openssl", "cat", "chmod", "sed"}


@pytest.fixture(scope="module")
def operator_copy(tmp_path_factory) -> Path:
    """A copy of the repository's deploy/ after the README's commands ran in it, with this virtualenv."""
    copy = tmp_path_factory.mktemp("repo")
    shutil.copytree(DEPLOY, copy / "deploy", ignore=shutil.ignore_patterns("secrets", ".env", "amends.env"))
    shutil.copytree(ROOT / "worker", copy / "worker", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".venv").symlink_to(Path(BIN).parent)
    for block in blocks():
        for command in block:
            word = command.split()[0]
            if word == "make":
                # The virtualenv is this one, made by the same Makefile rule; the target must exist.
                result = run("make", "-n", *command.split()[1:], cwd=ROOT)
            elif word in HOST:
                result = run("bash", "-c", f"set -euo pipefail; {command}", cwd=copy)
            else:
                continue
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return copy


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def test_the_steps_make_every_file_the_stack_reads(operator_copy: Path):
    compose = yaml.safe_load((operator_copy / "deploy" / "compose.yaml").read_text())
    for name, secret in compose["secrets"].items():
        if "file" in secret:
            assert (operator_copy / "deploy" / secret["file"]).exists(), f"the secret {name} has no file"
    assert (operator_copy / "deploy" / "amends.env").is_file()
    # Every variable compose.yaml requires (${NAME:?...}) is set in deploy/.env.
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    settings = env_file(operator_copy / "deploy" / ".env")
    assert required and all(settings.get(name) for name in required)
    assert len(settings["AMENDS_CODEC_TOKEN"]) >= 16  # amends codec-server's rule


def test_the_keys_and_the_identity_file_are_ones_the_worker_accepts(operator_copy: Path):
    secrets = operator_copy / "deploy" / "secrets"
    assert KeyRing.load(secrets / "codec-keys.toml").current
    identity = IdentityConfig.load(str(secrets / "identity" / "identity.toml"))
    assert [i.issuer for i in identity.issuers] == ["orders-backend"]
    check_secret(env_file(operator_copy / "deploy" / "amends.env")["AMENDS_WEBHOOK_SECRET"], "AMENDS_WEBHOOK_SECRET")


def test_the_workers_trust_the_relay_stand_in_beside_the_public_roots(operator_copy: Path):
    secrets = operator_copy / "deploy" / "secrets"
    bundle = (secrets / "ca-bundle.pem").read_text()
    assert (secrets / "smtp.crt").read_text() in bundle
    assert bundle.count("BEGIN CERTIFICATE") > 100
    subject = run("openssl", "x509", "-in", secrets / "smtp.crt", "-noout", "-ext", "subjectAltName")
    assert "DNS:smtp" in subject.stdout  # the relay's name in compose.yaml, which the workers check
    assert os.stat(secrets).st_mode & 0o077 == 0 and os.stat(secrets / "smtp.key").st_mode & 0o004


# ---------------------------------------------------------------- docker compose

def parse_amends(args: list[str]) -> click.Context:
    ctx = amends_cli.make_context("amends", list(args))
    while isinstance(ctx.command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, rest = ctx.command.resolve_command(ctx, rest)
        assert command is not None and name is not None
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def test_each_docker_compose_command_names_this_stack_and_its_services():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    docker = commands("docker")
    assert docker
    for command in docker:
        words = shlex.split(command)
        assert words[:4] == ["docker", "compose", "-f", "deploy/compose.yaml"], command
        sub, *rest = words[4:]
        if sub == "run":
            assert rest[0] == "--rm", command  # no container left behind
            service, *args = rest[1:]
            assert services[service]["image"] == services["worker"]["image"]
            ctx = parse_amends(args)  # raises click's usage error for a command amends would refuse
            assert ctx.command.name
        elif sub == "logs":
            assert set(rest) <= set(services), command
        else:
            assert sub in {"up", "ps"}, command


def test_the_first_incident_is_opened_with_valid_fields():
    opens = [c for c in commands("docker") if " incident open " in c]
    assert len(opens) == 1
    ctx = parse_amends(shlex.split(opens[0])[7:])
    assert ctx.params["key"] == "order-1001-late" and ctx.params["category"] == "late_delivery"


# ---------------------------------------------------------------- kubectl

def secrets_of(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """The Secrets the base reads, with the keys it reads from each (files of mounted ones: by their path)."""
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    wanted: dict[str, set[str]] = {}
    for e in container["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and not ref.get("optional"):
            wanted.setdefault(ref["name"], set()).add(ref["key"])
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    for volume in pod["volumes"]:
        if "secret" in volume:
            files = {v.rsplit("/", 1)[1] for v in env.values() if v.startswith(mounts[volume["name"]] + "/")}
            wanted.setdefault(volume["secret"]["secretName"], set()).update(files)
    return wanted


def test_the_kubectl_commands_create_the_secrets_the_base_reads(operator_copy: Path):
    wanted = secrets_of(render(DEPLOY / "k8s"))
    created: dict[str, set[str]] = {}
    for command in commands("kubectl"):
        words = shlex.split(command)
        if "secret" in words:
            name = words[words.index("generic") + 1]
            keys: set[str] = set()
            for w in words:
                if w.startswith("--from-env-file="):
                    keys |= set(env_file(operator_copy / w.split("=", 1)[1]))
                elif w.startswith("--from-file="):
                    key, _, path = w.split("=", 1)[1].rpartition("=")
                    source = operator_copy / path
                    keys |= {key} if key else ({p.name for p in source.iterdir()} if source.is_dir() else {source.name})
            created[name] = keys
        elif words[1] == "apply":
            assert words[words.index("-k") + 1] == "deploy/k8s"
    assert set(created) == set(wanted)
    for name, keys in wanted.items():
        assert keys <= created[name], f"the Secret {name} lacks {keys - created[name]}"


# ---------------------------------------------------------------- the temporal CLI

async def test_the_temporal_cli_commands_register_what_amends_setup_would(tmp_path: Path):
    block = next(b for b in blocks() if any(c.startswith("temporal operator search-attribute") for c in b))
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=str(BIN / "temporal"),
                                                dev_server_log_level="error")
    try:
        address = env.client.service_client.config.target_host
        shell_env = {**{k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
                     "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                     "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": env.client.namespace}
        script = tmp_path / "attributes.sh"
        script.write_text("set -euo pipefail\n" + "\n".join(block) + "\n")
        result = run("bash", script, env=shell_env)
        assert result.returncode == 0, result.stderr
        resp = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=env.client.namespace))
        assert dict(resp.custom_attributes) == {k.name: int(k.indexed_value_type) for k in search.ALL}
    finally:
        await env.shutdown()

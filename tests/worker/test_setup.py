"""``amends setup`` against a fresh dev server that knows none of amends' search attributes.

The server is this module's own (the session's ``dev_env`` is started with
the attributes already registered). ``amends setup`` runs as a real process,
awaited with asyncio so the session's event loop stays free.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path

import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.support.codec import ENV as CODEC_ENV
from tests.support.codec import data_converter
from tests.support.identity import IDENTITY_FILE
from worker.setup import unregistered
from workflows import search

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest_asyncio.fixture(scope="module")
async def bare_env():
    """A dev server with no custom search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


async def amends_setup(address: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))}
    env["TEMPORAL_ADDRESS"] = address
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker.cli", "setup", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=REPO,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def custom_attributes(env: WorkflowEnvironment) -> dict[str, int]:
    resp = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=env.client.namespace)
    )
    return dict(resp.custom_attributes)


async def test_setup_twice_registers_once_and_succeeds_both_times(bare_env):
    address = bare_env.client.service_client.config.target_host
    names = [k.name for k in search.ALL]
    assert not set(names) & set(await custom_attributes(bare_env))

    code, out, err = await amends_setup(address)
    assert code == 0, out + err
    assert out.splitlines()[-1] == "10 added, 0 already present", out
    for key in search.ALL:
        assert f"added    {key.name} (" in out, out

    code, out, err = await amends_setup(address)
    assert code == 0, out + err
    assert out.splitlines()[-1] == "0 added, 10 already present", out
    assert "added " not in out

    registered = await custom_attributes(bare_env)
    assert {name: registered.get(name) for name in names} == {
        "RecoveryStage": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Severity": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "IncidentCategory": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "CustomerId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "EscalationLevel": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "StageDeadline": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
        "RedFlagged": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
        "RootCause": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "DeadlinesBreached": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "SecondsToApology": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    }


async def test_a_name_with_another_type_is_refused_by_name(bare_env):
    # A namespace of its own on the same server, where CustomerId is an Int.
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

    namespace = "setup-clash"
    await bare_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    for _ in range(50):  # a new namespace takes a moment to be served
        try:
            await bare_env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace,
                    search_attributes={"CustomerId": IndexedValueType.INDEXED_VALUE_TYPE_INT},
                )
            )
            break
        except Exception:
            await asyncio.sleep(0.2)
    address = bare_env.client.service_client.config.target_host
    code, out, err = await amends_setup(address, "--namespace", namespace)
    assert code == 1, out + err
    assert "CustomerId is Int" in err and "needs Keyword" in err, err
    resp = await bare_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    assert "RecoveryStage" not in resp.custom_attributes  # nothing added on a clash


async def namespace_of_its_own(env: WorkflowEnvironment, namespace: str, attributes: dict[str, int]) -> None:
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    for _ in range(50):  # a new namespace takes a moment to be served
        try:
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=attributes)
            )
            return
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError(f"namespace {namespace} never served")


async def test_the_worker_refuses_a_namespace_without_the_attributes_it_upserts(bare_env):
    """An upgrade: the namespace has the seven filters of before, not the report's three. The worker
    names them and `amends setup` instead of polling (its upserts would fail every incident's task)."""
    namespace = "setup-upgrade"
    await namespace_of_its_own(bare_env, namespace, {
        k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in search.FILTERS})
    address = bare_env.client.service_client.config.target_host
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))} | CODEC_ENV | {
        "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": namespace, "AMENDS_IDENTITY": str(IDENTITY_FILE),
        "AMENDS_CARE_EMAIL": "care@example.com", "AMENDS_STRIPE_API_KEY": "sk_test_amends_setup",
        "AMENDS_STRIPE_API_BASE": "http://127.0.0.1:9",
        "AMENDS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
    }
    worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "worker.cli", "worker", env=env, cwd=REPO,
                                                  stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(worker.communicate(), 60)
    finally:
        if worker.returncode is None:
            worker.kill()
    assert worker.returncode == 2, err.decode()
    assert err.decode().strip() == (
        f"invalid: namespace '{namespace}' lacks search attributes RootCause, DeadlinesBreached, SecondsToApology, "
        "which the workflow upserts: run `amends setup` with the same connection settings (it adds only what is "
        "missing), then start the worker again"
    )

    code, out, err2 = await amends_setup(address, "--namespace", namespace)
    assert code == 0 and out.splitlines()[-1] == "3 added, 7 already present", out + err2
    assert await unregistered(bare_env.client, namespace) == []

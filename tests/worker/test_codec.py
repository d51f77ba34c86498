"""Sealed payloads against a real server: the history holds ciphertext, the codec server and the `temporal` CLI
with it show the plaintext to whoever holds the token, and a key rotation never stops an incident."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from tests.support import codec
from tests.support.factories import AGENT, report
from tests.support.history import history_kinds, raw_text, sealed_payloads
from tests.support.identity import Amends
from tests.support.temporal_cli import TEMPORAL
from worker.main import build_worker
from workflows.client import workflow_id
from workflows.codec import KEY_ID, KeyRing
from workflows.converter import encrypted_converter
from workflows.inputs import ApologyInput, NeedsInput
from workflows.stages import Stage

UI = "http://localhost:8233"  # an origin the codec server allows by default


async def temporal(address: str, *args: str, with_codec: bool) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    extra = ["--codec-endpoint", os.environ["TEMPORAL_CODEC_ENDPOINT"],
             "--codec-auth", f"Bearer {codec.CODEC_TOKEN}"] if with_codec else []
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, "--address", address, "--namespace", "default", *extra, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_the_history_holds_ciphertext_and_the_codec_server_opens_it_for_the_token_only(
        dev_env, dev_worker, settings, codec_server):
    amends = Amends(dev_env.client, settings.task_queue)
    rep = report(None)
    key, email, name = rep.incident_key, rep.customer.email, rep.customer.name
    needs = f"a replacement tent before {key} ships"
    await amends.open_incident(rep)
    await amends.apologise(key, ApologyInput(by=AGENT))
    await amends.record_needs(key, NeedsInput(by=AGENT, needs=needs))

    # Read with no codec at all, as the server stores it.
    address = dev_env.client.service_client.config.target_host
    bare = await Client.connect(address, namespace="default")
    history = (await bare.get_workflow_handle(workflow_id(key)).fetch_history()).to_json()
    raw = raw_text(history)
    for secret in (email, name, needs, "Kevin Lomax", "Olga Brandt", AGENT.name):
        assert secret not in raw, secret
    sealed = sealed_payloads(history)
    assert len(sealed) > 10
    assert {base64.b64decode(p["metadata"][KEY_ID]) for p in sealed} == {codec.CURRENT.encode()}

    url = codec_server.url
    async with httpx.AsyncClient() as http:
        opened = await http.post(f"{url}/decode", json={"payloads": sealed},
                                 headers={"Authorization": f"Bearer {codec.CODEC_TOKEN}", "X-Namespace": "default",
                                          "Origin": UI})
        assert opened.status_code == 200 and opened.headers["Access-Control-Allow-Origin"] == UI
        plain = "\n".join(base64.b64decode(p["data"]).decode() for p in opened.json()["payloads"])
        assert email in plain and name in plain and needs in plain

        refused = await http.post(f"{url}/decode", json={"payloads": sealed})
        assert refused.status_code == 401 and email not in refused.text
        wrong = await http.post(f"{url}/decode", json={"payloads": sealed}, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401

        preflight = await http.options(f"{url}/decode", headers={
            "Origin": UI, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,x-namespace"})
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == UI
        assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization, X-Namespace"

    # The `temporal` CLI shows the open's input and the update's input decrypted with the codec server, and
    # ciphertext without it.
    shown = await temporal(address, "workflow", "show", "--workflow-id", workflow_id(key), "--output", "json",
                           with_codec=True)
    assert email in raw_text(shown) and needs in raw_text(shown)
    hidden = await temporal(address, "workflow", "show", "--workflow-id", workflow_id(key), "--output", "json",
                            with_codec=False)
    assert email not in raw_text(hidden) and needs not in raw_text(hidden)


async def test_a_key_rotation_keeps_incidents_going_and_a_worker_without_the_old_key_only_retries(
        dev_env, settings):
    address = dev_env.client.service_client.config.target_host
    queue = settings.model_copy(update={"task_queue": f"amends-rotation-{id(settings) % 100000}"})

    async def client(keys: dict[str, bytes], current: str) -> Client:
        return await Client.connect(address, namespace="default",
                                    data_converter=encrypted_converter(KeyRing(keys, current)))

    first, second = codec.RING.keys["test-1"], codec.RING.keys["test-2"]
    before = await client({"test-1": first}, "test-1")
    after = await client({"test-1": first, "test-2": second}, "test-2")
    without_old = await client({"test-2": second}, "test-2")
    rep = report(None)
    key = rep.incident_key
    handle = before.get_workflow_handle(workflow_id(key))

    async with build_worker(before, queue):
        await Amends(before, queue.task_queue).open_incident(rep)

    # A worker that lacks the key the incident was opened with fails its workflow task, and retries: the
    # incident itself stays running.
    async with build_worker(without_old, queue):
        step = asyncio.create_task(Amends(after, queue.task_queue).apologise(key, ApologyInput(by=AGENT)))
        for _ in range(200):
            if "workflow_task_failed" in await history_kinds(handle):
                break
            await asyncio.sleep(0.05)
        step.cancel()
    kinds = await history_kinds(handle)
    assert "workflow_task_failed" in kinds and "workflow_execution_failed" not in kinds
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    # After the rotation (test-2 current, test-1 kept to open the old payloads), the incident goes on.
    amends = Amends(after, queue.task_queue)
    async with build_worker(after, queue):
        snap = await amends.snapshot(key)
        if snap.stage == Stage.DETECTED:
            await amends.apologise(key, ApologyInput(by=AGENT))
        snap = await amends.record_needs(key, NeedsInput(by=AGENT, needs="a new tent"))
        assert snap.stage == Stage.NEEDS_GATHERED
    history = (await handle.fetch_history()).to_json()
    ids = [base64.b64decode(p["metadata"][KEY_ID]).decode() for p in sealed_payloads(history)]
    assert "test-1" in ids and "test-2" in ids
    assert ids.index("test-2") > ids.index("test-1")  # sealed with the old key first, the new one after

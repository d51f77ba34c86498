"""A backend with nothing but `curl`: the Temporal server's HTTP API, as docs/http.md shows it.

Every request here is made by the real ``curl`` binary: the payloads are
sealed and opened by the codec server (``POST …/encode`` and ``…/decode``),
the incident is started and its ``opened`` update both waits for it to be
set up and takes the apology (the HTTP API has no update-with-start), a
second step is an update, a refused step comes back with its reason, and a
visibility query over HTTP finds the incident by its stage. Python only builds the JSON and reads the answers,
as a shell script would with ``jq`` and ``base64``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.codec import CODEC_TOKEN
from tests.support.history import history_kinds
from tests.support.temporal_cli import credential

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="needs the curl binary")
BACKEND = {"name": "PHP order desk", "role": "backend"}
COMPLETED = "UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED"


async def curl(*args: str, body: Any = None) -> Any:
    """``curl`` with a JSON body on stdin; its answer, parsed."""
    cmd = [CURL, "-sS", "--fail-with-body", "-H", "Content-Type: application/json", *args]
    if body is not None:
        cmd += ["--data-binary", "@-"]
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(None if body is None else json.dumps(body).encode()), 60)
    assert proc.returncode == 0, f"curl {' '.join(args)} failed ({proc.returncode}): {out.decode()} {err.decode()}"
    return json.loads(out)


class Codec:
    """The codec server, asked with curl: seal before sending, open what comes back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.auth = f"Authorization: Bearer {CODEC_TOKEN}"

    async def seal(self, value: Any) -> dict:
        plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                 "data": base64.b64encode(json.dumps(value).encode()).decode()}
        sealed = await curl("-H", self.auth, "-X", "POST", f"{self.url}/encode", body={"payloads": [plain]})
        return sealed["payloads"][0]

    async def open(self, payload: dict) -> Any:
        opened = await curl("-H", self.auth, "-X", "POST", f"{self.url}/decode", body={"payloads": [payload]})
        return json.loads(base64.b64decode(opened["payloads"][0]["data"]))


async def test_a_backend_with_only_curl_opens_takes_two_steps_and_finds_the_incident(
        dev_env, dev_worker, settings, codec_server):
    api = f"{dev_env.http_url}/api/v1/namespaces/default"
    codec = Codec(codec_server.url)
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    wid = f"incident-{key}"
    report = {
        "incident_key": key,
        "customer": {"customer_id": f"cus-{key}", "name": "Noor Haddad", "email": f"noor.{key}@example.com"},
        "order": {"order_id": "ord-91", "amount_paid": {"amount": 6_500, "currency": "GBP"}},
        "category": "wrong_item", "severity": "medium",
        "what_happened": "We sent you the wrong size of boots.",
        "impact": "You could not wear them on your walking holiday.",
        "detected_at": datetime.now(UTC).isoformat(),
    }
    apology = {"channel": "backend"}
    opening = {"step": "apologise",
               "input": apology | {"credential": await credential(wid, "apologise", apology, BACKEND)}}

    # 1. Open: start the workflow (a retried start finds the running incident: UseExisting), then the opened
    # update, which answers once the incident is set up and takes the apology in the same call. (The HTTP
    # API has no update-with-start: ExecuteMultiOperation is gRPC only.)
    start = {"workflowType": {"name": "IncidentRecovery"}, "taskQueue": {"name": settings.task_queue},
             "input": {"payloads": [await codec.seal(report)]},
             "workflowIdConflictPolicy": "WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING",
             "workflowIdReusePolicy": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY"}
    started = await curl("-X", "POST", f"{api}/workflows/{wid}", body=start)
    assert started["started"] is True
    retried = await curl("-X", "POST", f"{api}/workflows/{wid}", body=start)
    assert "started" not in retried and retried["runId"] == started["runId"]  # JSON leaves out a false

    async def update(name: str, payload: dict) -> dict:
        answer = await curl("-X", "POST", f"{api}/workflows/{wid}/update/{name}", body={
            "workflowExecution": {"workflowId": wid},
            "request": {"meta": {"updateId": str(uuid.uuid4())},
                        "input": {"name": name, "args": {"payloads": [await codec.seal(payload)]}}},
            "waitPolicy": {"lifecycleStage": COMPLETED}})
        return answer["outcome"]

    opened = await update("opened", opening)
    snapshot = await codec.open(opened["success"]["payloads"][0])
    assert snapshot["stage"] == "apologised" and snapshot["sla_ready"] is True

    # 2. The second step: its update, by name, its JSON sealed, with a credential bound to it.
    async def step(name: str, payload: dict) -> dict:
        return await update(name, payload | {"credential": await credential(wid, name, payload, BACKEND)})

    needs = await step("record_needs", {"needs": "the right size before Saturday"})
    assert (await codec.open(needs["success"]["payloads"][0]))["stage"] == "needs_gathered"
    # A refused step says why, sealed like everything else: its message is in the failure's encoded attributes.
    refused = await step("close", {})
    reason = await codec.open(refused["failure"]["encodedAttributes"])
    assert "close refused: the incident is at stage 'needs_gathered'" in reason["message"]

    # The query, and the visibility query on RecoveryStage that finds it.
    queried = await curl("-X", "POST", f"{api}/workflows/{wid}/query/snapshot", body={"query": {"queryType": "snapshot"}})
    timeline = (await codec.open(queried["queryResult"]["payloads"][0]))["timeline"]
    assert [e["step"] for e in timeline if e["step"] != "notice"][-2:] == ["apologise", "record_needs"]
    query = f'RecoveryStage="needs_gathered" AND CustomerId="cus-{key}"'
    for _ in range(50):  # visibility trails the update by a moment
        listed = await curl("-G", f"{api}/workflows", "--data-urlencode", f"query={query}")
        if listed.get("executions"):
            break
        await asyncio.sleep(0.1)
    assert [e["execution"]["workflowId"] for e in listed["executions"]] == [wid]
    assert (await history_kinds(dev_env.client.get_workflow_handle(wid))).count("workflow_execution_started") == 1

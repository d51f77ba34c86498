"""Bad input never hurts: every refusal names the field and the rule, writes nothing, and the
incident takes its next valid step at once. Sent as a backend in any language would: raw JSON
through the Temporal client and through the `temporal` CLI, on the dev server (where a refused
update leaves the history exactly as it was)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

from tests.support.bad_input import mutated
from tests.support.corpus import CORPUS
from tests.support.factories import AGENT, report
from tests.support.history import history_kinds, settled, unwritten
from tests.support.identity import Amends
from tests.support.temporal_cli import cli
from workflows.client import AmendsClient
from workflows.inputs import ApologyInput, IncidentReport, NeedsInput
from workflows.stages import Stage
from workflows.steps import REGISTRY

NON_JSON = RawValue(Payload(metadata={"encoding": b"binary/plain"}, data=b"\x00\x01 not json"))
BROKEN_JSON = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b'{"by": '))


def refusal(err: WorkflowUpdateFailedError | WorkflowFailureError) -> str:
    cause = err.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput", cause
    assert "function-after" not in cause.message and "ContinuedIncident" not in cause.message
    return cause.message


async def opened(amends: AmendsClient) -> tuple[str, object]:
    rep = report(None)
    await amends.open_incident(rep)
    handle = amends.handle(rep.incident_key)
    await settled(handle)
    return rep.incident_key, handle


async def test_null_and_non_json_inputs_are_refused_naming_the_input(dev_env, dev_worker, settings):
    amends = Amends(dev_env.client, settings.task_queue)
    key, handle = await opened(amends)
    before = await history_kinds(handle)
    for name in REGISTRY:
        for arg in (None, NON_JSON, BROKEN_JSON):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(name, arg)
            message = refusal(err.value)
            if arg is BROKEN_JSON:
                assert message.startswith("input: Invalid JSON"), message
            else:
                assert message.startswith(f"{name} needs its input: a JSON object ({REGISTRY[name].input.__name__}")
    assert unwritten(before, await history_kinds(handle))
    snap = await amends.apologise(key, ApologyInput(by=AGENT))
    assert snap.stage == Stage.APOLOGISED
    assert "workflow_task_failed" not in await history_kinds(handle)


BAD_OPENS = {
    "missing field": (lambda d: d.pop("impact"), "impact: Field required"),
    "bad email": (lambda d: d["customer"].update(email="alex(at)example"), "customer.email: value is not a valid email"),
    "naive time": (lambda d: d.update(detected_at="2026-11-20T09:30:00"), "detected_at: Input should have timezone info"),
    "unknown enum": (lambda d: d.update(severity="apocalyptic"), "severity: Input should be 'low', 'medium', 'high' or"),
    "extra field": (lambda d: d.update(priority="urgent"), "priority: Extra inputs are not permitted"),
    "float amount": (lambda d: d["order"]["amount_paid"].update(amount=80.0), "order.amount_paid.amount: Input should be"),
    "line break in a name": (lambda d: d["customer"].update(name="Alex\r\nRivera"), "customer.name: must be a single line"),
}


@pytest.mark.parametrize("broken", list(BAD_OPENS))
async def test_a_malformed_open_is_refused_readably_and_the_key_opens_once_corrected(dev_env, dev_worker, settings,
                                                                                    broken):
    amends = Amends(dev_env.client, settings.task_queue)
    rep = report(None)
    raw = rep.model_dump(mode="json")
    breaks, reason = BAD_OPENS[broken]
    breaks(raw)
    handle = await dev_env.client.start_workflow(
        "IncidentRecovery", raw, id=f"incident-{rep.incident_key}", task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert reason in refusal(failed.value)
    snap = await amends.open_incident(rep)  # the same key, corrected
    assert snap.stage == Stage.DETECTED and snap.report.incident_key == rep.incident_key


async def test_a_corpus_of_bad_json_is_refused_field_by_field_by_client_and_cli(dev_env, dev_worker, settings):
    assert len(CORPUS) >= 60
    amends = Amends(dev_env.client, settings.task_queue)
    key, handle = await opened(amends)
    before = await history_kinds(handle)
    for step, doc, field in CORPUS:
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(step, doc)
        assert field in refusal(err.value), (step, doc)
        assert unwritten(before, await history_kinds(handle)), f"{step} wrote history: {field}"
    lanes = asyncio.Semaphore(4)  # four `temporal` processes at a time, as backends would send them

    async def by_cli(step: str, doc: object, field: str) -> None:
        async with lanes:
            ran = await cli(dev_env, "workflow", "update", "execute", "--workflow-id", f"incident-{key}",
                            "--name", step, "--input", json.dumps(doc), check=False)
        assert ran.returncode != 0 and field in ran.stdout + ran.stderr, (step, doc, ran.stderr[-300:])

    await asyncio.gather(*(by_cli(step, doc, field) for step, doc, field in CORPUS))
    assert unwritten(before, await history_kinds(handle))
    snap = await amends.apologise(key, ApologyInput(by=AGENT))
    assert snap.stage == Stage.APOLOGISED and "workflow_task_failed" not in await history_kinds(handle)


def _draw(count: int) -> list[tuple[str, object]]:
    """``count`` mutated payloads across every update's input, drawn by hypothesis."""
    drawn: list[tuple[str, object]] = []

    @hsettings(max_examples=count, database=None, deadline=None, derandomize=True,
               suppress_health_check=list(HealthCheck))
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(REGISTRY)))
        drawn.append((name, data.draw(mutated(name))))

    collect()
    return drawn


async def test_a_thousand_generated_payloads_neither_wedge_an_incident_nor_pass_when_invalid(
        dev_env, dev_worker, settings):
    payloads = _draw(1_000)
    assert len(payloads) >= 1_000
    amends = Amends(dev_env.client, settings.task_queue)
    key, handle = await opened(amends)
    started, accepted_invalid = time.monotonic(), []
    invalid = 0
    for name, doc in payloads:
        try:
            REGISTRY[name].input.model_validate_json(json.dumps(doc))
        except ValidationError:
            invalid += 1
    # Eight at a time, as a busy backend would send them (the server allows ten updates in flight per
    # incident): each is refused or taken on its own.
    lanes = asyncio.Semaphore(8)

    async def send(name: str, doc: object) -> None:
        try:
            REGISTRY[name].input.model_validate_json(json.dumps(doc))
            valid = True
        except ValidationError:
            valid = False
        async with lanes:
            try:
                await handle.execute_update(name, doc)
                if not valid:
                    accepted_invalid.append((name, doc))
            except WorkflowUpdateFailedError as err:
                assert isinstance(err.cause, ApplicationError), err.cause  # a refusal, never a crash

    await asyncio.gather(*(send(name, doc) for name, doc in payloads))
    assert accepted_invalid == []
    # Most are broken (a dropped optional field, such as by or credential, still decodes).
    assert invalid >= 750
    # Not wedged: no workflow task ever failed, and the incident still takes a valid step at once.
    kinds = await history_kinds(handle)
    assert "workflow_task_failed" not in kinds
    snap = await amends.snapshot(key)
    if snap.stage == Stage.DETECTED:
        snap = await amends.apologise(key, ApologyInput(by=AGENT))
    if snap.stage == Stage.APOLOGISED:
        snap = await amends.record_needs(key, NeedsInput(by=AGENT, needs="a working tent"))
    assert snap.stage in (Stage.NEEDS_GATHERED, Stage.REMEDY_AGREED)
    print(f"\n{len(payloads)} generated payloads ({invalid} invalid) in {time.monotonic() - started:.1f} s")


async def test_generated_opens_that_are_invalid_fail_at_once_and_never_burn_their_key(dev_env, dev_worker, settings):
    drawn: list[object] = []

    @hsettings(max_examples=60, database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(mutated("open"))
    def collect(doc: object) -> None:
        drawn.append(doc)

    collect()
    invalid = []
    for doc in drawn:
        try:
            IncidentReport.model_validate_json(json.dumps(doc))  # valid: an ordinary open, tested elsewhere
        except ValidationError:
            invalid.append(doc)
    assert len(invalid) >= 30
    lanes = asyncio.Semaphore(8)  # eight at a time, as a busy backend would open them: each its own incident

    async def refused_then_opened(doc: object) -> None:
        key = f"gen-{uuid.uuid4().hex[:10]}"
        async with lanes:
            handle = await dev_env.client.start_workflow(
                "IncidentRecovery", doc, id=f"incident-{key}", task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
            refusal(failed.value)
            await Amends(dev_env.client, settings.task_queue).open_incident(report(None, key=key))

    await asyncio.gather(*(refused_then_opened(doc) for doc in invalid))

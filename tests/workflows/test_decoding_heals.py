"""An activity result the workflow cannot read (a rolling deploy gone wrong) holds the incident, it
does not end it: the workflow task fails and retries, and a corrected worker carries on."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import PayloadCodec

from tests.support.codec import CODEC, data_converter
from tests.support.factories import report
from tests.support.history import history_kinds
from tests.support.identity import Amends
from tests.support.steps import agreed_refund, wait_for
from worker.main import activities_for, build_worker
from workflows.payloads import RefundRequest
from workflows.stages import Stage

NEW_SHAPE = b'"amount":"3000"'  # what a newer refund activity sends: an amount as a string


@activity.defn(name="refund_payment")
async def refund_of_a_newer_worker(req: RefundRequest) -> dict[str, object]:
    return {"refund_id": "re_newer_worker", "amount": {"amount": str(req.amount.amount), "currency": "USD"}}


class ReadsTheNewShape(PayloadCodec):
    """The corrected worker's fix: it reads the newer activity's amounts (once the suite's codec opened them)."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await CODEC.encode(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = await CODEC.decode(payloads)
        return [Payload(metadata=p.metadata, data=p.data.replace(NEW_SHAPE, b'"amount":3000')) for p in opened]


async def test_an_unreadable_activity_result_fails_the_task_and_a_corrected_worker_carries_on(dev_env, settings):
    queue = settings.model_copy(update={"task_queue": f"amends-decode-{id(settings) % 100000}"})
    old = [a for a in activities_for(queue) if getattr(a, "__temporal_activity_definition").name != "refund_payment"]
    amends = Amends(dev_env.client, queue.task_queue, read_back=False)  # its workflow task fails on purpose
    rep = report("pi_not_used_here")
    key = rep.incident_key
    async with build_worker(dev_env.client, queue, activities=[*old, refund_of_a_newer_worker]):
        await agreed_refund(amends, rep, 3_000)
        for _ in range(200):
            if "workflow_task_failed" in await history_kinds(amends.handle(key)):
                break
            await asyncio.sleep(0.05)
    kinds = await history_kinds(amends.handle(key))
    assert "workflow_task_failed" in kinds and "workflow_execution_failed" not in kinds
    assert (await amends.handle(key).describe()).status == WorkflowExecutionStatus.RUNNING

    mended = dataclasses.replace(data_converter, payload_codec=ReadsTheNewShape())
    fixed = await Client.connect(dev_env.client.service_client.config.target_host, namespace="default",
                                 data_converter=mended)
    async with build_worker(fixed, queue):
        snap = await wait_for(Amends(fixed, queue.task_queue), key, lambda s: s.stage == Stage.FULFILLED,
                              tries=600)
    assert snap.money_moved[0].reference == "re_newer_worker"

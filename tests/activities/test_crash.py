"""Money moves once even when the worker dies between Stripe's answer and Temporal's record of it."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest

from tests.support.factories import AGENT, CUSTOMER, paid_intent, report
from tests.support.identity import Amends
from tests.support.steps import take, wait_for
from tests.support.workers import start_worker
from workflows.inputs import AcceptInput, RemedyProposal
from workflows.stages import Stage

ROUNDS = 20


async def crash_rounds(env, settings, stripe, pause_dir: Path, lane: int, rounds: range) -> None:
    task_queue = f"amends-crash-{lane}-{uuid.uuid4().hex[:6]}"
    amends = Amends(env.client, task_queue)
    for n in rounds:
        pausing = await start_worker(env, settings, task_queue, pause_dir)
        pi = await paid_intent(stripe, 5_000)
        rep = report(pi, amount=5_000)
        key = rep.incident_key
        await amends.open_incident(rep)
        for step in ("apologise", "record_needs"):
            await take(amends, key, step)
        await amends.propose_remedy(key, RemedyProposal(
            by=AGENT, items=[{"kind": "refund", "amount": {"amount": 1_000 + n, "currency": "USD"}}]))
        await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
        marker = pause_dir / f"incident-{key}_remedy-1_item-1"
        for _ in range(600):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert marker.exists(), f"round {n}: the refund never reached Stripe"
        pausing.send_signal(signal.SIGKILL)  # Stripe has refunded; Temporal has not heard of it
        await pausing.wait()

        healthy = await start_worker(env, settings, task_queue, None)
        try:
            # Temporal notices the dead worker by the missed heartbeat and retries.
            snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED, tries=800)
        finally:
            healthy.send_signal(signal.SIGTERM)
            await healthy.wait()
        refunds = (await stripe.v1.refunds.list_async(params={"payment_intent": pi})).data
        assert [r.amount for r in refunds] == [1_000 + n], f"round {n}"
        assert refunds[0].id == marker.read_text() == snap.money_moved[0].reference
        assert refunds[0].metadata["amends_key"] == f"incident-{key}/remedy-1/item-1"


@pytest.mark.timeout(900)
async def test_kill_9_mid_refund_twenty_times_leaves_one_refund_each(dev_env, settings, stripe, tmp_path):
    # Four lanes, each with its own worker process and task queue, so the
    # twenty heartbeat timeouts overlap; each round is still its own kill -9.
    lanes = 4
    await asyncio.gather(*(
        crash_rounds(dev_env, settings, stripe, tmp_path, lane, range(lane, ROUNDS, lanes)) for lane in range(lanes)
    ))

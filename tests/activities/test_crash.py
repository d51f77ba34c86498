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
from worker.main import build_worker
from workflows.inputs import AcceptInput, RemedyProposal
from workflows.stages import Stage

ROUNDS = 4


async def crash_rounds(env, settings, stripe, pause_dir: Path, lane: int, rounds: range) -> None:
    task_queue = f"amends-crash-{lane}-{uuid.uuid4().hex[:6]}"
    amends = Amends(env.client, task_queue)
    for n in rounds:
        pausing = await start_worker(env, settings, task_queue, pause_dir)
        try:
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
        finally:
            pausing.send_signal(signal.SIGKILL)  # Stripe has refunded; Temporal has not heard of it
            await pausing.wait()

        # The plain amends worker takes over, here in this process (only the one killed needs its own).
        async with build_worker(env.client, settings.model_copy(update={"task_queue": task_queue})):
            # Temporal notices the dead worker by the missed heartbeat and retries.
            snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED, tries=800)
        refunds = (await stripe.v1.refunds.list_async(params={"payment_intent": pi})).data
        assert [r.amount for r in refunds] == [1_000 + n], f"round {n}"
        assert refunds[0].id == marker.read_text() == snap.money_moved[0].reference
        assert refunds[0].metadata["amends_key"] == f"incident-{key}/remedy-1/item-1"


@pytest.mark.timeout(300)
async def test_kill_9_mid_refund_four_times_at_once_leaves_one_refund_each(dev_env, settings, stripe, tmp_path):
    """Four kill -9s, in four lanes at once (each its own worker process and task queue, one localstripe).

    The kill lands at the same point every time, not at a random one: the pausing worker's refund
    activity has had Stripe's answer and written its marker, then hangs until killed; Temporal has not
    heard of it. So every round takes the one path this guards (the heartbeat times out, the retry on a
    fresh worker finds the refund by its idempotency key in Stripe and moves no money), and more rounds
    only repeat it: this test used to run twenty (five per lane, one after another, each a worker start,
    a heartbeat timeout and a sticky-queue timeout: two minutes on a quiet machine) on exactly the same
    path. The four overlap, so retries look up refunds while other incidents' refunds are being made
    against the same Stripe.
    """
    lanes = 4
    await asyncio.gather(*(
        crash_rounds(dev_env, settings, stripe, tmp_path, lane, range(lane, ROUNDS, lanes)) for lane in range(lanes)
    ))

"""Money moves once even when the worker dies between Stripe's answer and Temporal's record of it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers import AGENT, CUSTOMER, paid_intent, report
from tests.workflows.test_guards import take, wait_for
from workflows.client import AmendsClient
from workflows.inputs import AcceptInput, RemedyProposal
from workflows.stages import Stage

ROUNDS = 20
ROOT = Path(__file__).resolve().parents[2]


async def start_worker(env, settings, task_queue: str, pause_dir: Path | None, extra_env: dict | None = None):
    environ = {
        **os.environ,
        **(extra_env or {}),
        "AMENDS_TASK_QUEUE": task_queue,
        "AMENDS_STRIPE_API_KEY": settings.stripe_api_key,
        "AMENDS_STRIPE_API_BASE": settings.stripe_api_base,
        "AMENDS_SMTP_HOST": settings.mail.host,
        "AMENDS_SMTP_PORT": str(settings.mail.port),
    }
    args = [sys.executable, "-m", "tests.crash_worker", "--address", env.client.service_client.config.target_host]
    if pause_dir:
        args += ["--pause-after-refund", str(pause_dir)]
    proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=environ, stdout=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"worker ready", line
    return proc


async def crash_rounds(env, settings, stripe, pause_dir: Path, lane: int, rounds: range) -> None:
    task_queue = f"amends-crash-{lane}-{uuid.uuid4().hex[:6]}"
    amends = AmendsClient(env.client, task_queue)
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
        await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email"))
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

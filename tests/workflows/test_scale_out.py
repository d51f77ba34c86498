"""Scale-out: three `amends worker` processes on one task queue; one is killed with kill -9 mid-run.

Every incident still completes, and nothing happens twice: one refund per
incident in Stripe (localstripe), one of each notice per customer in the
mail sink (one message: a resend after the kill is the same message, by
its Message-ID), each step once in the timeline. The throughput with one and with three workers is measured by
``bench/scale_out.py``, not here: tests assert behaviour, never timings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.support.codec import ENV as CODEC_ENV
from tests.support.factories import AGENT, CUSTOMER, paid_intent, report
from tests.support.identity import IDENTITY_FILE, Amends
from tests.support.mail import mail_to
from tests.support.servers import WEBHOOK_SECRET
from tests.support.steps import wait_for
from workflows.inputs import AcceptInput, ApologyInput, CloseInput, NeedsInput, RemedyProposal
from workflows.stages import Stage

AMENDS = Path(sys.executable).parent / "amends"
INCIDENTS = 9
WORKERS = 3


async def start_amends_worker(dev_env, settings, webhook_sink, queue: str, log: Path) -> asyncio.subprocess.Process:
    """`amends worker`, configured from the environment as a deployment's replica is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))} | CODEC_ENV
    env.update(
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host, AMENDS_TASK_QUEUE=queue,
        AMENDS_IDENTITY=str(IDENTITY_FILE), AMENDS_CARE_EMAIL="care@example.com", AMENDS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        AMENDS_SMTP_HOST=settings.mail.host, AMENDS_SMTP_PORT=str(settings.mail.port), AMENDS_SMTP_STARTTLS="false",
        AMENDS_STRIPE_API_KEY=settings.stripe_api_key, AMENDS_STRIPE_API_BASE=settings.stripe_api_base,
        **{f"AMENDS_{target.upper()}_URL": url for target, url in settings.webhooks.urls.items()},
    )
    with open(log, "wb") as out:
        return await asyncio.create_subprocess_exec(str(AMENDS), "worker", env=env, stdout=out, stderr=out,
                                                    stdin=asyncio.subprocess.DEVNULL)


async def polling(proc: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(600):
        assert proc.returncode is None, f"amends worker exited ({proc.returncode}):\n{log.read_text()}"
        if "worker polling task queue" in log.read_text():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"amends worker never polled:\n{log.read_text()}")


async def identities(handle) -> set[str]:
    """Which worker processes (their identities, pid@host) took this incident's workflow and activity tasks."""
    seen = set()
    async for event in handle.fetch_history_events():
        for kind in ("workflow_task_started_event_attributes", "activity_task_started_event_attributes"):
            if event.HasField(kind):
                seen.add(getattr(event, kind).identity)
    return seen


@pytest.mark.timeout(300)
async def test_three_workers_one_killed_every_incident_completes_once(dev_env, settings, stripe, mail_sink,
                                                                     webhook_sink, tmp_path):
    queue = f"amends-scale-{uuid.uuid4().hex[:6]}"
    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    workers = [await start_amends_worker(dev_env, settings, webhook_sink, queue, log) for log in logs]
    try:
        await asyncio.gather(*(polling(w, log) for w, log in zip(workers, logs, strict=True)))
        amends = Amends(dev_env.client, queue)
        accepted = 0
        kill_now = asyncio.Event()

        async def one(n: int) -> tuple[str, str, str]:
            nonlocal accepted
            pi = await paid_intent(stripe, 6_000)
            rep = report(pi, amount=6_000)
            key = rep.incident_key
            await amends.open_incident(rep, then=ApologyInput(by=AGENT, channel="backend"))
            await amends.record_needs(key, NeedsInput(by=AGENT, needs="my money back for the late tent"))
            await amends.propose_remedy(key, RemedyProposal(
                by=AGENT, items=[{"kind": "refund", "amount": {"amount": 1_500 + n, "currency": "USD"}}]))
            await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
            accepted += 1
            if accepted >= INCIDENTS // 3:
                kill_now.set()  # refunds, notices and workflow tasks are in flight on every worker
            await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED, tries=1200)
            snap = await amends.close(key, CloseInput(by=AGENT))
            assert snap.stage == Stage.CLOSED
            return key, pi, rep.customer.email

        async def kill_one() -> None:
            await kill_now.wait()
            workers[0].send_signal(signal.SIGKILL)
            await workers[0].wait()

        *done, _ = await asyncio.gather(*(one(n) for n in range(INCIDENTS)), kill_one())
        assert workers[0].returncode == -signal.SIGKILL

        for n, (key, pi, email) in enumerate(done):
            refunds = (await stripe.v1.refunds.list_async(params={"payment_intent": pi})).data
            assert [r.amount for r in refunds] == [1_500 + n], key
            assert refunds[0].metadata["amends_key"] == f"incident-{key}/remedy-1/item-1"
            # A notice the killed worker was sending is sent again once its attempt times out (30 s).
            await mail_to(mail_sink, email, "closing", tries=1200)
            # One message per notice. SMTP has no idempotency: a worker killed after the relay took a message
            # but before its activity was recorded sends it again, as the same message (its Message-ID is
            # stable), which mail clients show once.
            notices = Counter(m["X-Amends-Notice"] for m in {m["Message-ID"]: m for m in mail_sink.to(email)}.values())
            assert set(notices) >= {"apology", "proposal", "closing"} and set(notices.values()) == {1}, (key, notices)
            timeline = [e.step for e in (await amends.snapshot(key)).timeline]
            assert [timeline.count(s) for s in ("apologise", "accept_remedy", "close")] == [1, 1, 1], timeline
        # The killed worker was serving the queue when it died.
        served = set().union(*[await identities(amends.handle(key)) for key, _, _ in done])
        assert any(i.startswith(f"{workers[0].pid}@") for i in served), served
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await asyncio.wait_for(worker.wait(), 60)

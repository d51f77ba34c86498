"""A worker stopped during a send (a deploy's SIGTERM) lets the send finish before it exits."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.support.codec import ENV as CODEC_ENV
from tests.support.factories import AGENT, report
from tests.support.identity import IDENTITY_FILE, Amends
from tests.support.servers import WEBHOOK_SECRET
from worker.mailsink import MailSink
from worker.processes import free_port
from workflows.inputs import ApologyInput

AMENDS = Path(sys.executable).parent / "amends"


class SlowRelay(MailSink):
    """A relay that takes its time over each message, and says when one has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.begun = threading.Event()  # the relay runs in a thread (and event loop) of its own

    async def handle_DATA(self, server, session, envelope) -> str:
        self.begun.set()
        await asyncio.sleep(4)
        return await super().handle_DATA(server, session, envelope)


async def test_sigterm_during_a_send_lets_it_finish_before_the_worker_exits(dev_env, settings):
    relay = SlowRelay()
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    queue = f"amends-shutdown-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))} | CODEC_ENV
    env.update(
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host, AMENDS_TASK_QUEUE=queue,
        AMENDS_IDENTITY=str(IDENTITY_FILE), AMENDS_CARE_EMAIL="care@example.com", AMENDS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        AMENDS_SMTP_HOST="127.0.0.1", AMENDS_SMTP_PORT=str(port), AMENDS_GRACEFUL_SHUTDOWN="20",
        AMENDS_STRIPE_API_KEY=settings.stripe_api_key, AMENDS_STRIPE_API_BASE=settings.stripe_api_base,
    )
    worker = await asyncio.create_subprocess_exec(str(AMENDS), "worker", env=env, stderr=asyncio.subprocess.PIPE)
    try:
        amends = Amends(dev_env.client, queue)
        rep = report(None)
        key = rep.incident_key
        await amends.open_incident(rep)
        await amends.apologise(key, ApologyInput(by=AGENT))
        for _ in range(600):
            if relay.begun.is_set():
                break
            await asyncio.sleep(0.05)
        assert relay.begun.is_set() and not relay.messages
        worker.send_signal(signal.SIGTERM)  # mid-send: the relay is still reading the apology
        assert await asyncio.wait_for(worker.wait(), 60) == 0
        # The apology arrived whole, and its activity completed rather than being cut off.
        assert [m["X-Amends-Notice"] for m in relay.to(rep.customer.email)] == ["apology"]
        assert await outcome_of(amends.handle(key), "send_notice") == ["completed"]
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        controller.stop()


async def outcome_of(handle, activity: str) -> list[str]:
    """How each run of ``activity`` ended in the history (completed, failed, timed_out, ...)."""
    scheduled, outcomes = set(), []
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            if event.activity_task_scheduled_event_attributes.activity_type.name == activity:
                scheduled.add(event.event_id)
        elif kind.startswith("activity_task_") and kind.removeprefix("activity_task_").removesuffix(
                "_event_attributes") not in ("scheduled", "started"):
            attrs = getattr(event, kind)
            if attrs.scheduled_event_id in scheduled:
                outcomes.append(kind.removeprefix("activity_task_").removesuffix("_event_attributes"))
    return outcomes

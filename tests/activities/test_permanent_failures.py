"""Failures that will not heal are not retried: the relay refusing an address for good reaches a human at once."""

from __future__ import annotations

import uuid

from aiosmtpd.controller import Controller

from tests.support.factories import AGENT, report
from tests.support.identity import Amends
from tests.support.mail import mail_to
from tests.support.servers import time_skipping
from tests.support.steps import wait_for
from worker.mailsink import MailSink
from worker.processes import free_port
from workflows.inputs import ApologyInput


class BouncingRelay(MailSink):
    """Refuses, for good (550), every address with "bounce" in it; keeps the rest."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if "bounce" in address:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_an_address_refused_for_good_is_not_retried_and_a_human_hears_at_once(settings):
    relay, port = BouncingRelay(), free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    bouncing = settings.model_copy(update={
        "task_queue": f"amends-bounce-{uuid.uuid4().hex[:6]}", "mail": settings.mail.model_copy(update={"port": port}),
    })
    try:
        async with time_skipping(bouncing) as env:
            amends = Amends(env.client, bouncing.task_queue, env=env)
            rep = report(None, customer={"customer_id": "cus-b", "name": "Alex Rivera",
                                         "email": f"bounce.{uuid.uuid4().hex[:6]}@example.com"})
            key = rep.incident_key
            await amends.open_incident(rep)
            await amends.apologise(key, ApologyInput(by=AGENT))
            snap = await wait_for(amends, key, lambda s: any(e.step == "notice_failed" for e in s.timeline))
            failed = next(e for e in snap.timeline if e.step == "notice_failed")
            assert failed.detail.startswith("apology notice not sent: the mail relay refused")
            # The owner hears, with the reason, and the apology was tried once, not for an hour.
            told = await mail_to(relay, rep.owner.email, kind="notice_failed")
            assert "refused" in told[0].get_body(("plain",)).get_content()
            attempts = [e async for e in amends.handle(key).fetch_history_events()
                        if e.WhichOneof("attributes") == "activity_task_failed_event_attributes"]
            assert len(attempts) == 1 and attempts[0].activity_task_failed_event_attributes.failure.application_failure_info.non_retryable
    finally:
        controller.stop()

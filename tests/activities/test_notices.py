"""Customer notices speak as "we", reach the customer, and never name a member of staff."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.exceptions import ApplicationError

from activities.notices import MailSettings, render
from tests.support.factories import AGENT, EVERY_STAFF_NAME, OWNER, STAFF_AT_FAULT, report
from tests.support.identity import Amends
from tests.support.mail import mail_to, text_of, unsigned
from tests.support.servers import time_skipping
from tests.support.steps import wait_for
from worker.processes import free_port
from workflows.inputs import ApologyInput, Contact
from workflows.payloads import Notice


def notice(kind: str, **context) -> Notice:
    base = {
        "customer_name": "Alex Rivera", "order_id": "ord-1", "detected_on": "2026-01-02",
        "what_happened": "Kevin mislabelled the parcel, said Rita Moreno.", "impact": "You waited a week.",
        "remedy": [], "refunded": "", "preventive_actions": [], "remedy_summary": [], "gift": "", "gift_code": "",
    }
    return Notice(
        kind=kind, audience="customer", to=Contact(name="Alex Rivera", email="alex@example.com"),
        message_id="m-1", context={**base, **context}, redact=["Kevin Lomax", "Rita Moreno"],
    )


def test_staff_names_are_replaced_in_every_customer_notice():
    for kind in ("apology", "proposal", "closing", "anniversary"):
        subject, body = render(notice(kind), MailSettings(company="Acme Outdoor"))
        text = subject + body
        assert "Kevin" not in text and "Rita" not in text and "Moreno" not in text
        assert "We" in text or "we" in text
    _, body = render(notice("apology"), MailSettings())
    assert "What happened: Our team mislabelled the parcel, said our team." in body


def test_the_templates_own_words_never_stop_a_notice():
    # The company is named after someone at fault: the template's words are
    # the company's, not an input's, so the notice goes out as written.
    subject, body = render(notice("apology"), MailSettings(company="Rita Moreno Outfitters"))
    assert body.rstrip().endswith("Rita Moreno Outfitters")
    assert "What happened: Our team mislabelled the parcel, said our team." in body


def test_a_notice_whose_inputs_still_name_staff_is_never_sent(monkeypatch):
    # Should redaction miss a name, the check of the rendered input text
    # catches it: a permanent failure, handed to a human at once.
    from activities import notices

    monkeypatch.setattr(notices, "redact", lambda value, pattern, **_: value)
    with pytest.raises(ApplicationError, match="apology notice would name a member of staff") as err:
        render(notice("apology"), MailSettings(company="Acme Outdoor"))
    assert err.value.type == "TemplateError" and err.value.non_retryable


async def test_the_apology_reaches_the_customer_and_names_no_staff(ts_env, ts_worker, settings, mail_sink):
    amends = Amends(ts_env.client, settings.task_queue)
    rep = report("pi_unused")
    await amends.open_incident(rep)
    await amends.apologise(rep.incident_key, ApologyInput(by=AGENT, channel="phone"))
    for _ in range(100):
        mails = mail_sink.to(rep.customer.email)
        if mails:
            break
        await asyncio.sleep(0.05)
    [apology] = mails
    assert apology["X-Amends-Notice"] == "apology"
    assert apology["To"].addresses[0].addr_spec == rep.customer.email
    assert apology["From"].addresses[0].display_name == "Acme Outdoor"
    assert apology["Subject"] == f"We are sorry about your order {rep.order.order_id}"
    body = text_of(apology)
    assert rep.what_happened in body and rep.impact in body
    # Signed by the owner, who takes the reply; no one else of staff is named.
    assert " ".join(body.split()).endswith(
        f"it goes straight to {OWNER} ({rep.owner.email}), who is looking after this for you. "
        f"With our apologies, {OWNER} Acme Outdoor")
    assert apology["Reply-To"].addresses[0].addr_spec == rep.owner.email
    for name in EVERY_STAFF_NAME:
        for part in name.split():
            assert part not in unsigned(body) and part not in apology["Subject"]
    # The timeline says it was sent once it was, not when the agent's step queued it.
    snap = await wait_for(amends, rep.incident_key, lambda s: s.timeline[-1].step == "notice")
    apologised, sent = snap.timeline[-2:]
    assert apologised.step == "apologise" and apologised.detail == "apologised; the written apology follows by e-mail"
    assert sent.detail == "apology e-mailed to the customer" and sent.channel == "email"


async def test_with_the_owner_among_the_people_involved_the_care_team_signs(ts_env, ts_worker, settings, mail_sink):
    amends = Amends(ts_env.client, settings.task_queue)
    rep = report("pi_unused", staff_involved=[*STAFF_AT_FAULT, "Brandt, Olga"])
    await amends.open_incident(rep)
    await amends.apologise(rep.incident_key, ApologyInput(by=AGENT, channel="phone"))
    [apology] = await mail_to(mail_sink, rep.customer.email, "apology")
    body = " ".join(text_of(apology).split())
    care = settings.mail.care
    assert f"it goes straight to {care.name} ({care.email})" in body
    assert body.endswith(f"{care.name} Acme Outdoor")
    assert apology["Reply-To"].addresses[0].addr_spec == care.email
    assert "Olga" not in body and "Brandt" not in body


async def test_a_notice_that_cannot_be_sent_hands_the_incident_to_a_human(ts_env, settings, mail_sink, monkeypatch):
    """A report that names staff to the customer got past the open (a backend
    that does not use amends' client) and redaction missed it: the apology is
    refused, the incident goes on, and the owner is told to reach the customer."""
    import uuid

    from temporalio.worker import Worker

    from activities import notices
    from worker.main import WORKFLOW_RUNNER, activities_for
    from workflows.incident import IncidentRecovery
    from workflows.inputs import IncidentReport

    monkeypatch.setattr(IncidentReport, "staff_named_to_customer", lambda self: None)
    monkeypatch.setattr(notices, "redact", lambda value, pattern, **_: value)
    odd = settings.model_copy(update={"task_queue": f"amends-odd-{uuid.uuid4().hex[:6]}"})
    async with Worker(ts_env.client, task_queue=odd.task_queue, workflows=[IncidentRecovery],
                      activities=activities_for(odd), workflow_runner=WORKFLOW_RUNNER):
        amends = Amends(ts_env.client, odd.task_queue)
        rep = report("pi_unused", what_happened="Kevin Lomax mislabelled the parcel.")
        await amends.open_incident(rep)
        await amends.apologise(rep.incident_key, ApologyInput(by=AGENT))
        snap = await wait_for(amends, rep.incident_key, lambda s: s.timeline[-1].step == "notice_failed")
        # The page to the owner follows the timeline entry: wait for it while the worker runs.
        [page] = await mail_to(mail_sink, rep.owner.email)
    assert "apology notice not sent: apology notice would name a member of staff" in snap.timeline[-1].detail
    assert snap.stage == "apologised"  # the incident lives on
    assert mail_sink.to(rep.customer.email) == []
    assert page["X-Amends-Notice"] == "notice_failed"
    assert "notice" not in [e.step for e in snap.timeline]  # never said to be sent


async def test_a_mail_relay_that_stays_down_is_given_up_after_an_hour(settings):
    """Silence is the worst outcome: a notice retried for an hour in vain is recorded,
    and the incident goes on (its clocks keep running) instead of waiting forever."""
    from datetime import timedelta

    down = settings.model_copy(update={"mail": settings.mail.model_copy(update={"port": free_port()})})
    async with time_skipping(down) as env:
        amends = Amends(env.client, settings.task_queue)
        rep = report("pi_unused")
        await amends.open_incident(rep)
        await amends.apologise(rep.incident_key, ApologyInput(by=AGENT))
        await env.sleep(timedelta(hours=3))
        snap = await wait_for(amends, rep.incident_key,
                              lambda s: any(e.step == "notice_failed" for e in s.timeline))
    failed = [e.detail for e in snap.timeline if e.step == "notice_failed"]
    assert failed[0].startswith("apology notice not sent:")
    assert snap.stage == "apologised"


async def test_a_relay_that_offers_no_starttls_gets_nothing_when_encryption_is_required(mail_sink):
    """What `amends worker` uses for a relay on another host (docs/configuration.md): STARTTLS required, so a
    relay that cannot encrypt (here the plain sink) gets no notice in plain text; the sink's own default,
    STARTTLS only if offered, delivers."""
    import aiosmtplib
    from temporalio.testing import ActivityEnvironment

    from activities.notices import send_email

    strict = MailSettings(host="127.0.0.1", port=mail_sink.port, start_tls=True, company="Acme Outdoor")
    apology = notice("apology")
    before = len(mail_sink.messages)
    with pytest.raises(aiosmtplib.SMTPException, match="STARTTLS"):
        await ActivityEnvironment().run(send_email, strict, apology)
    assert len(mail_sink.messages) == before
    await ActivityEnvironment().run(send_email, strict.model_copy(update={"start_tls": None}), apology)
    assert len(mail_sink.messages) == before + 1

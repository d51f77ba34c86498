"""Customer notices speak as "we", reach the customer, and never name a member of staff."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.exceptions import ApplicationError

from activities.notices import MailSettings, render
from tests.helpers import AGENT, EVERY_STAFF_NAME, report
from workflows.client import AmendsClient
from workflows.contracts import ApologyInput, Contact, Notice


def notice(kind: str, **context) -> Notice:
    base = {
        "customer_name": "Alex Rivera", "order_id": "ord-1", "detected_on": "2026-01-02",
        "what_happened": "Kevin mislabelled the parcel, said Rita Moreno.", "impact": "You waited a week.",
        "remedy": [], "refunded": "", "preventive_actions": [],
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
    assert "our team mislabelled the parcel, said our team." in body


def test_a_template_that_would_name_staff_is_never_sent():
    # The company is named after someone at fault: the check after rendering
    # catches what redacting the incident's context cannot.
    with pytest.raises(ApplicationError, match="apology notice would name a member of staff") as err:
        render(notice("apology"), MailSettings(company="Rita Moreno Outfitters"))
    assert err.value.non_retryable


async def test_the_apology_reaches_the_customer_and_names_no_staff(ts_env, ts_worker, settings, mail_sink):
    amends = AmendsClient(ts_env.client, settings.task_queue)
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
    body = apology.get_content()
    assert "our team mislabelled the parcel" in body  # what happened, said for the whole company
    assert rep.impact in body
    for name in EVERY_STAFF_NAME:
        for part in name.split():
            assert part not in body and part not in apology["Subject"]

"""Real names in real notices: redacted in every form from what came from inputs, never from the templates' words."""

from __future__ import annotations

import unicodedata

import pytest
from temporalio.service import RPCError

from activities.notices import MailSettings, render
from tests.support.factories import AGENT, STAFF_ORDINARY, STAFF_WORLDWIDE, report
from tests.support.identity import Amends
from tests.support.mail import CUSTOMER_NOTICES, mail_to, text_of
from tests.support.steps import take
from workflows.client import InvalidInput, workflow_id
from workflows.inputs import Contact, NeedsInput, RemedyProposal
from workflows.payloads import Notice

LEAKY = "STRAUSS printed the label, Lomax packed it, O’Brien signed it off and Zoë shipped it."
READABLE = "Our team printed the label, our team packed it, our team signed it off and our team shipped it."


def notice(kind: str, redact: list[str], **context) -> Notice:
    base = {
        "customer_name": "Alex Rivera", "order_id": "ord-1", "detected_on": "2026-01-02",
        "what_happened": "The tent promised for 3 May will arrive late.", "impact": "You waited a week.",
        "remedy": ["a refund of 80.00 USD"], "refunded": "80.00 USD", "preventive_actions": ["we scan every label"],
        "remedy_summary": [], "gift": "", "gift_code": "",
    }
    return Notice(
        kind=kind, audience="customer", to=Contact(name="Alex Rivera", email="alex@example.com"),
        message_id="m-1", context={**base, **context}, redact=redact,
    )


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_the_four_names_leave_a_readable_sentence(form):
    staff = [unicodedata.normalize(form, n) for n in STAFF_WORLDWIDE]
    _, body = render(notice("apology", staff, what_happened=unicodedata.normalize(form, LEAKY)), MailSettings())
    assert f"What happened: {unicodedata.normalize(form, READABLE)}\n" in body


def test_names_side_by_side_become_one_team():
    _, body = render(notice("apology", STAFF_WORLDWIDE, impact="Strauss, Lomax and Siobhan called you twice."),
                     MailSettings())
    assert "What it meant for you: Our team called you twice.\n" in body


@pytest.mark.parametrize("kind", sorted(CUSTOMER_NOTICES))
def test_staff_named_like_ordinary_words_neither_block_nor_mangle_a_template(kind):
    # The templates say "we will", "may", "mark" …; the input says "3 May will arrive".
    subject, body = render(notice(kind, STAFF_ORDINARY + ["Mark Rose", "Grace Hope"]), MailSettings())
    assert "our team" not in subject + body
    if kind in ("apology", "anniversary"):
        assert "The tent promised for 3 May will arrive late." in body


def test_remedy_descriptions_and_preventive_actions_are_redacted():
    staff = STAFF_WORLDWIDE + STAFF_ORDINARY
    _, proposal = render(notice("proposal", staff, remedy=["we redo the work: Zoë pitches the tent on site"]),
                         MailSettings())
    assert "  - we redo the work: our team pitches the tent on site\n" in proposal
    _, note = render(notice("anniversary", staff, preventive_actions=["paired new packers with May Chen"]),
                     MailSettings())
    assert "  - paired new packers with our team\n" in note


def test_the_customers_own_name_is_never_redacted():
    # A member of staff shares the customer's given name: "Dear our team" would help nobody.
    _, body = render(notice("apology", ["Alex Brandt"]), MailSettings())
    assert body.startswith("Dear Alex Rivera,\n")


async def test_the_proposal_names_no_one_of_staff_involved(ts_env, ts_worker, settings, mail_sink):
    amends = Amends(ts_env.client, settings.task_queue)
    rep = report("pi_unused", staff_involved=STAFF_WORLDWIDE)
    await amends.open_incident(rep)
    await take(amends, rep.incident_key, "apologise")
    await amends.record_needs(rep.incident_key, NeedsInput(by=AGENT, needs="Zoë promised a tent by Friday"))
    await amends.propose_remedy(rep.incident_key, RemedyProposal(by=AGENT, items=[
        {"kind": "redo", "description": "Zoë and O’Brien pitch the tent for you on site"}]))
    [proposal] = await mail_to(mail_sink, rep.customer.email, kind="proposal")
    assert "  - we redo the work: our team pitch the tent for you on site\n" in text_of(proposal).replace("\r\n", "\n")


async def test_an_open_that_names_staff_to_the_customer_is_refused_and_starts_nothing(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue)
    rep = report("pi_unused", staff_involved=STAFF_WORLDWIDE, what_happened="Lomax mislabelled the parcel.")
    with pytest.raises(InvalidInput, match=r"^what_happened: shown to the customer, who is never told who was at "
                                           r"fault \('Lomax' names 'Lomax, Kevin' of staff_involved\)"):
        await amends.open_incident(rep)
    with pytest.raises(RPCError, match="not found"):
        await ts_env.client.get_workflow_handle(workflow_id(rep.incident_key)).describe()


def test_an_empty_input_stays_false_for_the_templates_conditions():
    # Marking input text for the final check must not make "" true: no gift, no gift paragraph.
    _, body = render(notice("anniversary", STAFF_WORLDWIDE, gift="", gift_code=""), MailSettings())
    assert "voucher" not in body and "\ue000" not in body

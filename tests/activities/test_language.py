"""A customer reads every notice in their own language, amounts and dates in its format."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.notices import MailSettings, render
from tests.support.factories import CUSTOMER, MANAGER, paid_intent, report
from tests.support.identity import Amends
from tests.support.mail import html_of, mail_to, text_of
from tests.support.steps import take, wait_for
from workflows.inputs import AcceptInput, Contact, RemedyProposal
from workflows.payloads import Notice
from workflows.stages import Stage

DETECTED = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def words(message) -> str:
    """The plain text as written (the mail's lines end in CRLF on the wire)."""
    return text_of(message).replace("\r\n", "\n")


def euro(cents: int) -> dict:
    return {"amount": cents, "currency": "EUR"}


async def agreed(ts_env, settings, stripe, locale: str | None) -> object:
    """An incident of a customer in ``locale``, walked to an agreed (and fulfilled) refund of 80,00 €."""
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    pi = await paid_intent(stripe, 12_000, "eur")
    rep = report(pi, amount=12_000, currency="EUR", detected_at=DETECTED, locale=locale)
    await amends.open_incident(rep)
    for step in ("apologise", "record_needs"):
        await take(amends, rep.incident_key, step)
    await amends.propose_remedy(rep.incident_key, RemedyProposal(
        by=MANAGER, items=[{"kind": "refund", "amount": euro(8_000)},
                           {"kind": "coupon", "percent_off": 15, "valid_for_days": 90}]))
    await amends.accept_remedy(rep.incident_key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
    await wait_for(amends, rep.incident_key, lambda s: s.stage == Stage.FULFILLED)
    return rep


async def test_a_german_customer_reads_apology_proposal_and_confirmation_in_german(
        ts_env, ts_worker, settings, stripe, mail_sink):
    rep = await agreed(ts_env, settings, stripe, "de-DE")
    email = rep.customer.email
    [apology] = await mail_to(mail_sink, email, "apology")
    [proposal] = await mail_to(mail_sink, email, "proposal")
    [confirmation] = await mail_to(mail_sink, email, "confirmation")

    assert apology["Subject"] == f"Es tut uns leid – Ihre Bestellung {rep.order.order_id}"
    text = words(apology)
    assert text.startswith("Guten Tag Alex Rivera,\n")
    assert "am 3. November 2026 haben wir Sie enttäuscht, und das tut uns aufrichtig leid." in text
    assert f"Was passiert ist: {rep.what_happened}\n" in text
    assert "Dafür tragen wir als Unternehmen die Verantwortung." in text

    assert proposal["Subject"] == f"So möchten wir es wiedergutmachen (Bestellung {rep.order.order_id})"
    text = words(proposal)
    assert "  - eine Rückerstattung von 80,00\u00a0€\n" in text
    assert "  - ein Gutschein über 15\u00a0% Rabatt auf Ihre nächste Bestellung, 90 Tage gültig\n" in text
    assert "Ihr Geld zurückzubekommen ist dabei immer eine Möglichkeit." in text

    assert confirmation["Subject"] == f"Bestätigt: So machen wir es wieder gut (Bestellung {rep.order.order_id})"
    text = words(confirmation)
    assert "vielen Dank für Ihre Zustimmung. Das tun wir jetzt für Sie:" in text
    assert "  - eine Rückerstattung von 80,00\u00a0€\n" in text

    for message in (apology, proposal, confirmation):
        assert message["Content-Language"] == "de"
        assert '<html lang="de">' in html_of(message)
        body = words(message)
        assert "80.00" not in body and "EUR" not in body and "Dear" not in body and "2026-11-03" not in body


async def test_an_unsupported_locale_falls_back_to_the_default_language(
        ts_env, ts_worker, settings, stripe, mail_sink):
    rep = await agreed(ts_env, settings, stripe, "xx-YY")
    email = rep.customer.email
    [apology] = await mail_to(mail_sink, email, "apology")
    [confirmation] = await mail_to(mail_sink, email, "confirmation")
    assert apology["Subject"] == f"We are sorry about your order {rep.order.order_id}"
    assert "On November 3, 2026, we let you down, and we are sorry." in words(apology)
    assert "  - a refund of €80.00\n" in words(confirmation)
    assert apology["Content-Language"] == "en"
    snap = await Amends(ts_env.client, settings.task_queue, env=ts_env).snapshot(rep.incident_key)
    assert not [e for e in snap.timeline if e.step == "notice_failed"]


def notice(kind: str, locale: str | None, **context) -> Notice:
    base = {
        "locale": locale, "customer_name": "Alex Rivera", "order_id": "ord-1", "detected_on": "2026-05-03",
        "what_happened": "Kevin and Rita Moreno mislabelled the parcel.", "impact": "You waited a week.",
        "remedy": [{"item": {"kind": "split_cost", "cost": euro(5_000), "our_share_percent": 50,
                             "description": "the reprint Kevin ordered", "paid_as": "coupon"}, "code": "SAVE-7"}],
        "refunded": euro(2_500), "preventive_actions": ["we scan every label"], "remedy_summary": [],
        "gift": euro(1_000), "gift_code": "GIFT-1",
    }
    return Notice(kind=kind, audience="customer", to=Contact(name="Alex Rivera", email="alex@example.com"),
                  message_id="m-1", context={**base, **context}, redact=["Kevin Lomax", "Rita Moreno"])


def test_a_staff_name_becomes_our_team_in_the_customers_language():
    _, body = render(notice("apology", "de-DE"), MailSettings())
    assert "Was passiert ist: Unser Team mislabelled the parcel.\n" in body
    _, body = render(notice("closing", "de-DE"), MailSettings())
    assert ("  - wir übernehmen 50\u00a0% von the reprint unser Team ordered (50,00\u00a0€): 25,00\u00a0€ "
            "als Gutschein (Code SAVE-7)\n") in body
    assert "Insgesamt erstatten wir Ihnen 25,00\u00a0€; das Geld ist auf dem Weg zu Ihnen." in body
    _, body = render(notice("closing", "en"), MailSettings())
    assert "  - we pay 50% of the reprint our team ordered (€50.00): €25.00 as a coupon (code SAVE-7)\n" in body


def test_the_default_language_is_the_workers():
    subject, body = render(notice("anniversary", None), MailSettings(default_locale="de-AT"))
    assert subject == "Vor einem Jahr haben wir Sie enttäuscht"
    assert "vor einem Jahr, am 3. Mai 2026, haben wir einen Fehler gemacht" in body
    assert "Gutschein im Wert von €\u00a010,00" in body  # Austria writes the sign first
    subject, _ = render(notice("anniversary", "fr-FR"), MailSettings(default_locale="de"))
    assert subject == "Vor einem Jahr haben wir Sie enttäuscht"


def test_a_notice_made_before_values_came_raw_still_renders():
    # Queued by a worker that sent English lines and amounts: sent as they were written.
    old = notice("closing", None, remedy=["a refund of 25.00 EUR"], refunded="25.00 EUR")
    del old.context["locale"]
    _, body = render(old, MailSettings())
    assert "  - a refund of 25.00 EUR\n" in body and "In all, 25.00 EUR is on its way back to you." in body

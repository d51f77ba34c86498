"""Money is never moved twice and never beyond what was paid, whatever Stripe's answers do."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.payments import PaymentActivities
from tests.support.factories import AGENT, DIRECTOR, paid_intent, report
from tests.support.faults import LosingProxy
from tests.support.history import keep_history
from tests.support.identity import Amends
from tests.support.mail import mail_to, text_of
from tests.support.servers import time_skipping
from tests.support.steps import STEP_INPUTS, agreed_refund, take, wait_for
from workflows.client import StepRefused
from workflows.inputs import RemedyProposal, RenegotiateInput
from workflows.money import Money
from workflows.payloads import RefundRequest
from workflows.stages import Stage


def refund_request(pi: str, incident: str, cents: int, paid: int) -> RefundRequest:
    return RefundRequest(
        idempotency_key=f"{incident}/remedy-1/item-1", incident_workflow_id=incident, item_id="remedy-1/item-1",
        payment_reference=pi, amount=Money(amount=cents, currency="USD"),
        amount_paid=Money(amount=paid, currency="USD"), reason="test",
    )


async def refunds_on(stripe, pi: str) -> list:
    return list((await stripe.v1.refunds.list_async(params={"payment_intent": pi, "limit": 100})).data)


async def test_two_incidents_on_one_payment_cannot_refund_more_than_the_charge(stripe):
    payments = PaymentActivities(stripe)
    pi = await paid_intent(stripe, 8_000)
    env = ActivityEnvironment()
    # Each incident's report says 80.00 was paid, and each stays within it on its own.
    await env.run(payments.refund_payment, refund_request(pi, "incident-a", 6_000, 8_000))
    with pytest.raises(ApplicationError) as refused:
        await env.run(payments.refund_payment, refund_request(pi, "incident-b", 6_000, 8_000))
    assert refused.value.type == "RefundCeiling" and refused.value.non_retryable
    assert f"payment {pi} has 20.00 USD left to refund" in refused.value.message
    assert sum(r.amount for r in await refunds_on(stripe, pi)) == 6_000
    # What the payment still holds can go back.
    await env.run(payments.refund_payment, refund_request(pi, "incident-c", 2_000, 8_000))
    assert sum(r.amount for r in await refunds_on(stripe, pi)) == 8_000


async def test_a_refund_whose_answer_is_lost_is_unknown_blocks_renegotiation_and_pays_once(
        settings, stripe, localstripe_url):
    pi = await paid_intent(stripe, 8_000)
    async with LosingProxy(localstripe_url, lose_from="POST /v1/refunds") as proxy:
        lossy = settings.model_copy(update={"task_queue": f"amends-ghost-{uuid.uuid4().hex[:6]}",
                                            "stripe_api_base": proxy.url})
        async with time_skipping(lossy) as env:
            amends = Amends(env.client, lossy.task_queue, env=env)
            rep = report(pi)
            key = rep.incident_key
            await agreed_refund(amends, rep, 3_000)
            # Stripe made the refund, but no answer comes back, for longer than the first minutes of retries.
            await env.sleep(timedelta(minutes=6))
            snap = await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "unknown")
            assert proxy.losing and [r.amount for r in await refunds_on(stripe, pi)] == [3_000]
            assert snap.refundable_left == 5_000 and snap.refunded_total == 0  # counted, not yet confirmed
            assert any(e.step == "refund_unknown" for e in snap.timeline)
            with pytest.raises(StepRefused, match="a refund's outcome is unknown"):
                await amends.renegotiate(key, RenegotiateInput(by=AGENT, reason="try a coupon instead"))
            # Stripe answers again: the next attempt finds the refund by its key, and makes none.
            proxy.losing = False
            await env.sleep(timedelta(minutes=3))
            snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
            assert [r.amount for r in await refunds_on(stripe, pi)] == [3_000]
            assert [m.amount.amount for m in snap.money_moved] == [3_000] and snap.refunded_total == 3_000
            await keep_history(amends.handle(key), "refund_outcome_unknown")
            await keep_history(amends.handle(key), "release_refund_outcome_unknown")


# Customer notices write amounts in the customer's language (English here, by CLDR), with the
# currency's own decimals as amends counts them.
@pytest.mark.parametrize(("currency", "paid", "refund", "shown"), [
    ("JPY", 8_000, 3_000, "¥3,000"),                # zero-decimal: yen
    ("KWD", 12_345, 2_500, "KWD\u00a02.500"),       # three-decimal: fils
    ("ISK", 500_000, 150_000, "ISK\u00a01,500.00"),  # Stripe counts ISK in hundredths
])
async def test_refunds_reach_stripe_in_its_minor_units_and_notices_show_them(
        ts_env, ts_worker, settings, stripe, mail_sink, currency, paid, refund, shown):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    pi = await paid_intent(stripe, paid, currency.lower())
    rep = report(pi, amount=paid, currency=currency)
    key = rep.incident_key
    await amends.open_incident(rep)
    for step in ("apologise", "record_needs"):
        await take(amends, key, step)
    # Approval limits are minor units whatever the currency; a director may promise any of these.
    await amends.propose_remedy(key, RemedyProposal(
        by=DIRECTOR, items=[{"kind": "refund", "amount": {"amount": refund, "currency": currency}}]))
    await amends.accept_remedy(key, STEP_INPUTS["accept_remedy"])
    await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    [made] = await refunds_on(stripe, pi)
    assert (made.amount, made.currency) == (refund, currency.lower())
    [confirmation] = await mail_to(mail_sink, rep.customer.email, "confirmation")
    assert f"a refund of {shown}" in text_of(confirmation)

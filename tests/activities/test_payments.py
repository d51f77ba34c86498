"""Refunds land in (local)Stripe exactly once, with the incident's metadata, never beyond what was paid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.payments import PaymentActivities
from tests.support.factories import AGENT, CUSTOMER, paid_intent, report
from tests.support.history import keep_history
from tests.support.identity import Amends
from tests.support.mail import mail_to, text_of
from tests.support.steps import STEP_INPUTS, take, wait_for
from worker.main import WORKFLOW_RUNNER, activities_for
from workflows.incident import IncidentRecovery
from workflows.inputs import AcceptInput, RemedyProposal
from workflows.money import Money
from workflows.payloads import CouponRequest, RefundRequest
from workflows.stages import Stage


def request(pi: str, cents: int, paid: int = 8_000, key: str | None = None) -> RefundRequest:
    key = key or f"incident-test-{uuid.uuid4().hex[:6]}/remedy-1/item-1"
    return RefundRequest(
        idempotency_key=key,
        incident_workflow_id=key.split("/")[0],
        item_id="remedy-1/item-1",
        payment_reference=pi,
        amount=Money(amount=cents, currency="USD"),
        amount_paid=Money(amount=paid, currency="USD"),
        reason="test",
    )


async def refunds_of(stripe, pi: str) -> list:
    page = await stripe.v1.refunds.list_async(params={"payment_intent": pi, "limit": 100})
    return list(page.data)


async def test_a_repeated_refund_is_found_not_made_again(stripe):
    payments = PaymentActivities(stripe)
    pi = await paid_intent(stripe, 8_000)
    req = request(pi, 2_500)
    env = ActivityEnvironment()
    first = await env.run(payments.refund_payment, req)
    second = await env.run(payments.refund_payment, req)
    assert (first.reused, second.reused) == (False, True)
    assert first.refund_id == second.refund_id
    assert [r.amount for r in await refunds_of(stripe, pi)] == [2_500]


def coupon_request() -> CouponRequest:
    key = f"incident-test-{uuid.uuid4().hex[:6]}"
    return CouponRequest(
        coupon_id=f"{key}-remedy-1-item-1", incident_workflow_id=key, item_id="remedy-1/item-1",
        amount_off=Money(amount=500, currency="USD"), redeem_by=datetime.now(UTC) + timedelta(days=30),
    )


async def promotion_codes_of(stripe, coupon_id: str) -> list:
    return list((await stripe.v1.promotion_codes.list_async(params={"coupon": coupon_id, "limit": 100})).data)


async def test_a_retried_coupon_keeps_its_one_promotion_code(stripe):
    payments = PaymentActivities(stripe, coupon_expiry_in_stripe=False)
    req = coupon_request()
    env = ActivityEnvironment()
    first = await env.run(payments.create_coupon, req)
    second = await env.run(payments.create_coupon, req)
    assert (first.reused, second.reused) == (False, True)
    assert first.coupon_id == second.coupon_id == req.coupon_id and first.code == second.code
    assert (await stripe.v1.coupons.retrieve_async(req.coupon_id)).max_redemptions == 1
    assert [(p.code, p.max_redemptions) for p in await promotion_codes_of(stripe, req.coupon_id)] == [(first.code, 1)]


async def test_a_coupon_left_without_its_code_by_a_crash_gets_one_on_retry(stripe):
    payments = PaymentActivities(stripe, coupon_expiry_in_stripe=False)
    req = coupon_request()
    # An earlier attempt made the coupon and died before the promotion code.
    await stripe.v1.coupons.create_async(
        params={"id": req.coupon_id, "duration": "once", "amount_off": 500, "currency": "usd", "max_redemptions": 1}
    )
    result = await ActivityEnvironment().run(payments.create_coupon, req)
    assert not result.reused and len(result.code) == 12 and req.incident_workflow_id not in result.code
    assert [p.code for p in await promotion_codes_of(stripe, req.coupon_id)] == [result.code]


async def test_the_activity_keeps_its_own_ceiling(stripe):
    """localstripe would refund more than was paid; the activity does not."""
    payments = PaymentActivities(stripe)
    pi = await paid_intent(stripe, 8_000)
    incident = f"incident-ceiling-{uuid.uuid4().hex[:6]}"
    await ActivityEnvironment().run(payments.refund_payment, request(pi, 6_000, key=f"{incident}/remedy-1/item-1"))
    with pytest.raises(ApplicationError, match="refused: the incident has refunded 60.00 USD of 80.00 USD paid") as err:
        await ActivityEnvironment().run(payments.refund_payment, request(pi, 3_000, key=f"{incident}/remedy-2/item-1"))
    assert err.value.type == "RefundCeiling" and err.value.non_retryable
    assert [r.amount for r in await refunds_of(stripe, pi)] == [6_000]


async def test_refund_retried_after_the_stripe_call_moves_money_once(ts_env, settings, stripe):
    """The worker fails the refund once after Stripe made it (as a crash would); Temporal retries; one refund."""
    real = PaymentActivities(stripe)
    attempts: list[int] = []

    @activity.defn(name="refund_payment")
    async def refund_then_fail_once(req: RefundRequest):
        result = await real.refund_payment(req)
        attempts.append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise RuntimeError("worker lost its connection after Stripe answered")
        return result

    task_queue = f"amends-retry-{uuid.uuid4().hex[:6]}"
    others = [a for a in activities_for(settings.model_copy(update={"task_queue": task_queue})) if a.__name__ != "refund_payment"]
    async with Worker(
        ts_env.client, task_queue=task_queue, workflows=[IncidentRecovery],
        activities=[*others, refund_then_fail_once], workflow_runner=WORKFLOW_RUNNER,
    ):
        amends = Amends(ts_env.client, task_queue)
        pi = await paid_intent(stripe, 8_000)
        rep = report(pi)
        key = rep.incident_key
        await amends.open_incident(rep)
        for step in ("apologise", "record_needs"):
            await take(amends, key, step)
        await amends.propose_remedy(
            key, RemedyProposal(by=AGENT, items=[{"kind": "refund", "amount": {"amount": 4_000, "currency": "USD"}}])
        )
        await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="chat", remedy=1))
        snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    assert attempts == [1, 2]
    refunds = await refunds_of(stripe, pi)
    assert len(refunds) == 1
    assert refunds[0].amount == 4_000
    assert refunds[0].metadata.to_dict() == {
        "amends_key": f"incident-{key}/remedy-1/item-1",
        "amends_incident": f"incident-{key}",
        "item": "remedy-1/item-1",
    }
    assert snap.money_moved[0].reference == refunds[0].id
    assert snap.refunded_total == 4_000


async def test_a_failed_refund_notifies_the_owner_and_opens_renegotiation(ts_env, ts_worker, settings, mail_sink):
    amends = Amends(ts_env.client, settings.task_queue)
    rep = report("pi_0000000000nothere")  # a payment Stripe does not know
    key = rep.incident_key
    await amends.open_incident(rep)
    for step in ("apologise", "record_needs"):
        await take(amends, key, step)
    await amends.propose_remedy(
        key, RemedyProposal(by=AGENT, items=[{"kind": "refund", "amount": {"amount": 2_000, "currency": "USD"}}])
    )
    await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
    snap = await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "failed")
    assert snap.stage == Stage.REMEDY_AGREED and snap.refunded_total == 0
    assert "refund" in snap.agreed_remedy.items[0].failure
    assert "renegotiate" in snap.allowed_steps
    [page] = await mail_to(mail_sink, rep.owner.email, "fulfilment_failed")
    assert "Money back is always on the table" in text_of(page)
    await keep_history(amends.handle(key), "refund_failed")
    snap = await amends.renegotiate(key, STEP_INPUTS["renegotiate"])
    assert snap.stage == Stage.NEEDS_GATHERED and snap.refundable_left == 8_000

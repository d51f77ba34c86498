"""Every remedy the playbook names, delivered end to end and checked where it landed."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from temporalio.worker import Worker

from activities.webhooks import verify
from tests.support.factories import AGENT, CUSTOMER, MANAGER, paid_intent, report
from tests.support.history import keep_history, recorded_search_attributes
from tests.support.identity import Amends
from tests.support.mail import mail_to, text_of
from tests.support.servers import WEBHOOK_SECRET
from tests.support.steps import STEP_INPUTS, take, wait_for
from worker.main import WORKFLOW_RUNNER, activities_for
from workflows.client import AmendsClient
from workflows.incident import IncidentRecovery
from workflows.inputs import AcceptInput, FlagInput, FulfilmentConfirmation, RemedyProposal
from workflows.stages import Stage


def usd(cents: int) -> dict:
    return {"amount": cents, "currency": "USD"}


@pytest.fixture
def amends(ts_env, ts_worker, settings) -> AmendsClient:
    return Amends(ts_env.client, settings.task_queue)


async def agreed(amends, stripe, items: list[dict], paid: int = 10_000, by=MANAGER) -> tuple[str, object]:
    """Open an incident, listen, propose ``items``, have the customer accept; return key and report."""
    pi = await paid_intent(stripe, paid) if stripe else None
    rep = report(pi, amount=paid)
    key = rep.incident_key
    await amends.open_incident(rep)
    for step in ("apologise", "record_needs"):
        await take(amends, key, step)
    await amends.propose_remedy(key, RemedyProposal(by=by, items=items))
    await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
    return key, rep


def signed(received) -> bool:
    return verify(WEBHOOK_SECRET, received.headers, received.raw)


async def test_several_partial_refunds_within_what_was_paid(amends, stripe):
    key, rep = await agreed(amends, stripe, [{"kind": "refund", "amount": usd(2_500)},
                                             {"kind": "refund", "amount": usd(1_500), "reason": "shipping"}])
    snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    refunds = (await stripe.v1.refunds.list_async(params={"payment_intent": rep.order.payment_reference})).data
    assert sorted(r.amount for r in refunds) == [1_500, 2_500]
    assert {r.metadata["amends_key"] for r in refunds} == {f"incident-{key}/remedy-1/item-1", f"incident-{key}/remedy-1/item-2"}
    assert snap.refunded_total == 4_000 and snap.refundable_left == 6_000


async def test_coupons_are_created_in_stripe_with_deterministic_ids(amends, stripe, mail_sink):
    key, _ = await agreed(amends, None, [{"kind": "coupon", "amount_off": usd(1_000), "valid_for_days": 90},
                                         {"kind": "coupon", "percent_off": 15}])
    snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    ids = [f"incident-{key}-remedy-1-item-1", f"incident-{key}-remedy-1-item-2"]
    codes = [i.reference for i in snap.agreed_remedy.items]  # the promotion codes the customer gets
    assert [m.reference for m in snap.money_moved] == ids[:1]  # the coupon id is the engine's reference
    fixed = await stripe.v1.coupons.retrieve_async(ids[0])
    assert (fixed.amount_off, fixed.currency, fixed.duration) == (1_000, "usd", "once")
    assert fixed.metadata["amends_incident"] == f"incident-{key}"
    expected_expiry = (snap.agreed_remedy.accepted_at + timedelta(days=90)).date().isoformat()
    assert fixed.metadata["expires_at"][:10] == expected_expiry
    percent = await stripe.v1.coupons.retrieve_async(ids[1])
    assert percent.percent_off == 15
    # The closing notice gives the customer the codes.
    await amends.close(key, STEP_INPUTS["close"])
    [closing] = await mail_to(mail_sink, snap.report.customer.email, "closing")
    assert codes[0] in text_of(closing) and codes[1] in text_of(closing)
    assert ids[0] not in text_of(closing) and ids[1] not in text_of(closing)
    await keep_history(amends.handle(key), "coupons_closed")
    await keep_history(amends.handle(key), "release_coupons_closed")


async def test_a_coupon_is_single_use_and_its_code_cannot_be_derived_from_the_incident(amends, stripe, mail_sink):
    codes = []
    for _ in range(2):
        key, rep = await agreed(amends, None, [{"kind": "coupon", "amount_off": usd(1_000)}])
        await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
        coupon_id = f"incident-{key}-remedy-1-item-1"
        assert (await stripe.v1.coupons.retrieve_async(coupon_id)).max_redemptions == 1
        await amends.close(key, STEP_INPUTS["close"])
        [closing] = await mail_to(mail_sink, rep.customer.email, "closing")
        text = text_of(closing)
        found = re.search(r"\(code ([A-Za-z0-9-]+)\)", text)
        assert found, text
        code = found.group(1)
        assert key.lower() not in code.lower() and coupon_id not in text
        # It is the code of a single-use promotion code for this coupon, and the only one.
        [promo] = (await stripe.v1.promotion_codes.list_async(params={"coupon": coupon_id})).data
        assert (promo.code, promo.max_redemptions, promo.active, promo.promotion.coupon) == (code, 1, True, coupon_id)
        [by_code] = (await stripe.v1.promotion_codes.list_async(params={"code": code})).data
        assert by_code.id == promo.id
        codes.append(code)
    assert codes[0] != codes[1]


async def test_waived_balance_is_a_signed_work_order_to_billing(amends, webhook_sink):
    key, _ = await agreed(amends, None, [{"kind": "waive_balance", "amount": usd(4_200), "invoice_reference": "INV-77"}])
    snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    [order] = [r for r in webhook_sink.at("/billing") if r.body["data"]["incident"] == f"incident-{key}"]
    assert signed(order)
    assert order.headers["Idempotency-Key"] == f"incident-{key}/remedy-1/item-1"
    assert order.headers["X-Amends-Event"] == "work_order.waive_balance"
    assert order.body["data"]["item"] == {"kind": "waive_balance", "amount": usd(4_200), "invoice_reference": "INV-77"}
    assert snap.agreed_remedy.items[0].reference.startswith("ref-")  # the billing backend's answer, kept


@pytest.mark.parametrize("kind", ["redo", "replacement", "late_delivery", "upgrade"])
async def test_work_is_ordered_signed_and_done_when_the_backend_confirms(amends, webhook_sink, kind):
    key, _ = await agreed(amends, None, [{"kind": kind, "description": "the blue tent, size L"}])
    snap = await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "awaiting_confirmation")
    assert snap.stage == Stage.REMEDY_AGREED
    [order] = [r for r in webhook_sink.at("/work-orders") if r.body["data"]["incident"] == f"incident-{key}"]
    assert signed(order) and order.headers["Idempotency-Key"] == f"incident-{key}/remedy-1/item-1"
    data = order.body["data"]
    assert data["item"] == {"kind": kind, "description": "the blue tent, size L"}
    assert data["confirm_with"]["update"] == "confirm_fulfilment"
    # The backend confirms through the update named in the work order.
    snap = await amends.confirm_fulfilment(
        key, FulfilmentConfirmation(by={"name": "warehouse", "role": "backend"}, channel="backend",
                                    item_id=data["item_id"], note="shipped")
    )
    assert snap.stage == Stage.FULFILLED


@pytest.mark.parametrize("paid_as", ["refund", "coupon"])
async def test_split_cost_pays_our_share(amends, stripe, paid_as):
    item = {"kind": "split_cost", "cost": usd(6_001), "our_share_percent": 50, "paid_as": paid_as,
            "description": "the cost of re-tiling the bathroom"}
    key, rep = await agreed(amends, stripe, [item])
    snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    [moved] = snap.money_moved
    assert moved.amount.amount == 3_001 and moved.kind == paid_as  # half of 60.01, rounded half up
    if paid_as == "refund":
        refunds = (await stripe.v1.refunds.list_async(params={"payment_intent": rep.order.payment_reference})).data
        assert [r.amount for r in refunds] == [3_001]
        assert snap.refunded_total == 3_001
    else:
        coupon = await stripe.v1.coupons.retrieve_async(moved.reference)
        assert coupon.amount_off == 3_001
        assert snap.refunded_total == 0


async def test_a_goodwill_gift_with_a_note(amends, stripe, mail_sink):
    key, rep = await agreed(amends, None, [{"kind": "gift", "coupon_amount": usd(500),
                                            "note": "a hand-written card from the workshop"}])
    snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    coupon = await stripe.v1.coupons.retrieve_async(snap.money_moved[0].reference)
    assert coupon.amount_off == 500
    await amends.close(key, STEP_INPUTS["close"])
    [closing] = await mail_to(mail_sink, rep.customer.email, "closing")
    assert "a hand-written card from the workshop" in text_of(closing)
    assert "gift voucher worth $5.00" in text_of(closing)


async def test_red_flag_reaches_the_crm_and_never_the_customer(amends, webhook_sink, mail_sink):
    rep = report(None)
    key = rep.incident_key
    await amends.open_incident(rep)
    await take(amends, key, "apologise")
    snap = await amends.flag_account(key, FlagInput(by=MANAGER, reason="threatened our driver"))
    assert snap.red_flagged and snap.flags == ["threatened our driver"]
    snap = await wait_for(amends, key, lambda s: s.timeline[-1].step == "crm")
    [flag] = [r for r in webhook_sink.at("/crm") if r.body["data"]["incident"] == f"incident-{key}"]
    assert signed(flag) and flag.body["event"] == "account.red_flagged"
    assert flag.body["data"] == {"incident": f"incident-{key}", "customer_id": rep.customer.customer_id,
                                 "reason": "threatened our driver"}
    assert (await recorded_search_attributes(amends.handle(key)))["RedFlagged"] is True
    await take(amends, key, "record_needs")
    await amends.propose_remedy(key, STEP_INPUTS["propose_remedy"])
    for message in await mail_to(mail_sink, rep.customer.email, count=2):
        assert "flag" not in text_of(message).lower() and "threatened" not in text_of(message)
    await keep_history(amends.handle(key), "red_flag")


async def test_a_rejected_work_order_pages_the_owner_and_opens_renegotiation(ts_env, settings, webhook_sink, mail_sink):
    rejecting = f"/work-orders-{uuid.uuid4().hex[:6]}"
    webhook_sink.respond[rejecting] = (422, {"reason": "the replacement is out of stock"})
    odd = settings.model_copy(update={
        "task_queue": f"amends-reject-{uuid.uuid4().hex[:6]}",
        "webhooks": settings.webhooks.model_copy(
            update={"urls": {**settings.webhooks.urls, "work_orders": webhook_sink.url + rejecting}}),
    })
    async with Worker(ts_env.client, task_queue=odd.task_queue, workflows=[IncidentRecovery],
                      activities=activities_for(odd), workflow_runner=WORKFLOW_RUNNER):
        amends = Amends(ts_env.client, odd.task_queue)
        key, rep = await agreed(amends, None, [{"kind": "replacement", "description": "a new tent"}])
        snap = await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "failed")
        [page] = await mail_to(mail_sink, rep.owner.email, "fulfilment_failed")
        assert "the replacement is out of stock" in snap.agreed_remedy.items[0].failure
        assert "the replacement is out of stock" in text_of(page)
        assert "Money back is always on the table: up to 100.00 USD" in " ".join(text_of(page).split())
        assert "renegotiate" in snap.allowed_steps and "confirm_fulfilment" not in snap.allowed_steps
        snap = await amends.renegotiate(key, STEP_INPUTS["renegotiate"])
        assert snap.stage == Stage.NEEDS_GATHERED
        await keep_history(amends.handle(key), "work_order_rejected_renegotiated")
        await keep_history(amends.handle(key), "release_work_order_rejected_renegotiated")


async def test_a_repeated_update_id_has_one_effect(amends):
    rep = report(None)
    key = rep.incident_key
    await amends.open_incident(rep)
    for step in ("apologise", "record_needs"):
        await take(amends, key, step)
    proposal = RemedyProposal(by=AGENT, items=[{"kind": "redo", "description": "we redo the stitching"}])
    first = await amends.propose_remedy(key, proposal, update_id="desk-4711")
    again = await amends.propose_remedy(key, proposal, update_id="desk-4711")  # a retried request
    assert [r.number for r in again.remedies] == [1] == [r.number for r in first.remedies]
    assert [e.step for e in again.timeline].count("propose_remedy") == 1

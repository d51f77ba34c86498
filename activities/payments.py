"""Refunds through Stripe, exactly once.

Stripe's ``Idempotency-Key`` protects a retried request for 24 hours, but
localstripe ignores it and a retry may come days later, so the activity
first looks for a refund it already made (by the metadata key) and only
then creates one; and it keeps its own ceiling so that an incident never
returns more than was paid.
"""

from __future__ import annotations

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.money import Money, format_money
from workflows.payloads import CouponRequest, CouponResult, RefundRequest, RefundResult

KEY = "amends_key"
INCIDENT = "amends_incident"


class PaymentActivities:
    def __init__(self, client: stripe.StripeClient, coupon_expiry_in_stripe: bool = True) -> None:
        self.stripe = client
        # localstripe refuses `redeem_by`; there the expiry is kept in the
        # coupon's metadata only.
        self.coupon_expiry_in_stripe = coupon_expiry_in_stripe

    async def _refunds_of(self, target: dict) -> list:
        page = await self.stripe.v1.refunds.list_async(params={**target, "limit": 100})
        return [r async for r in page.auto_paging_iter()]

    @activity.defn(name="refund_payment")
    async def refund_payment(self, req: RefundRequest) -> RefundResult:
        ref = req.payment_reference
        target = {"charge": ref} if ref.startswith("ch_") else {"payment_intent": ref}
        activity.heartbeat("looking up refunds")
        try:
            existing = await self._refunds_of(target)
        except stripe.InvalidRequestError as err:
            raise ApplicationError(
                f"payment {ref} cannot be refunded: {err.user_message or err}", type="RefundDeclined",
                non_retryable=True,
            ) from None
        for refund in existing:
            if _metadata(refund).get(KEY) == req.idempotency_key:
                return self._result(refund, req, reused=True)

        ours = sum(
            r.amount for r in existing
            if _metadata(r).get(INCIDENT) == req.incident_workflow_id and r.status != "failed"
        )
        if ours + req.amount.amount > req.amount_paid.amount:
            raise ApplicationError(
                ceiling_message(req.amount, ours, req.amount_paid),
                type="RefundCeiling",
                non_retryable=True,
            )
        activity.heartbeat("creating the refund")
        try:
            refund = await self.stripe.v1.refunds.create_async(
                params={
                    **target,
                    "amount": req.amount.amount,
                    "metadata": {KEY: req.idempotency_key, INCIDENT: req.incident_workflow_id, "item": req.item_id},
                },
                options={"idempotency_key": req.idempotency_key},
            )
        except (stripe.CardError, stripe.InvalidRequestError) as err:
            raise ApplicationError(
                f"refund declined by Stripe: {err.user_message or err}", type="RefundDeclined", non_retryable=True
            ) from None
        if refund.status in ("failed", "canceled"):
            raise ApplicationError(
                f"refund {refund.id} {refund.status}: {getattr(refund, 'failure_reason', None) or 'no reason given'}",
                type="RefundDeclined",
                non_retryable=True,
            )
        return self._result(refund, req, reused=False)

    @activity.defn(name="create_coupon")
    async def create_coupon(self, req: CouponRequest) -> CouponResult:
        # The id is deterministic, so it is the idempotency key: look first.
        activity.heartbeat("looking up the coupon")
        try:
            await self.stripe.v1.coupons.retrieve_async(req.coupon_id)
            return CouponResult(coupon_id=req.coupon_id, reused=True)
        except stripe.InvalidRequestError as err:
            if err.http_status != 404:
                raise
        params: dict = {
            "id": req.coupon_id,
            "duration": "once",
            "metadata": {
                INCIDENT: req.incident_workflow_id,
                "item": req.item_id,
                "expires_at": req.redeem_by.isoformat(),
            },
        }
        if req.amount_off:
            params.update(amount_off=req.amount_off.amount, currency=req.amount_off.currency.lower())
        else:
            params["percent_off"] = req.percent_off
        if self.coupon_expiry_in_stripe:
            params["redeem_by"] = int(req.redeem_by.timestamp())
        try:
            await self.stripe.v1.coupons.create_async(params=params, options={"idempotency_key": req.coupon_id})
        except stripe.InvalidRequestError as err:
            raise ApplicationError(
                f"coupon refused by Stripe: {err.user_message or err}", type="CouponRefused", non_retryable=True
            ) from None
        return CouponResult(coupon_id=req.coupon_id)

    @staticmethod
    def _result(refund, req: RefundRequest, reused: bool) -> RefundResult:
        return RefundResult(
            refund_id=refund.id,
            amount=Money(amount=refund.amount, currency=refund.currency.upper()),
            status=refund.status,
            reused=reused,
        )


def ceiling_message(amount: Money, refunded: int, paid: Money) -> str:
    """Why a refund of ``amount`` is refused when the incident has refunded ``refunded`` (minor units) of ``paid``.

    Amounts in the currency's own decimals: 8000 JPY is "8000 JPY", not "80.00 JPY".
    """
    return (
        f"refund of {amount} refused: the incident has refunded {format_money(refunded, paid.currency)} "
        f"of {paid} paid"
    )


def _metadata(obj) -> dict:
    return obj.metadata.to_dict() if getattr(obj, "metadata", None) else {}


def stripe_client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        http_client=stripe.HTTPXClient(),
        max_network_retries=0,  # Temporal retries the activity
    )

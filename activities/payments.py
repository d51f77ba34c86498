"""Refunds through Stripe, exactly once.

Stripe's ``Idempotency-Key`` protects a retried request for 24 hours, but
localstripe ignores it and a retry may come days later, so the activity
first looks for a refund it already made (by the metadata key) and only
then creates one. Two ceilings stand before a new refund: what this
incident has refunded, and what the payment itself still holds according
to Stripe (so two incidents on one payment cannot refund it twice over,
whatever their reports say). The activity heartbeats while Stripe is asked,
so a slow answer is waited for, not raced by a second attempt.

Coupons are single-use and reach the customer as a single-use promotion
code with a random code; the coupon's deterministic id stays the engine's
reference and idempotency key (``create_coupon``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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

    async def _refunds_of(self, target: dict[str, str]) -> list[stripe.Refund]:
        params: dict[str, Any] = {**target, "limit": 100}
        page = await self.stripe.v1.refunds.list_async(params=params)  # type: ignore[arg-type]
        return [r async for r in page.auto_paging_iter()]

    async def _left_on(self, target: dict[str, str]) -> int:
        """What the payment still holds: its amount less everything refunded on it, by anyone."""
        if "charge" in target:
            charge = await self.stripe.v1.charges.retrieve_async(target["charge"])
        else:
            intent = await self.stripe.v1.payment_intents.retrieve_async(
                target["payment_intent"], params={"expand": ["latest_charge"]}
            )
            charge = intent.latest_charge  # type: ignore[assignment]
        if not isinstance(charge, stripe.Charge):
            return 0  # nothing was charged: nothing can go back
        return int(charge.amount) - int(charge.amount_refunded)

    @activity.defn(name="refund_payment")
    async def refund_payment(self, req: RefundRequest) -> RefundResult:
        ref = req.payment_reference
        target = {"charge": ref} if ref.startswith("ch_") else {"payment_intent": ref}
        async with heartbeating("looking up refunds"):
            try:
                existing = await self._refunds_of(target)
                left = await self._left_on(target)
            except stripe.InvalidRequestError as err:
                raise ApplicationError(
                    f"payment {ref} cannot be refunded: {err.user_message or err}", type="RefundDeclined",
                    non_retryable=True,
                ) from None
        for refund in existing:
            if _metadata(refund).get(KEY) == req.idempotency_key:
                return self._result(refund, reused=True)

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
        if req.amount.amount > left:
            raise ApplicationError(
                f"refund of {req.amount} refused: payment {ref} has {format_money(left, req.amount.currency)} "
                f"left to refund (Stripe's own count, every refund on it included)",
                type="RefundCeiling",
                non_retryable=True,
            )
        params: dict[str, Any] = {
            **target,
            "amount": req.amount.amount,
            "metadata": {KEY: req.idempotency_key, INCIDENT: req.incident_workflow_id, "item": req.item_id},
        }
        try:
            async with heartbeating("creating the refund"):
                refund = await self.stripe.v1.refunds.create_async(
                    params=params,  # type: ignore[arg-type]
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
        return self._result(refund, reused=False)

    @activity.defn(name="create_coupon")
    async def create_coupon(self, req: CouponRequest) -> CouponResult:
        """A single-use coupon, and the single-use promotion code the customer gets for it.

        The coupon's id is deterministic, so it is the idempotency key: each
        attempt looks for the coupon, then for its promotion code, and makes
        only what is missing. The code itself is random (the id can be derived
        from the incident key; the code cannot).
        """
        activity.heartbeat("looking up the coupon")
        reused = True
        try:
            await self.stripe.v1.coupons.retrieve_async(req.coupon_id)
        except stripe.InvalidRequestError as err:
            if err.http_status != 404:
                raise
            reused = False
            await self._new_coupon(req)
        activity.heartbeat("looking up the promotion code")
        promo = await self._promotion_code_of(req.coupon_id)
        if promo is None:
            reused = False
            promo = await self._new_promotion_code(req)
        return CouponResult(coupon_id=req.coupon_id, code=promo.code, reused=reused)

    async def _new_coupon(self, req: CouponRequest) -> None:
        params: dict[str, Any] = {
            "id": req.coupon_id,
            "duration": "once",
            "max_redemptions": 1,
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
            await self.stripe.v1.coupons.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": req.coupon_id},
            )
        except stripe.InvalidRequestError as err:
            raise ApplicationError(
                f"coupon refused by Stripe: {err.user_message or err}", type="CouponRefused", non_retryable=True
            ) from None

    async def _promotion_code_of(self, coupon_id: str) -> stripe.PromotionCode | None:
        """The coupon's promotion code made by an earlier attempt, if any (the oldest, should there be two)."""
        page = await self.stripe.v1.promotion_codes.list_async(params={"coupon": coupon_id, "limit": 100})
        codes = [p async for p in page.auto_paging_iter()]
        return min(codes, key=lambda p: (p.created, p.id)) if codes else None

    async def _new_promotion_code(self, req: CouponRequest) -> stripe.PromotionCode:
        activity.heartbeat("creating the promotion code")
        try:
            return await self.stripe.v1.promotion_codes.create_async(
                params={
                    "promotion": {"type": "coupon", "coupon": req.coupon_id},
                    "code": promotion_code(),
                    "max_redemptions": 1,
                    "metadata": {INCIDENT: req.incident_workflow_id, "item": req.item_id},
                },
            )
        except stripe.InvalidRequestError as err:
            raise ApplicationError(
                f"promotion code refused by Stripe: {err.user_message or err}", type="CouponRefused",
                non_retryable=True,
            ) from None

    @staticmethod
    def _result(refund: stripe.Refund, reused: bool) -> RefundResult:
        return RefundResult(
            refund_id=refund.id,
            amount=Money(amount=refund.amount, currency=refund.currency.upper()),
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


# Upper case without the look-alikes 0/O, 1/I/L: read out loud or typed from a letter.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12


def promotion_code() -> str:
    """A code the customer types at checkout: random, so that it cannot be derived from the incident key."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _metadata(obj: Any) -> dict[str, Any]:
    return obj.metadata.to_dict() if getattr(obj, "metadata", None) else {}


@asynccontextmanager
async def heartbeating(doing: str, every: float = 2.0) -> AsyncIterator[None]:
    """Heartbeat while a Stripe call is in flight, so that a slow answer is not taken for a dead worker."""

    async def beat() -> None:
        while True:
            activity.heartbeat(doing)
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


def stripe_client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        http_client=stripe.HTTPXClient(),
        max_network_retries=0,  # Temporal retries the activity
    )

"""amends with its integrations replaced by no-ops: the engine's cost alone.

Every activity that talks to the outside world (Stripe, SMTP, webhooks,
pages) is registered under its own name by a function that answers at once
with what the real one answers when everything goes well (a refund of the
amount asked, a delivered webhook with a reference, a Message-ID), so the
workflow takes the same path and records the same history. The local
activities that are the engine's own computation (the SLA policy, the
trusted keys, the business clock) stay real.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from workflows.payloads import (
    CouponRequest,
    CouponResult,
    Notice,
    PageRequest,
    RefundRequest,
    RefundResult,
    WebhookReceipt,
    WebhookRequest,
)

ENGINE = {"set_up_incident", "load_sla_policy", "load_trust", "verify_credential", "business_clock_advance",
          "business_clock_elapsed"}


@activity.defn(name="refund_payment")
async def refund_payment(req: RefundRequest) -> RefundResult:
    return RefundResult(refund_id=f"re_noop_{abs(hash(req.idempotency_key)):x}", amount=req.amount)


@activity.defn(name="create_coupon")
async def create_coupon(req: CouponRequest) -> CouponResult:
    return CouponResult(coupon_id=req.coupon_id, code=f"NOOP-{abs(hash(req.coupon_id)):X}"[:16])


@activity.defn(name="post_webhook")
async def post_webhook(req: WebhookRequest) -> WebhookReceipt:
    return WebhookReceipt(delivered=True, status=200, reference=f"ref-{abs(hash(req.idempotency_key)):x}")


@activity.defn(name="post_notice_webhook")
async def post_notice_webhook(notice: Notice) -> WebhookReceipt:
    return WebhookReceipt(delivered=True, status=200, reference=f"ref-{abs(hash(notice.message_id)):x}")


@activity.defn(name="send_notice")
async def send_notice(notice: Notice) -> str:
    return f"<{notice.message_id}@example.com>"


@activity.defn(name="page")
async def page(req: PageRequest) -> str:
    return "email"


@activity.defn(name="page_email")
async def page_email(req: PageRequest) -> str:
    return "email"


@activity.defn(name="page_webhook")
async def page_webhook(req: PageRequest) -> str:
    return "webhook"


INTEGRATIONS: list[Callable[..., Any]] = [
    refund_payment, create_coupon, post_webhook, post_notice_webhook, send_notice, page, page_email, page_webhook,
]


def name_of(fn: Callable[..., Any]) -> str:
    defn = activity._Definition.must_from_callable(fn)
    return defn.name or ""


def noop_activities(real: list[Callable[..., Any]]) -> list[Callable[..., Any]]:
    """``real``'s engine activities as they are, its integrations replaced by the no-ops above."""
    engine = [fn for fn in real if name_of(fn) in ENGINE]
    assert {name_of(fn) for fn in engine} == ENGINE, "an engine activity was renamed"
    assert {name_of(fn) for fn in real} == ENGINE | {name_of(fn) for fn in INTEGRATIONS}, \
        "the worker's activities changed: update bench/noop.py"
    return engine + INTEGRATIONS

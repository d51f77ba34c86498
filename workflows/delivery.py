"""Delivering what was agreed and telling people: refunds, coupons, work orders, notices, the CRM.

A part of the incident: it receives the ``Playbook`` and performs the
effects the update handlers queued, one at a time, through activities.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, RetryState

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows.effects import CustomerNotice
    from workflows.formatting import duration, money
    from workflows.inputs import Contact
    from workflows.money import Money
    from workflows.payloads import (
        CouponRequest,
        CouponResult,
        Notice,
        RefundRequest,
        RefundResult,
        WebhookReceipt,
        WebhookRequest,
    )
    from workflows.remedies import CouponItem, GiftItem, RefundItem, SplitCostItem
    from workflows.snapshot import MoneyMovement, RemedyItemState

from workflows.options import (
    NOTICE_OPTIONS,
    REFUND_OPTIONS,
    SYSTEM,
    WEBHOOK_OPTIONS,
    call,
    failure_reason,
    start,
)

if TYPE_CHECKING:
    from workflows.playbook import Playbook


# How long a refund may go unanswered before its outcome counts as unknown.
UNKNOWN_AFTER = timedelta(minutes=5)


class Delivery:
    def __init__(self, pb: Playbook) -> None:
        self.pb = pb
        # Item id -> the target its work order reached, and the items whose
        # cancellation was sent: both rebuilt by replay, which runs the same
        # sends again. A run lives until the post-mortem, long after the last
        # renegotiation can happen, so the run's memory is enough.
        self.sent: dict[str, str] = {}
        self.cancelled: set[str] = set()

    async def deliver(self, number: int) -> None:
        """Deliver every pending item of an agreed remedy, one at a time, in order."""
        pb = self.pb
        remedy = next(x for x in pb.s.remedies if x.number == number)
        if remedy.status != "agreed":
            return
        for item in remedy.items:
            if item.status != "pending" or remedy.status != "agreed":
                continue
            spec = item.item
            if isinstance(spec, (RefundItem, SplitCostItem)) and spec.delivery == "refund":
                await self._refund(item, spec.share if isinstance(spec, SplitCostItem) else spec.amount)
            elif spec.delivery == "coupon":
                await self._coupon(item)
            elif spec.delivery in ("billing", "work_order"):
                await self._work_order(item)
            else:  # a gift note travels with the closing notice
                item.status = "delivered"
                pb.record("deliver", SYSTEM, None, f"{item.item_id}: {spec.describe()}")
                pb.publish()
        pb.fulfil_if_delivered(remedy)

    def _key(self, item: RemedyItemState) -> str:
        # Stable across retries, worker crashes and workflow resets: the
        # workflow id and item, never the run id.
        return f"{self.pb.s.workflow_id}/{item.item_id}"

    async def _failed(self, item: RemedyItemState, err: ActivityError) -> None:
        """Never silently stuck: record it, page the owner, allow renegotiation."""
        pb, r = self.pb, self.pb.r
        reason = failure_reason(err)
        item.status, item.failure = "failed", reason
        pb.record(f"{item.item.kind}_failed", SYSTEM, None, f"{item.item_id}: {reason}")
        pb.publish()
        await self.notify_internal(
            "fulfilment_failed", key=f"failed-{item.item_id}", item=item.item.describe(), reason=reason,
            refundable=money(r.paid.amount - r.committed_refunds(), r.currency),
        )

    def _delivered(self, item: RemedyItemState, kind: str, amount: Money | None, reference: str, detail: str,
                   stripe_id: str | None = None) -> None:
        """Money went out through Stripe: the item is done, the movement and the step recorded.

        ``reference`` is what the item shows (and a coupon's customer is told);
        the movement keeps the Stripe object's id, ``stripe_id`` when it differs.
        """
        pb = self.pb
        item.status, item.reference = "delivered", reference
        if amount is not None:
            pb.s.money_moved.append(
                MoneyMovement(item_id=item.item_id, kind=kind, amount=amount, reference=stripe_id or reference,
                              at=pb.now())
            )
        pb.record(kind, SYSTEM, "stripe", detail)
        pb.publish()

    async def _refund(self, item: RemedyItemState, amount: Money) -> None:
        pb, s = self.pb, self.pb.s
        item.status = "in_progress"
        pb.publish()
        request = RefundRequest(
            idempotency_key=self._key(item),
            incident_workflow_id=s.workflow_id,
            item_id=item.item_id,
            payment_reference=s.report.order.payment_reference or "",
            amount=amount,
            amount_paid=s.report.order.amount_paid,
            reason=getattr(item.item, "reason", item.item.kind),
        )
        refund = start("refund_payment", request, RefundResult, REFUND_OPTIONS, f"refund {amount} via Stripe")
        try:
            try:
                # Incidents that started their refund before this watch existed await it as they did.
                if self.pb.v.patched("refund-outcome-unknown"):
                    watch = f"refund {item.item_id} unanswered for {duration(UNKNOWN_AFTER)}: outcome unknown"
                    await workflow.wait_condition(refund.done, timeout=UNKNOWN_AFTER, timeout_summary=watch)
            except TimeoutError:
                # Stripe has not answered for minutes: the money may have moved. Say so,
                # count it as paid, and keep asking (each attempt looks it up first).
                item.status = "unknown"
                pb.record("refund_unknown", SYSTEM, "stripe",
                          f"{item.item_id}: {amount} refund outcome unknown; still asking Stripe")
                pb.publish()
            result = await refund
        except ActivityError as err:
            await self._failed(item, err)
            return
        metrics.refunded(result.amount.amount, result.amount.currency)
        self._delivered(item, "refund", result.amount, result.refund_id,
                        f"{item.item_id}: {result.amount} refunded ({result.refund_id})")

    async def _coupon(self, item: RemedyItemState) -> None:
        pb, s = self.pb, self.pb.s
        spec = item.item
        amount_off: Money | None = None
        percent_off = None
        valid_days = 365
        if isinstance(spec, CouponItem):
            amount_off, percent_off, valid_days = spec.amount_off, spec.percent_off, spec.valid_for_days
        elif isinstance(spec, SplitCostItem):
            amount_off = spec.share
        elif isinstance(spec, GiftItem):
            amount_off = spec.coupon_amount
        item.status = "in_progress"
        pb.publish()
        request = CouponRequest(
            coupon_id=self._key(item).replace("/", "-"),
            incident_workflow_id=s.workflow_id,
            item_id=item.item_id,
            amount_off=amount_off,
            percent_off=percent_off,
            redeem_by=pb.now() + timedelta(days=valid_days),
        )
        off = str(amount_off) if amount_off else f"{percent_off}%"
        try:
            result = await call("create_coupon", request, CouponResult, REFUND_OPTIONS, f"coupon {off} off via Stripe")
        except ActivityError as err:
            await self._failed(item, err)
            return
        # The customer gets the single-use promotion code, never the coupon id (which
        # anyone can derive from the incident key); the coupon id stays in the money
        # movement and the timeline. A result recorded before codes existed has none.
        code = result.code or result.coupon_id
        promo = f", promotion code {result.code}" if result.code else ""
        self._delivered(item, "coupon", amount_off, code,
                        f"{item.item_id}: coupon {result.coupon_id} ({off} off){promo}", stripe_id=result.coupon_id)

    async def _work_order(self, item: RemedyItemState) -> None:
        """A signed work order; billing answers at once, the others confirm later."""
        pb, s = self.pb, self.pb.s
        spec = item.item
        target = "billing" if spec.delivery == "billing" else "work_orders"
        item.status = "in_progress"
        pb.publish()
        request = WebhookRequest(
            target=target,
            event=f"work_order.{spec.kind}",
            idempotency_key=self._key(item),
            payload={
                "incident": s.workflow_id,
                "item_id": item.item_id,
                "item": spec.model_dump(mode="json"),
                "customer": s.report.customer.model_dump(mode="json"),
                "order": s.report.order.model_dump(mode="json"),
                "confirm_with": {"update": "confirm_fulfilment", "workflow_id": s.workflow_id,
                                 "input": {"item_id": item.item_id}},
            },
            required=False,
        )
        try:
            summary = f"{spec.kind.replace('_', ' ')} work order to {target}"
            receipt = await call("post_webhook", request, WebhookReceipt, WEBHOOK_OPTIONS, summary)
        except ActivityError as err:
            await self._failed(item, err)
            return
        item.reference = item.reference or receipt.reference
        if receipt.delivered:
            self.sent[item.item_id] = target
        if confirmed_meanwhile(item):
            # The backend did the work and confirmed it before its answer to
            # the work order reached us.
            return
        if not receipt.delivered:
            # No backend takes this kind of work here: a person does it and
            # confirms it, as they would have without amends.
            item.status = "awaiting_confirmation"
            pb.record("work_order", SYSTEM, None,
                      f"{item.item_id}: {receipt.detail}; awaiting confirm_fulfilment by an agent")
        elif target == "billing":
            item.status = "delivered"
            pb.record("waive_balance", SYSTEM, "billing", f"{item.item_id}: {spec.describe()}")
        else:
            item.status = "awaiting_confirmation"
            pb.record("work_order", SYSTEM, target,
                      f"{item.item_id}: work order sent ({receipt.reference or 'no reference'}); awaiting confirmation")
        pb.publish()

    async def cancel_work_orders(self, number: int, reason: str) -> None:
        """Cancel every work order of a renegotiated remedy that a backend was sent and has not done.

        Items delivered or failed, and those whose order never reached a
        backend (no target configured), get none; each item gets one.
        """
        remedy = next(x for x in self.pb.s.remedies if x.number == number)
        outstanding = [i for i in remedy.items
                       if i.status == "cancelled" and i.item_id in self.sent and i.item_id not in self.cancelled]
        # Incidents renegotiated before cancellations existed left their backends at work, as they did.
        if not outstanding or not self.pb.v.patched("cancel-work-orders"):
            return
        self.cancelled.update(i.item_id for i in outstanding)
        # One backend slow to answer must not hold up the others' cancellations.
        await asyncio.gather(*(self._cancel(remedy.number, item, reason) for item in outstanding))

    async def _cancel(self, number: int, item: RemedyItemState, reason: str) -> None:
        pb, s = self.pb, self.pb.s
        spec, target = item.item, self.sent[item.item_id]
        request = WebhookRequest(
            target=target,
            event="work_order.cancelled",
            # Its own key: the backend de-duplicates cancellations apart from the order.
            idempotency_key=f"{self._key(item)}/cancel",
            payload={
                "incident": s.workflow_id,
                "item_id": item.item_id,
                "work_order": self._key(item),  # the Idempotency-Key the work order carried
                "reference": item.reference,
                "item": spec.model_dump(mode="json"),
                "reason": f"remedy #{number} renegotiated: {reason}",
            },
            required=False,
            answers=[409],
        )
        summary = f"cancel the {spec.kind.replace('_', ' ')} work order at {target}"
        try:
            receipt = await call("post_webhook", request, WebhookReceipt, WEBHOOK_OPTIONS, summary)
        except ActivityError as err:
            # Rejected, or unanswered after every retry: the work may go ahead.
            why = failure_reason(err).removesuffix("; will retry")
            if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
                why = f"unanswered after every retry (last: {why})"
            step, detail = "work_order_cancel_failed", (f"{item.item_id}: cancellation failed, the backend may "
                                                        f"still do the work: {why}")
        else:
            if receipt.status == 409:
                step, detail = "work_order_already_shipped", (f"{item.item_id}: too late to cancel, "
                                                              f"{receipt.detail or 'already shipped'}")
            elif receipt.delivered:
                refs = [f"order {item.reference}"] if item.reference else []
                refs += [f"cancellation {receipt.reference}"] if receipt.reference else []
                step = "work_order_cancelled"
                detail = f"{item.item_id}: work order cancelled ({', '.join(refs) or 'no reference'})"
            else:
                step, detail = "work_order_cancel_failed", f"{item.item_id}: not cancelled: {receipt.detail}"
        pb.record(step, SYSTEM, target, detail)
        pb.publish()

    async def tell_crm(self, reason: str) -> None:
        pb, s = self.pb, self.pb.s
        request = WebhookRequest(
            target="crm", event="account.red_flagged", idempotency_key=f"{s.workflow_id}/red-flag",
            payload={"incident": s.workflow_id, "customer_id": s.report.customer.customer_id, "reason": reason},
            required=False,
        )
        try:
            receipt = await call("post_webhook", request, WebhookReceipt, WEBHOOK_OPTIONS, "red flag to the CRM")
            detail = "CRM told" if receipt.delivered else receipt.detail
        except ActivityError as err:
            detail = f"CRM not told: {failure_reason(err)}"
        pb.record("crm", SYSTEM, "webhook", detail)
        pb.publish()

    async def notify_customer(self, kind: CustomerNotice) -> bool:
        """Send a customer notice by e-mail (and the notices webhook); whether the e-mail went out. The
        timeline records it when it was sent, or that it failed (then a human takes it over)."""
        pb, s, r = self.pb, self.pb.s, self.pb.r
        remedy = r.agreed if kind == "closing" else (r.proposal or r.agreed)
        agreed = r.agreed
        # Dates, amounts and remedy items go raw (ISO date, minor units, the item's JSON): the
        # notices activity writes them in the customer's language (``locale``) when it renders.
        gift = s.report.anniversary_gift
        context = {
            "locale": s.report.locale,
            "customer_name": s.report.customer.name,
            "order_id": s.report.order.order_id,
            "what_happened": s.report.what_happened,
            "impact": s.report.impact,
            "detected_on": s.report.detected_at.date().isoformat(),
            "remedy": [notice_item(i) for i in remedy.items] if remedy else [],
            "refunded": {"amount": r.refunded_total, "currency": r.currency} if r.refunded_total else "",
            "preventive_actions": [x.action for x in s.actions if x.status == "done"],
            "remedy_summary": [i.item.describe() for i in agreed.items] if agreed else [],
            "gift": gift.model_dump(mode="json") if gift is not None and s.anniversary_gift_code else "",
            "gift_code": s.anniversary_gift_code or "",
        }
        notice = Notice(
            kind=kind,
            audience="customer",
            to=Contact(name=s.report.customer.name, email=s.report.customer.email),
            message_id=f"{s.workflow_id}/{kind}/{len(s.timeline)}",
            context=context,
            redact=r.staff_names(),
            # The anniversary note comes from the executive; its replies go to the care team.
            signer=r.care_contact() if kind != "anniversary" else None,
        )
        if pb.independent:
            return await self._notify_both(notice, kind)
        try:
            await call("send_notice", notice, str, NOTICE_OPTIONS, f"{kind} notice to the customer by email")
            self._sent(kind)
            # The same words for backends that send SMS or in-app messages
            # themselves (skipped when no notices webhook is configured).
            await call("post_notice_webhook", notice, WebhookReceipt, NOTICE_OPTIONS, f"{kind} notice as a webhook")
        except ActivityError as err:
            # A notice that can never go out (it would name staff, a broken
            # template) must not end the incident: a human takes it over.
            reason = failure_reason(err)
            pb.record("notice_failed", SYSTEM, "email", f"{kind} notice not sent: {reason}")
            pb.publish()
            await self.notify_internal("notice_failed", key=f"notice-failed-{kind}-{len(s.timeline)}", notice=kind,
                                       reason=reason)
            return False
        return True

    def _sent(self, kind: CustomerNotice) -> None:
        # When it went out, not when it was queued (recorded so since the patch).
        if self.pb.v.patched("notice-entries"):
            self.pb.record("notice", SYSTEM, "email", f"{kind} e-mailed to the customer")
            self.pb.publish()

    async def _notify_both(self, notice: Notice, kind: CustomerNotice) -> bool:
        """The e-mail and the notices webhook, each on its own: one that fails holds back neither."""
        pb = self.pb

        async def send() -> None:
            await call("send_notice", notice, str, NOTICE_OPTIONS, f"{kind} notice to the customer by email")
            self._sent(kind)

        email, hook = await asyncio.gather(
            send(),
            # The same words for backends that send SMS or in-app messages
            # themselves (skipped when no notices webhook is configured).
            call("post_notice_webhook", notice, WebhookReceipt, NOTICE_OPTIONS, f"{kind} notice as a webhook"),
            return_exceptions=True,
        )
        for outcome in (email, hook):
            if isinstance(outcome, BaseException) and not isinstance(outcome, ActivityError):
                raise outcome
        if isinstance(hook, ActivityError):
            pb.record("notice_failed", SYSTEM, "webhook", f"{kind} notice webhook not sent: {failure_reason(hook)}")
            pb.publish()
        if isinstance(email, ActivityError):
            # A notice that can never go out (it would name staff, a broken
            # template) must not end the incident: a human takes it over.
            reason = failure_reason(email)
            pb.record("notice_failed", SYSTEM, "email", f"{kind} notice not sent: {reason}")
            pb.publish()
            await self.notify_internal("notice_failed", key=f"notice-failed-{kind}-{notice.message_id}",
                                       notice=kind, reason=reason)
            return False
        return True

    async def notify_internal(self, kind: str, key: str, **context: Any) -> None:
        pb, s = self.pb, self.pb.s
        notice = Notice(
            kind=kind,
            audience="internal",
            to=s.report.owner,
            message_id=f"{s.workflow_id}/{key}",
            context={
                "incident": s.workflow_id,
                "customer_id": s.report.customer.customer_id,
                "severity": str(s.report.severity),
                "what_happened": s.report.what_happened,
                **context,
            },
        )
        try:
            await call("send_notice", notice, str, NOTICE_OPTIONS, f"{kind} notice to the owner")
        except ActivityError as err:
            pb.record("notice_failed", SYSTEM, "email", f"internal {kind} notice not sent: {failure_reason(err)}")
            pb.publish()


def notice_item(state: RemedyItemState) -> dict[str, Any]:
    """A remedy item as a customer notice lists it: the item itself, and a coupon's code once it exists."""
    code = state.reference if state.item.delivery == "coupon" and state.status == "delivered" else None
    return {"item": state.item.model_dump(mode="json"), "code": code or ""}


def confirmed_meanwhile(item: RemedyItemState) -> bool:
    """An update may change an item while its activity runs; read its status afresh."""
    return item.status == "delivered"

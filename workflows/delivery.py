"""Side effects, performed one at a time by the run loop: delivering remedies, notices, the CRM.

A mixin of ``IncidentRecovery``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows.contracts import (
        Contact,
        CouponItem,
        CouponRequest,
        CouponResult,
        Money,
        MoneyMovement,
        Notice,
        RefundRequest,
        RefundResult,
        Remedy,
        RemedyItemState,
        Snapshot,
        SplitCostItem,
        WebhookReceipt,
        WebhookRequest,
    )
    from workflows.recovery import money
    from workflows.stages import Stage

from workflows.options import SYSTEM, NOTICE_OPTIONS, WEBHOOK_OPTIONS, REFUND_OPTIONS, failure_reason, customer_line


class Delivery:
    # ================================================================ effects

    async def _perform_effects(self) -> None:
        while self._effects:
            kind, what = self._effects.pop(0)
            if kind == "notice":
                await self._notify_customer(what)
            elif kind == "deliver":
                await self._deliver(int(what))
            elif kind == "crm":
                await self._tell_crm(what)
            elif kind == "clock":
                await self._clock_effect(what)

    async def _deliver(self, number: int) -> None:
        """Deliver every pending item of an agreed remedy, one at a time, in order."""
        r = self._r
        remedy = next(x for x in r.remedies if x.number == number)
        if remedy.status != "agreed":
            return
        for item in remedy.items:
            if item.status != "pending" or remedy.status != "agreed":
                continue
            spec = item.item
            delivery = spec.delivery
            if delivery == "refund":
                amount = spec.share if isinstance(spec, SplitCostItem) else spec.amount  # type: ignore[union-attr]
                await self._refund(item, amount)
            elif delivery == "coupon":
                await self._coupon(item)
            elif delivery in ("billing", "work_order"):
                await self._work_order(item)
            else:  # a gift note travels with the closing notice
                item.status = "delivered"
                r.record(workflow.now(), "deliver", SYSTEM, None, f"{item.item_id}: {spec.describe()}")
                self._publish()
        self._fulfil_if_delivered(remedy)

    def _fulfil_if_delivered(self, remedy: Remedy) -> Snapshot | None:
        r = self._r
        if r.stage != Stage.REMEDY_AGREED or not r.is_delivered():
            return None
        r.fulfil()  # the engine's step in the table
        remedy.status = "delivered"
        r.record(workflow.now(), "fulfil", SYSTEM, None, f"remedy #{remedy.number} delivered in full")
        self._enter_stage()
        return r.snapshot()

    def _key(self, item: RemedyItemState) -> str:
        # Stable across retries, worker crashes and workflow resets: the
        # workflow id and item, never the run id.
        return f"{self._r.workflow_id}/{item.item_id}"

    async def _failed(self, item: RemedyItemState, err: ActivityError) -> None:
        """Never silently stuck: record it, page the owner, allow renegotiation."""
        r = self._r
        reason = failure_reason(err)
        item.status, item.failure = "failed", reason
        r.record(workflow.now(), f"{item.item.kind}_failed", SYSTEM, None, f"{item.item_id}: {reason}")
        self._publish()
        await self._notify_internal(
            "fulfilment_failed", key=f"failed-{item.item_id}", item=item.item.describe(), reason=reason,
            refundable=money(r.report.order.amount_paid.amount - r.committed_refunds(), r.currency),
        )

    async def _refund(self, item: RemedyItemState, amount: Money) -> None:
        r = self._r
        item.status = "in_progress"
        self._publish()
        request = RefundRequest(
            idempotency_key=self._key(item),
            incident_workflow_id=r.workflow_id,
            item_id=item.item_id,
            payment_reference=r.report.order.payment_reference or "",
            amount=amount,
            amount_paid=r.report.order.amount_paid,
            reason=getattr(item.item, "reason", item.item.kind),
        )
        try:
            result = await workflow.execute_activity(
                "refund_payment", request, result_type=RefundResult,
                summary=f"refund {amount} via Stripe", **REFUND_OPTIONS,
            )
        except ActivityError as err:
            await self._failed(item, err)
            return
        item.status, item.reference = "delivered", result.refund_id
        metrics.refunded(result.amount.amount, result.amount.currency)
        r.money_moved.append(
            MoneyMovement(item_id=item.item_id, kind="refund", amount=result.amount, reference=result.refund_id,
                          at=workflow.now())
        )
        r.record(workflow.now(), "refund", SYSTEM, "stripe", f"{item.item_id}: {result.amount} refunded ({result.refund_id})")
        self._publish()

    async def _coupon(self, item: RemedyItemState) -> None:
        r = self._r
        spec = item.item
        amount_off: Money | None
        percent_off = None
        valid_days = 365
        if isinstance(spec, CouponItem):
            amount_off, percent_off, valid_days = spec.amount_off, spec.percent_off, spec.valid_for_days
        elif isinstance(spec, SplitCostItem):
            amount_off = spec.share
        else:
            amount_off = spec.coupon_amount  # type: ignore[union-attr]
        item.status = "in_progress"
        self._publish()
        request = CouponRequest(
            coupon_id=self._key(item).replace("/", "-"),
            incident_workflow_id=r.workflow_id,
            item_id=item.item_id,
            amount_off=amount_off,
            percent_off=percent_off,
            redeem_by=workflow.now() + timedelta(days=valid_days),
        )
        off = str(amount_off) if amount_off else f"{percent_off}%"
        try:
            result = await workflow.execute_activity(
                "create_coupon", request, result_type=CouponResult,
                summary=f"coupon {off} off via Stripe", **REFUND_OPTIONS,
            )
        except ActivityError as err:
            await self._failed(item, err)
            return
        item.status, item.reference = "delivered", result.coupon_id
        if amount_off:
            r.money_moved.append(
                MoneyMovement(item_id=item.item_id, kind="coupon", amount=amount_off, reference=result.coupon_id,
                              at=workflow.now())
            )
        r.record(workflow.now(), "coupon", SYSTEM, "stripe", f"{item.item_id}: coupon {result.coupon_id} ({off} off)")
        self._publish()

    async def _work_order(self, item: RemedyItemState) -> None:
        """A signed work order; billing answers at once, the others confirm later."""
        r = self._r
        spec = item.item
        target = "billing" if spec.delivery == "billing" else "work_orders"
        item.status = "in_progress"
        self._publish()
        request = WebhookRequest(
            target=target,
            event=f"work_order.{spec.kind}",
            idempotency_key=self._key(item),
            payload={
                "incident": r.workflow_id,
                "item_id": item.item_id,
                "item": spec.model_dump(mode="json"),
                "customer": r.report.customer.model_dump(mode="json"),
                "order": r.report.order.model_dump(mode="json"),
                "confirm_with": {"update": "confirm_fulfilment", "workflow_id": r.workflow_id,
                                 "input": {"item_id": item.item_id}},
            },
            required=False,
        )
        try:
            receipt = await workflow.execute_activity(
                "post_webhook", request, result_type=WebhookReceipt,
                summary=f"{spec.kind.replace('_', ' ')} work order to {target}", **WEBHOOK_OPTIONS,
            )
        except ActivityError as err:
            await self._failed(item, err)
            return
        item.reference = item.reference or receipt.reference
        if item.status == "delivered":
            # The backend did the work and confirmed it before its answer to
            # the work order reached us.
            return
        if not receipt.delivered:
            # No backend takes this kind of work here: a person does it and
            # confirms it, as they would have without amends.
            item.status = "awaiting_confirmation"
            r.record(workflow.now(), "work_order", SYSTEM, None,
                     f"{item.item_id}: {receipt.detail}; awaiting confirm_fulfilment by an agent")
        elif target == "billing":
            item.status = "delivered"
            r.record(workflow.now(), "waive_balance", SYSTEM, "billing", f"{item.item_id}: {spec.describe()}")
        else:
            item.status = "awaiting_confirmation"
            r.record(workflow.now(), "work_order", SYSTEM, target,
                     f"{item.item_id}: work order sent ({receipt.reference or 'no reference'}); awaiting confirmation")
        self._publish()

    async def _tell_crm(self, reason: str) -> None:
        r = self._r
        request = WebhookRequest(
            target="crm", event="account.red_flagged", idempotency_key=f"{r.workflow_id}/red-flag",
            payload={"incident": r.workflow_id, "customer_id": r.report.customer.customer_id, "reason": reason},
            required=False,
        )
        try:
            receipt = await workflow.execute_activity(
                "post_webhook", request, result_type=WebhookReceipt, summary="red flag to the CRM", **WEBHOOK_OPTIONS,
            )
            detail = "CRM told" if receipt.delivered else receipt.detail
        except ActivityError as err:
            detail = f"CRM not told: {failure_reason(err)}"
        r.record(workflow.now(), "crm", SYSTEM, "webhook", detail)
        self._publish()

    async def _notify_customer(self, kind: str) -> None:
        r = self._r
        remedy = r.agreed if kind == "closing" else (r.proposal or r.agreed)
        context = {
            "customer_name": r.report.customer.name,
            "order_id": r.report.order.order_id,
            "what_happened": r.report.what_happened,
            "impact": r.report.impact,
            "detected_on": r.report.detected_at.date().isoformat(),
            "remedy": [customer_line(i) for i in remedy.items] if remedy else [],
            "refunded": money(r.refunded_total, r.currency) if r.refunded_total else "",
            "preventive_actions": [a.action for a in r.actions if a.status == "done"],
            "remedy_summary": r.remedy_summary,
            "gift": str(r.report.anniversary_gift) if r.anniversary_gift_code else "",
            "gift_code": r.anniversary_gift_code or "",
        }
        notice = Notice(
            kind=kind,
            audience="customer",
            to=Contact(name=r.report.customer.name, email=r.report.customer.email),
            message_id=f"{r.workflow_id}/{kind}/{len(r.timeline)}",
            context=context,
            redact=r.staff_names(),
        )
        try:
            await workflow.execute_activity(
                "send_notice", notice, summary=f"{kind} notice to the customer by email", **NOTICE_OPTIONS
            )
            # The same words for backends that send SMS or in-app messages
            # themselves (skipped when no notices webhook is configured).
            await workflow.execute_activity(
                "post_notice_webhook", notice, result_type=WebhookReceipt,
                summary=f"{kind} notice as a webhook", **NOTICE_OPTIONS,
            )
        except ActivityError as err:
            # A notice that can never go out (it would name staff, a broken
            # template) must not end the incident: a human takes it over.
            reason = failure_reason(err)
            r.record(workflow.now(), "notice_failed", SYSTEM, "email", f"{kind} notice not sent: {reason}")
            self._publish()
            await self._notify_internal("notice_failed", key=f"notice-failed-{kind}-{len(r.timeline)}", notice=kind, reason=reason)

    async def _notify_internal(self, kind: str, key: str, **context) -> None:
        r = self._r
        notice = Notice(
            kind=kind,
            audience="internal",
            to=r.report.owner,
            message_id=f"{r.workflow_id}/{key}",
            context={
                "incident": r.workflow_id,
                "customer_id": r.report.customer.customer_id,
                "severity": str(r.report.severity),
                "what_happened": r.report.what_happened,
                **context,
            },
        )
        try:
            await workflow.execute_activity(
                "send_notice", notice, summary=f"{kind} notice to the owner", **NOTICE_OPTIONS
            )
        except ActivityError as err:
            r.record(workflow.now(), "notice_failed", SYSTEM, "email", f"internal {kind} notice not sent: {failure_reason(err)}")
            self._publish()

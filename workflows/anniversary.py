"""The year of waiting: follow-ups of the preventive actions, then the note from the top.

A part of the incident: it receives the ``Playbook`` (continued as new with
the whole state) and the ``Delivery`` that sends notices and coupons.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.money import Money
    from workflows.payloads import CouponRequest, CouponResult, PageRequest
    from workflows.sla import PageTarget
    from workflows.snapshot import ActionState

from workflows.clock import send_page
from workflows.dispatch import perform
from workflows.options import CLOCK, REFUND_OPTIONS, SYSTEM, call, failure_reason

if TYPE_CHECKING:
    from workflows.delivery import Delivery
    from workflows.playbook import Playbook

FollowUp = tuple[datetime, str, ActionState]


class Anniversary:
    def __init__(self, pb: Playbook, delivery: Delivery) -> None:
        self.pb = pb
        self.delivery = delivery

    async def wait_a_year(self) -> None:
        """A year of waiting: follow up the preventive actions, then the note from the top."""
        pb = self.pb
        pb.publish()
        due = pb.r.anniversary_due_at
        while workflow.now() < due:
            seen = pb.changes
            event = self._next_follow_up()
            until = min(due, event[0]) if event else due
            summary = f"{event[1]}: {event[2].action_id}" if event and event[0] < due else "anniversary note"
            try:
                await workflow.wait_condition(
                    pb.moved_since(seen),
                    timeout=max(until - workflow.now(), timedelta(0)) or timedelta(milliseconds=1),
                    timeout_summary=summary,
                )
            except TimeoutError:
                pass
            await perform(pb, self.delivery)
            event = self._next_follow_up()
            if event and event[0] <= workflow.now():
                await self._follow_up(event[1], event[2])
        await self._note()

    def _next_follow_up(self) -> FollowUp | None:
        """An open action is reminded the day after it was due, and escalated two days later."""
        events: list[FollowUp] = []
        for action in self.pb.s.actions:
            if action.status != "open" or action.reminders >= 2:
                continue
            overdue_from = datetime.combine(action.due + timedelta(days=1), time(0), UTC)
            if action.reminders == 0:
                events.append((overdue_from, "reminder", action))
            else:
                events.append((overdue_from + timedelta(days=2), "action_overdue", action))
        return min(events, key=lambda e: e[0]) if events else None

    async def _follow_up(self, kind: str, action: ActionState) -> None:
        pb, s = self.pb, self.pb.s
        action.reminders += 1
        if kind == "reminder":
            target = PageTarget(name=action.owner.name, email=str(action.owner.email))
            target_key = None
            detail = f"{action.action_id} overdue since {action.due.isoformat()}: reminded {action.owner.name}"
        else:
            assert s.policy is not None
            # The second level of the ladder (the team lead by default), or the owner.
            level = next((lv for lv in s.policy.ladder.levels if lv.target != "owner"), None)
            target = s.policy.targets[level.target] if level else PageTarget(name="Customer care")
            target_key = level.target if level else None
            detail = f"{action.action_id} still open: escalated to {target.name}"
        pb.record(kind, CLOCK, None, detail)
        pb.publish()
        request = PageRequest(
            idempotency_key=f"{s.workflow_id}/{action.action_id}/{kind}",
            kind=kind, action=action.action, target_name=target.name, email=target.email,
            webhook_url=target.webhook_url, format=target.format, routing_key=target.routing_key,
            target=target_key, webhook=target.has_webhook, incident=s.workflow_id,
            customer_id=s.report.customer.customer_id, severity=str(s.report.severity),
            stage=str(s.stage), waiting_for=action.action,
            due_at=datetime.combine(action.due, time(0), UTC), what_happened=s.report.what_happened,
        )
        await send_page(pb, request, f"{kind.replace('_', ' ')} to {target.name}")

    async def _note(self) -> None:
        """One year on: a note from the top, with what changed since, and a small gift."""
        pb, s = self.pb, self.pb.s
        gift = s.report.anniversary_gift
        if pb.v.patched("anniversary-gift") and gift is not None:
            if s.red_flagged:
                pb.record("gift_withheld", SYSTEM, None, "no anniversary gift: the account is red-flagged")
            else:
                await self._gift(gift)
        sent = await self.delivery.notify_customer("anniversary")
        pb.r.anniversary()  # type: ignore[attr-defined]  # the clock's step in the table
        failed = not sent and pb.v.patched("notice-entries")  # before the patch, "sent" either way
        pb.record("anniversary", CLOCK, "email",
                  "anniversary note not sent: handed to the care team" if failed else "anniversary note sent")
        pb.enter_stage()

    async def _gift(self, gift: Money) -> None:
        pb, s = self.pb, self.pb.s
        request = CouponRequest(
            coupon_id=f"{s.workflow_id}-anniversary-gift",
            incident_workflow_id=s.workflow_id, item_id="anniversary-gift", amount_off=gift,
            redeem_by=workflow.now() + timedelta(days=90),
        )
        try:
            result = await call(
                "create_coupon", request, CouponResult, REFUND_OPTIONS, f"anniversary gift {gift} via Stripe"
            )
        except ActivityError as err:
            pb.record("gift_failed", SYSTEM, None, f"anniversary gift not made: {failure_reason(err)}")
            return
        # The customer gets the single-use promotion code; the coupon id stays in the timeline.
        s.anniversary_gift_code = result.code or result.coupon_id
        promo = f", promotion code {result.code}" if result.code else ""
        pb.record("gift", SYSTEM, "stripe", f"anniversary gift {gift}: coupon {result.coupon_id}{promo}")

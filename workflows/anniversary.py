"""The year of waiting: carried across continue-as-new, follow-ups of the actions, the note.

A mixin of ``IncidentRecovery``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ActionState,
        AnniversaryPhase,
        CouponRequest,
        CouponResult,
        Money,
        PageRequest,
        Snapshot,
    )
    from workflows.sla import PageTarget, SlaPolicy
    from workflows.stages import Stage, build_machine

from workflows.options import SYSTEM, CLOCK, WEBHOOK_OPTIONS, REFUND_OPTIONS, failure_reason


class Anniversary:
    def _carry(self) -> AnniversaryPhase:
        r = self._r
        assert r.closed_at is not None and r.postmortem is not None and r.policy is not None
        milestones = {"detected", "apologise", "accept_remedy", "fulfil", "close", "record_postmortem", "flag_account",
                      "complete_action"}
        apologised = next((e.at for e in r.timeline if e.step == "apologise"), None)
        return AnniversaryPhase(
            closed_at=r.closed_at,
            apologised_at=apologised,
            remedy_summary=[i.item.describe() for i in r.agreed.items] if r.agreed else [],
            refunded_total=r.refunded_total,
            breaches=len({e.stage for e in r.timeline if e.step == "escalate"}),  # stages that missed a deadline
            postmortem=r.postmortem,
            actions=r.actions,
            flags=r.flags,
            red_flagged=r.red_flagged,
            timeline=[e for e in r.timeline if e.step in milestones],
            policy=r.policy.model_dump(mode="json"),
        )

    def _restore(self, phase: AnniversaryPhase) -> None:
        r = self._r
        build_machine(r, initial=Stage.POSTMORTEM_DONE)
        r.phase = "anniversary"
        r.closed_at, r.postmortem, r.actions = phase.closed_at, phase.postmortem, phase.actions
        r.flags, r.red_flagged, r.timeline = phase.flags, phase.red_flagged, phase.timeline
        r.remedy_summary, r.carried_refunds = phase.remedy_summary, phase.refunded_total
        r.carried_breaches = phase.breaches
        r.policy = SlaPolicy.model_validate(phase.policy)

    async def _anniversary_phase(self) -> Snapshot:
        """A year of waiting: follow up the preventive actions, then the note from the top."""
        r = self._r
        self._publish()
        due = r.anniversary_due_at
        while workflow.now() < due:
            seen = self._changes
            event = self._next_action_event()
            until = min(due, event[0]) if event else due
            summary = f"{event[1]}: {event[2].action_id}" if event and event[0] < due else "anniversary note"
            try:
                await workflow.wait_condition(
                    lambda: bool(self._effects) or self._changes != seen,
                    timeout=max(until - workflow.now(), timedelta(0)) or timedelta(milliseconds=1),
                    timeout_summary=summary,
                )
            except asyncio.TimeoutError:
                pass
            await self._perform_effects()
            event = self._next_action_event()
            if event and event[0] <= workflow.now():
                await self._follow_up(event[1], event[2])
        await self._anniversary()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return r.snapshot()

    def _next_action_event(self) -> tuple[datetime, str, ActionState] | None:
        """An open action is reminded the day after it was due, and escalated two days later."""
        events = []
        for action in self._r.actions:
            if action.status != "open" or action.reminders >= 2:
                continue
            overdue_from = datetime.combine(action.due + timedelta(days=1), time(0), timezone.utc)
            if action.reminders == 0:
                events.append((overdue_from, "reminder", action))
            else:
                events.append((overdue_from + timedelta(days=2), "action_overdue", action))
        return min(events, key=lambda e: e[0]) if events else None

    async def _follow_up(self, kind: str, action: ActionState) -> None:
        r = self._r
        action.reminders += 1
        if kind == "reminder":
            target = PageTarget(name=action.owner.name, email=str(action.owner.email))
            detail = f"{action.action_id} overdue since {action.due.isoformat()}: reminded {action.owner.name}"
        else:
            assert r.policy is not None
            # The second level of the ladder (the team lead by default), or the owner.
            level = next((lv for lv in r.policy.ladder.levels if lv.target != "owner"), None)
            target = r.policy.targets[level.target] if level else PageTarget(name="Customer care")
            detail = f"{action.action_id} still open: escalated to {target.name}"
        r.record(workflow.now(), kind, CLOCK, None, detail)
        self._publish()
        request = PageRequest(
            idempotency_key=f"{r.workflow_id}/{action.action_id}/{kind}",
            kind=kind, action=action.action, target_name=target.name, email=target.email,
            webhook_url=target.webhook_url, format=target.format, routing_key=target.routing_key,
            incident=r.workflow_id, customer_id=r.report.customer.customer_id, severity=str(r.report.severity),
            stage=str(r.stage), waiting_for=action.action,
            due_at=datetime.combine(action.due, time(0), timezone.utc), what_happened=r.report.what_happened,
        )
        try:
            sent = await workflow.execute_activity(
                "page", request, result_type=str, summary=f"{kind.replace('_', ' ')} to {target.name}",
                **WEBHOOK_OPTIONS,
            )
            r.record(workflow.now(), "paged", SYSTEM, None, f"{kind.replace('_', ' ')} to {target.name} by {sent}")
        except ActivityError as err:
            r.record(workflow.now(), "page_failed", SYSTEM, None, f"{kind} to {target.name} failed: {failure_reason(err)}")
        self._publish()

    async def _anniversary(self) -> None:
        """One year on: a note from the top, with what changed since, and a small gift."""
        r = self._r
        gift = r.report.anniversary_gift
        if workflow.patched("anniversary-gift") and gift is not None:
            if r.red_flagged:
                r.record(workflow.now(), "gift_withheld", SYSTEM, None,
                         "no anniversary gift: the account is red-flagged")
            else:
                await self._anniversary_gift(gift)
        await self._notify_customer("anniversary")
        r.anniversary()  # the clock's step in the table
        r.record(workflow.now(), "anniversary", CLOCK, "email", "anniversary note sent")
        self._enter_stage()

    async def _anniversary_gift(self, gift: Money) -> None:
        r = self._r
        request = CouponRequest(
            coupon_id=f"{r.workflow_id}-anniversary-gift",
            incident_workflow_id=r.workflow_id, item_id="anniversary-gift", amount_off=gift,
            redeem_by=workflow.now() + timedelta(days=90),
        )
        try:
            result = await workflow.execute_activity(
                "create_coupon", request, result_type=CouponResult, summary=f"anniversary gift {gift} via Stripe",
                **REFUND_OPTIONS,
            )
        except ActivityError as err:
            r.record(workflow.now(), "gift_failed", SYSTEM, None, f"anniversary gift not made: {failure_reason(err)}")
            return
        r.anniversary_gift_code = result.coupon_id
        r.record(workflow.now(), "gift", SYSTEM, "stripe", f"anniversary gift {gift}: coupon {result.coupon_id}")

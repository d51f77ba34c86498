"""The SLA clock of the current stage: plan, pause, resume, warn, escalate, page.

A mixin of ``IncidentRecovery``; its state lives in ``self._r.clock``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows.contracts import (
        ClockEvent,
        ClockState,
        PageRequest,
    )
    from workflows.sla import WAITING_FOR, AdvanceRequest, ElapsedRequest, PageTarget, human

from workflows.options import SYSTEM, CLOCK, WEBHOOK_OPTIONS, failure_reason


class SlaClock:
    # ================================================================ the SLA clock

    def _start_clock(self) -> None:
        """Start the current stage's clock (once the policy is known)."""
        r = self._r
        if r.policy is None or r.clock is not None:
            return
        target = r.policy.deadline(r.stage, r.report.severity)
        if target is None:
            return
        r.clock = ClockState(
            stage=r.stage, waiting_for=WAITING_FOR[r.stage], kind=r.policy.clock(r.report.severity),
            target=target, started_at=self._stage_entered_at, running_since=self._stage_entered_at,
        )
        self._plan()

    def _plan(self) -> None:
        """Schedule the warnings, the deadline and the ladder of a running clock."""
        clock, policy = self._r.clock, self._r.policy
        assert clock is not None and policy is not None and clock.running_since is not None
        offsets = [clock.target - clock.consumed]
        fractions = [f for f in policy.warn_at if f"warning-{f}" not in clock.fired and clock.target * f > clock.consumed]
        offsets += [clock.target * f - clock.consumed for f in fractions]
        if clock.kind == "calendar":
            self._planned(fractions, [clock.running_since + o for o in offsets])
        else:
            # Business hours need the time-zone database: a local activity.
            clock.upcoming = []
            self._effects.insert(0, ("clock", "advance"))
            self._pending_plan = (fractions, offsets)

    def _planned(self, fractions: list[float], instants: list[datetime]) -> None:
        clock, policy = self._r.clock, self._r.policy
        assert clock is not None and policy is not None
        due, warnings = instants[0], instants[1:]
        clock.due_at = due
        upcoming = [ClockEvent(at=at, kind="warning", fraction=f) for f, at in zip(fractions, warnings)]
        at = max(due, workflow.now()) if clock.breached else due
        ladder = policy.ladder
        for repeat in range(ladder.repeats + 1):
            for n, level in enumerate(ladder.levels):
                at = at + level.after + (ladder.repeat_after if repeat and n == 0 else timedelta(0))
                upcoming.append(ClockEvent(at=at, kind="escalation", level=level.level, repeat=repeat,
                                           target=level.target))
        clock.upcoming = sorted((e for e in upcoming if e.key not in clock.fired), key=lambda e: e.at)
        self._publish()

    def _pause_clock(self) -> None:
        """Waiting on the customer: the clock stands still until they answer."""
        clock, policy = self._r.clock, self._r.policy
        if clock is None or policy is None or not policy.pause_while_waiting_on_customer:
            return
        if clock.running_since is None:
            return
        now = workflow.now()
        if clock.kind == "calendar":
            clock.consumed += now - clock.running_since
        else:
            self._effects.insert(0, ("clock", f"consume|{clock.running_since.isoformat()}|{now.isoformat()}"))
        clock.running_since, clock.paused_since = None, now
        clock.due_at, clock.upcoming = None, []
        self._r.record(now, "clock_paused", CLOCK, None, f"{clock.waiting_for} clock paused: waiting on the customer")

    def _resume_clock(self) -> None:
        clock = self._r.clock
        if clock is None or clock.paused_since is None:
            return
        now = workflow.now()
        clock.paused_total += now - clock.paused_since
        self._r.paused_total += now - clock.paused_since
        self._r.record(now, "clock_resumed", CLOCK, None,
                       f"{clock.waiting_for} clock running again after {human(now - clock.paused_since)} paused")
        clock.paused_since, clock.running_since = None, now
        self._plan()

    async def _clock_effect(self, what: str) -> None:
        r = self._r
        clock = r.clock
        if clock is None or r.policy is None:
            return
        hours = r.policy.business_hours
        if what == "advance":
            if clock.running_since is None:
                return
            fractions, offsets = self._pending_plan
            instants = await workflow.execute_local_activity(
                "business_clock_advance", AdvanceRequest(hours=hours, start=clock.running_since, offsets=offsets),
                result_type=list[datetime], start_to_close_timeout=timedelta(seconds=10),
            )
            self._planned(fractions, instants)
        elif what.startswith("consume|"):
            _, start, end = what.split("|")
            start_at, end_at = datetime.fromisoformat(start), datetime.fromisoformat(end)
            used = await workflow.execute_local_activity(
                "business_clock_elapsed", ElapsedRequest(hours=hours, start=start_at, end=end_at),
                result_type=timedelta, start_to_close_timeout=timedelta(seconds=10),
            )
            clock.consumed += used

    def _event_summary(self, event: ClockEvent) -> str:
        clock = self._r.clock
        assert clock is not None
        if event.kind == "warning":
            return f"warn at {int((event.fraction or 0) * 100)}% of the {clock.waiting_for} deadline ({clock.kind} clock)"
        return f"{clock.waiting_for}: escalate to level {event.level} ({event.target})"

    async def _fire(self, event: ClockEvent) -> None:
        r = self._r
        clock = r.clock
        assert clock is not None and clock.due_at is not None
        clock.upcoming = [e for e in clock.upcoming if e is not event]
        clock.fired.append(event.key)
        now = workflow.now()
        if event.kind == "warning":
            r.record(now, "warning", CLOCK, None,
                     f"{int((event.fraction or 0) * 100)}% of the {clock.waiting_for} deadline used; "
                     f"due {clock.due_at:%Y-%m-%d %H:%M} UTC")
            self._publish()
            await self._page(event, "owner")
            return
        clock.breached = True
        r.escalation_level = event.level or 0
        metrics.breached(r.report, str(clock.stage), r.escalation_level)
        overdue = human(now - clock.due_at)
        repeat = f", repeat {event.repeat}" if event.repeat else ""
        r.record(now, "escalate", CLOCK, None,
                 f"{clock.waiting_for} overdue by {overdue}: escalated to level {event.level} ({event.target}{repeat})")
        self._publish()
        await self._page(event, event.target or "owner")

    async def _page(self, event: ClockEvent, target_name: str) -> None:
        r = self._r
        clock, policy = r.clock, r.policy
        assert clock is not None and policy is not None and clock.due_at is not None
        if target_name == "owner":
            owner = r.report.owner
            target = PageTarget(name=owner.name, email=str(owner.email)) if owner else None
            target = target or policy.targets.get("owner") or PageTarget(name="Customer care", email=None)
        else:
            target = policy.targets[target_name]
        request = PageRequest(
            idempotency_key=f"{r.workflow_id}/{clock.stage}/{event.key}",
            kind=event.kind, level=event.level, repeat=event.repeat, fraction=event.fraction,
            target_name=target.name, email=target.email, webhook_url=target.webhook_url, format=target.format,
            routing_key=target.routing_key, incident=r.workflow_id, customer_id=r.report.customer.customer_id,
            severity=str(r.report.severity), stage=str(clock.stage), waiting_for=clock.waiting_for,
            due_at=clock.due_at, overdue=human(workflow.now() - clock.due_at) if event.kind == "escalation" else "",
            what_happened=r.report.what_happened,
        )
        what = "warning" if event.kind == "warning" else f"level {event.level} page"
        try:
            sent = await workflow.execute_activity(
                "page", request, result_type=str, summary=f"{what} to {target.name}", **WEBHOOK_OPTIONS,
            )
            r.record(workflow.now(), "paged", SYSTEM, None, f"{what} to {target.name} by {sent}")
        except ActivityError as err:
            r.record(workflow.now(), "page_failed", SYSTEM, None, f"{what} to {target.name} failed: {failure_reason(err)}")
        self._publish()

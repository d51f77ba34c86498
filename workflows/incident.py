"""``IncidentRecovery``: one durable workflow per unhappy-customer incident.

Human steps arrive as Workflow Updates. Each has a validator that asks the
recovery state (and so the transition table) whether the step may happen
now; a refused update writes nothing to history. Handlers only record the
step and queue its side effects; the run loop performs them through
activities, one at a time, and watches the stage's deadline meanwhile.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics, search
    from workflows.contracts import (
        AcceptInput,
        ActionState,
        Actor,
        AnniversaryPhase,
        CompleteActionInput,
        ContinuedIncident,
        ClockEvent,
        ClockState,
        ApologyInput,
        ApprovalInput,
        CloseInput,
        Contact,
        DeclineInput,
        Deadline,
        FlagInput,
        FulfilmentConfirmation,
        IncidentReport,
        CouponItem,
        CouponRequest,
        CouponResult,
        Money,
        MoneyMovement,
        NeedsInput,
        Notice,
        PageRequest,
        PostmortemInput,
        RefundRequest,
        RefundResult,
        Remedy,
        RemedyItem,
        RemedyItemState,
        RemedyProposal,
        RenegotiateInput,
        Role,
        Snapshot,
        SplitCostItem,
        StepInput,
        WebhookReceipt,
        WebhookRequest,
    )
    from workflows.details import current_details
    from workflows.recovery import Recovery, Refused, a, money
    from workflows.sla import WAITING_FOR, AdvanceRequest, ElapsedRequest, PageTarget, SlaPolicy, human
    from workflows.stages import Stage, build_machine

SYSTEM = Actor(name="amends", role=Role.SYSTEM)
CLOCK = Actor(name="clock", role=Role.SYSTEM)

# Effects run one at a time, so a mail relay that stays down must not hold
# the incident (and its escalations) for long: after an hour of retries the
# notice is given up, recorded, and a human is paged to reach the customer.
NOTICE_OPTIONS = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=1),
    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
)
WEBHOOK_OPTIONS = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(
        maximum_interval=timedelta(minutes=2),
        maximum_attempts=10,
        non_retryable_error_types=["WebhookRejected", "WebhookNotConfigured"],
    ),
)
# Money: retry transient faults for a while, then give the incident back to a
# human (renegotiate) rather than retrying forever.
REFUND_OPTIONS = dict(
    start_to_close_timeout=timedelta(seconds=60),
    # A worker that dies mid-refund is noticed within this, not after the
    # whole minute; the activity heartbeats before each Stripe call.
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        maximum_interval=timedelta(minutes=2),
        maximum_attempts=10,
        non_retryable_error_types=["RefundDeclined", "RefundCeiling", "CouponRefused"],
    ),
)


@workflow.defn(name="IncidentRecovery")
class IncidentRecovery:
    @workflow.init
    def __init__(self, incident: IncidentReport | ContinuedIncident) -> None:
        report, phase = (incident.report, incident.phase) if isinstance(incident, ContinuedIncident) else (incident, None)
        self._r = Recovery(report, workflow.info().workflow_id)
        self._effects: list[tuple[str, str]] = []
        self._changes = 0
        self._pending_plan: tuple[list[float], list[timedelta]] = ([], [])
        if phase is None:
            build_machine(self._r)
        else:
            self._restore(phase)

    # ================================================================ run

    @workflow.run
    async def run(self, incident: IncidentReport | ContinuedIncident) -> Snapshot:
        if isinstance(incident, ContinuedIncident):
            return await self._anniversary_phase()
        report = incident
        metrics.opened(report)
        self._r.record(workflow.now(), "detected", SYSTEM, "backend", report.what_happened)
        self._enter_stage()
        # The worker's SLA policy, recorded in the history: a later change of
        # the policy file never moves this incident's deadlines.
        self._r.policy = await workflow.execute_local_activity(
            "load_sla_policy", result_type=SlaPolicy, start_to_close_timeout=timedelta(seconds=10),
        )
        self._start_clock()
        while self._r.stage != Stage.POSTMORTEM_DONE or self._effects:
            await self._perform_effects()
            if self._r.stage == Stage.POSTMORTEM_DONE:
                continue
            await self._wait_for_next_step()
        # The long wait starts in a fresh run that carries only what it needs,
        # so that the year is spent on a short history (and on the code of its day).
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            ContinuedIncident(report=report, phase=self._carry()),
            search_attributes=workflow.info().typed_search_attributes,
        )

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
            r.record(workflow.now(), "page_failed", SYSTEM, None, f"{kind} to {target.name} failed: {_reason(err)}")
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
            r.record(workflow.now(), "gift_failed", SYSTEM, None, f"anniversary gift not made: {_reason(err)}")
            return
        r.anniversary_gift_code = result.coupon_id
        r.record(workflow.now(), "gift", SYSTEM, "stripe", f"anniversary gift {gift}: coupon {result.coupon_id}")

    async def _wait_for_next_step(self) -> None:
        seen = self._changes
        clock = self._r.clock
        event = min(clock.upcoming, key=lambda e: e.at) if clock and clock.upcoming else None
        timeout = None if event is None else event.at - workflow.now()
        if timeout is not None and timeout <= timedelta(0):
            await self._fire(event)
            return
        try:
            await workflow.wait_condition(
                lambda: bool(self._effects) or self._changes != seen,
                timeout=timeout,
                timeout_summary=None if event is None else self._event_summary(event),
            )
        except asyncio.TimeoutError:
            await self._fire(event)

    # ================================================================ updates

    @workflow.update(description="Apologise to the customer, first and fast; sends the apology notice.")
    def apologise(self, step: ApologyInput) -> Snapshot:
        before = self._advance("apologise")
        metrics.apologised(self._r.report, workflow.now() - self._r.report.detected_at)
        self._effects.append(("notice", "apology"))
        return self._recorded("apologise", step, "apology sent to the customer", before)

    @apologise.validator
    def _check_apologise(self, step: ApologyInput) -> None:
        self._check("apologise", step)

    @workflow.update(description="Record what the customer needs, in their own words.")
    def record_needs(self, step: NeedsInput) -> Snapshot:
        before = self._advance("record_needs")
        self._r.needs.append(step.needs)
        return self._recorded("record_needs", step, step.needs, before)

    @record_needs.validator
    def _check_record_needs(self, step: NeedsInput) -> None:
        self._check("record_needs", step)

    @workflow.update(description="Propose a remedy (refunds, redo, replacement, upgrade); sends the proposal notice.")
    def propose_remedy(self, step: RemedyProposal) -> Snapshot:
        before = self._advance("propose_remedy")
        r = self._r
        for old in r.remedies:
            if old.status == "proposed":
                old.status = "declined"  # superseded before the customer answered
        number = len(r.remedies) + 1
        items = [
            RemedyItemState(item_id=f"remedy-{number}/item-{n}", item=item)
            for n, item in enumerate(step.items, start=1)
        ]
        remedy = Remedy(number=number, proposed_by=step.by, proposed_at=workflow.now(), note=step.note, items=items)
        total = r.remedy_value(remedy)
        if total > r.report.approval_limits.limit(step.by.role):
            remedy.needs_approval_from = r.approver_for(total)
        r.remedies.append(remedy)
        detail = f"remedy #{number}: " + "; ".join(_describe(i.item) for i in items)
        if remedy.needs_approval_from:
            detail += f" (needs approval by {a(remedy.needs_approval_from)})"
        else:
            # An over-limit proposal goes to the customer only once approved.
            self._effects.append(("notice", "proposal"))
            self._recorded("propose_remedy", step, detail, before)
            self._pause_clock()  # the proposal now waits on the customer
            self._publish()
            return r.snapshot()
        return self._recorded("propose_remedy", step, detail, before)

    @propose_remedy.validator
    def _check_propose_remedy(self, step: RemedyProposal) -> None:
        self._check("propose_remedy", step)

    @workflow.update(description="Approve the pending remedy, within the approver's role limit.")
    def approve_remedy(self, step: ApprovalInput) -> Snapshot:
        before = self._advance("approve_remedy")
        p = self._r.proposal
        assert p is not None
        released = p.needs_approval_from is not None and p.approved_by is None
        if released:
            self._effects.append(("notice", "proposal"))
        p.approved_by = step.by
        limit = self._r.report.approval_limits.limit(step.by.role)
        detail = f"remedy #{p.number} approved by {a(step.by.role)} (limit {money(limit, self._r.currency)})"
        snap = self._recorded("approve_remedy", step, detail, before)
        if released:
            self._pause_clock()  # the proposal now waits on the customer
            self._publish()
            snap = self._r.snapshot()
        return snap

    @approve_remedy.validator
    def _check_approve_remedy(self, step: ApprovalInput) -> None:
        self._check("approve_remedy", step)

    @workflow.update(description="The customer accepts the proposed remedy; delivery starts.")
    def accept_remedy(self, step: AcceptInput) -> Snapshot:
        p = self._r.proposal
        assert p is not None
        before = self._advance("accept_remedy")
        p.accepted_by, p.accepted_at, p.status = step.by, workflow.now(), "agreed"
        self._effects.append(("notice", "confirmation"))
        self._effects.append(("deliver", str(p.number)))
        who = "an agent on the customer's behalf" if step.on_behalf_of_customer else f"the {step.by.role}"
        return self._recorded("accept_remedy", step, f"remedy #{p.number} accepted by {who} via {step.channel}", before)

    @accept_remedy.validator
    def _check_accept_remedy(self, step: AcceptInput) -> None:
        self._check("accept_remedy", step)

    @workflow.update(description="The customer declines the proposal; back to listening.")
    def decline_remedy(self, step: DeclineInput) -> Snapshot:
        p = self._r.proposal
        assert p is not None
        before = self._advance("decline_remedy")
        p.status = "declined"
        self._recorded("decline_remedy", step, f"remedy #{p.number} declined: {step.reason}", before)
        self._resume_clock()  # the customer has answered
        self._publish()
        return self._r.snapshot()

    @decline_remedy.validator
    def _check_decline_remedy(self, step: DeclineInput) -> None:
        self._check("decline_remedy", step)

    @workflow.update(description="Confirm that a manual item (redo, replacement, upgrade) was delivered.")
    def confirm_fulfilment(self, step: FulfilmentConfirmation) -> Snapshot:
        before = self._advance("confirm_fulfilment")
        a = self._r.agreed
        assert a is not None
        item = next(i for i in a.items if i.item_id == step.item_id)
        item.status, item.reference = "delivered", step.note
        snap = self._recorded("confirm_fulfilment", step, f"{item.item_id} delivered: {_describe(item.item)}", before)
        # When this was the last item, the remedy is fulfilled before the
        # update returns, so the caller can close straight away.
        return self._fulfil_if_delivered(a) or snap

    @confirm_fulfilment.validator
    def _check_confirm_fulfilment(self, step: FulfilmentConfirmation) -> None:
        self._check("confirm_fulfilment", step)

    @workflow.update(description="The agreed remedy cannot be delivered: go back and agree another.")
    def renegotiate(self, step: RenegotiateInput) -> Snapshot:
        a = self._r.agreed
        assert a is not None
        before = self._advance("renegotiate")
        a.status = "renegotiated"
        for item in a.items:
            if item.status not in ("delivered", "failed"):
                item.status = "cancelled"
        return self._recorded("renegotiate", step, f"remedy #{a.number} renegotiated: {step.reason}", before)

    @renegotiate.validator
    def _check_renegotiate(self, step: RenegotiateInput) -> None:
        self._check("renegotiate", step)

    @workflow.update(description="Close the incident: tell the customer what was done, apologise once more.")
    def close(self, step: CloseInput) -> Snapshot:
        before = self._advance("close")
        self._r.closed_at = workflow.now()
        metrics.closed(self._r.report, workflow.now() - self._r.report.detected_at)
        self._effects.append(("notice", "closing"))
        return self._recorded("close", step, step.summary or "closed", before)

    @close.validator
    def _check_close(self, step: CloseInput) -> None:
        self._check("close", step)

    @workflow.update(description="Record the blameless post-mortem: root cause and preventive actions.")
    def record_postmortem(self, step: PostmortemInput) -> Snapshot:
        before = self._advance("record_postmortem")
        self._r.postmortem = step
        self._r.actions = [
            ActionState(action_id=f"action-{n}", action=a.action, owner=a.owner, due=a.due)
            for n, a in enumerate(step.preventive_actions, start=1)
        ]
        detail = f"root cause ({step.root_cause_category}): {step.root_cause}; {len(step.preventive_actions)} actions"
        return self._recorded("record_postmortem", step, detail, before)

    @record_postmortem.validator
    def _check_record_postmortem(self, step: PostmortemInput) -> None:
        self._check("record_postmortem", step)

    @workflow.update(description="Mark a preventive action from the post-mortem done; its reminders stop.")
    def complete_action(self, step: CompleteActionInput) -> Snapshot:
        before = self._advance("complete_action")
        action = next(a for a in self._r.actions if a.action_id == step.action_id)
        action.status, action.completed_at, action.completed_by = "done", workflow.now(), step.by
        return self._recorded("complete_action", step, f"{action.action_id} done: {action.action}", before)

    @complete_action.validator
    def _check_complete_action(self, step: CompleteActionInput) -> None:
        self._check("complete_action", step)

    @workflow.update(description="Red-flag the account (internal only; suppresses the anniversary gift).")
    def flag_account(self, step: FlagInput) -> Snapshot:
        before = self._advance("flag_account")
        self._r.red_flagged = True
        self._r.flags.append(step.reason)
        self._effects.append(("crm", step.reason))  # internal only: never in a customer notice
        return self._recorded("flag_account", step, step.reason, before)

    @flag_account.validator
    def _check_flag_account(self, step: FlagInput) -> None:
        self._check("flag_account", step)

    @workflow.query(description="The whole current state: stage, timeline, remedy, money, deadline, flags.")
    def snapshot(self) -> Snapshot:
        return self._r.snapshot()

    # ================================================================ stepping

    def _check(self, trigger: str, step: StepInput) -> None:
        try:
            self._r.check(trigger, step, workflow.now())
        except Refused as refused:
            raise ApplicationError(str(refused), type="StepRefused", non_retryable=True) from None

    def _advance(self, trigger: str) -> Stage:
        """Take the step in the machine, before the handler changes anything.

        The machine checks the table's conditions once more; the validator
        already did, so a refusal here is a bug, failed before any state moved.
        """
        before = self._r.stage
        if not getattr(self._r, trigger)():
            raise ApplicationError(f"{trigger}: the state machine refused the step", type="StepRefused")
        return before

    def _recorded(self, trigger: str, step: StepInput, detail: str, before: Stage) -> Snapshot:
        self._r.record(workflow.now(), trigger, step.by, step.channel, detail)
        if self._r.stage != before:
            self._enter_stage()  # a new stage: a new clock
        else:
            self._publish()
        return self._r.snapshot()

    def _enter_stage(self) -> None:
        r = self._r
        r.escalation_level = 0
        r.clock = None
        # The clock starts when the stage starts, even if the policy arrives a
        # moment later (workflow.now() after a local activity differs on replay).
        self._stage_entered_at = workflow.now()
        self._start_clock()
        self._publish()

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
            r.record(workflow.now(), "page_failed", SYSTEM, None, f"{what} to {target.name} failed: {_reason(err)}")
        self._publish()

    def _publish(self) -> None:
        """Make the change visible: search attributes, current details, wake the run loop."""
        r = self._r
        self._changes += 1
        workflow.upsert_search_attributes(
            [
                search.RECOVERY_STAGE.value_set(str(r.stage)),
                search.SEVERITY.value_set(str(r.report.severity)),
                search.INCIDENT_CATEGORY.value_set(str(r.report.category)),
                search.CUSTOMER_ID.value_set(r.report.customer.customer_id),
                search.ESCALATION_LEVEL.value_set(r.escalation_level),
                search.RED_FLAGGED.value_set(r.red_flagged),
                search.STAGE_DEADLINE.value_set(r.clock.due_at)
                if r.clock and r.clock.due_at
                else search.STAGE_DEADLINE.value_unset(),
            ]
        )
        workflow.set_current_details(current_details(r.snapshot(), workflow.now()))

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
        reason = _reason(err)
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
            detail = f"CRM not told: {_reason(err)}"
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
            "remedy": [_customer_line(i) for i in remedy.items] if remedy else [],
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
            reason = _reason(err)
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
            r.record(workflow.now(), "notice_failed", SYSTEM, "email", f"internal {kind} notice not sent: {_reason(err)}")
            self._publish()


def _reason(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


def _describe(item: RemedyItem) -> str:
    return item.describe()


def _customer_line(state: RemedyItemState) -> str:
    line = state.item.describe()
    if state.item.delivery == "coupon" and state.status == "delivered" and state.reference:
        line += f" (code {state.reference})"
    return line

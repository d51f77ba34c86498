"""``IncidentRecovery``: one durable workflow per unhappy-customer incident.

Human steps arrive as Workflow Updates. Each has a validator that asks the
recovery state (and so the transition table) whether the step may happen
now; a refused update writes nothing to history. Handlers only record the
step and queue its side effects; the run loop performs them through
activities, one at a time, and watches the stage's deadline meanwhile.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics, search
    from workflows.contracts import (
        AcceptInput,
        ActionState,
        ApologyInput,
        ApprovalInput,
        CloseInput,
        CompleteActionInput,
        ContinuedIncident,
        DeclineInput,
        FlagInput,
        FulfilmentConfirmation,
        IncidentReport,
        NeedsInput,
        PostmortemInput,
        Remedy,
        RemedyItemState,
        RemedyProposal,
        RenegotiateInput,
        Snapshot,
        StepInput,
    )
    from workflows.details import current_details
    from workflows.recovery import Recovery, Refused, a, money
    from workflows.sla import SlaPolicy
    from workflows.stages import Stage, build_machine

from workflows.anniversary import Anniversary
from workflows.clock import SlaClock
from workflows.delivery import Delivery
from workflows.options import SYSTEM


@workflow.defn(name="IncidentRecovery")
class IncidentRecovery(SlaClock, Delivery, Anniversary):
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
        detail = f"remedy #{number}: " + "; ".join(i.item.describe() for i in items)
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
        snap = self._recorded("confirm_fulfilment", step, f"{item.item_id} delivered: {item.item.describe()}", before)
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

    def _publish(self) -> None:
        """Make the change visible: search attributes, current details, wake the run loop."""
        r = self._r
        self._changes += 1
        attrs = search.values(r.report, r.stage, r.escalation_level, r.red_flagged, r.clock.due_at if r.clock else None)
        workflow.upsert_search_attributes([k.value_unset() if v is None else k.value_set(v) for k, v in attrs])
        workflow.set_current_details(current_details(r.snapshot(), workflow.now()))

"""The state of one incident, the model the ``transitions`` machine drives, and its guards.

``Recovery`` holds everything the workflow knows; the machine sets its
``state``. The predicates named in the transition table live here, and
``check`` turns the table plus the money rules into the messages callers
see when a step is refused. All of it is pure: update validators call
``check`` and must not change anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.contracts import (
    ActionState,
    CompleteActionInput,
    ClockState,
    format_money,
    AcceptInput,
    Actor,
    ApprovalInput,
    Deadline,
    FlagInput,
    FulfilmentConfirmation,
    IncidentReport,
    MoneyMovement,
    PostmortemInput,
    Remedy,
    RemedyProposal,
    Role,
    Snapshot,
    TimelineEntry,
    one_year_after,
)
from workflows.names import name_pattern
from workflows.sla import SlaPolicy
from workflows.stages import AFTER_CLOSURE, Stage, step_for, steps_from


class Refused(Exception):
    """A step the playbook does not allow now; the message is for the caller."""


APPROVER_ROLES = (Role.AGENT, Role.MANAGER, Role.DIRECTOR)


def a(word: object) -> str:
    """'a manager', 'an agent'."""
    text = str(word)
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


class Recovery:
    state: str  # set by the transitions machine

    def __init__(self, report: IncidentReport, workflow_id: str) -> None:
        self.report = report
        self.workflow_id = workflow_id
        self.timeline: list[TimelineEntry] = []
        self.needs: list[str] = []
        self.remedies: list[Remedy] = []
        self.money_moved: list[MoneyMovement] = []
        self.escalation_level = 0
        self.policy: SlaPolicy | None = None  # loaded when the incident opens
        self.clock: ClockState | None = None
        self.paused_total = timedelta(0)
        self.flags: list[str] = []
        self.red_flagged = False
        self.closed_at: datetime | None = None
        self.postmortem: PostmortemInput | None = None
        self.actions: list[ActionState] = []
        self.remedy_summary: list[str] = []  # carried into the anniversary phase
        self.phase = "recovery"
        self.carried_refunds = 0  # refunded in the first run, carried into the anniversary phase
        self.carried_breaches = 0
        self.anniversary_gift_code: str | None = None

    # ------------------------------------------------------------ reading

    @property
    def stage(self) -> Stage:
        return Stage(self.state)

    @property
    def deadline(self) -> Deadline | None:
        c = self.clock
        return None if c is None or c.due_at is None else Deadline(stage=c.stage, waiting_for=c.waiting_for, due_at=c.due_at)

    @property
    def currency(self) -> str:
        return self.report.order.amount_paid.currency

    @property
    def proposal(self) -> Remedy | None:
        return next((r for r in reversed(self.remedies) if r.status == "proposed"), None)

    @property
    def agreed(self) -> Remedy | None:
        return next((r for r in reversed(self.remedies) if r.status in ("agreed", "delivered")), None)

    @property
    def refunded_total(self) -> int:
        return self.carried_refunds + sum(m.amount.amount for m in self.money_moved if m.kind == "refund")

    def committed_refunds(self) -> int:
        """Refunded already, plus refunds agreed and not yet failed: the ceiling's spend."""
        pending = 0
        for remedy in self.remedies:
            if remedy.status != "agreed":
                continue
            for st in remedy.items:
                if st.status in ("pending", "in_progress"):
                    pending += st.item.refund_amount()
        return self.refunded_total + pending

    @property
    def anniversary_due_at(self) -> datetime:
        return one_year_after(self.report.detected_at, self.report.anniversary_after_days)

    def staff_names(self) -> list[str]:
        """Every person's name that must never reach the customer."""
        names = set(self.report.staff_involved)
        names.update(e.by.name for e in self.timeline if e.by.role not in (Role.CUSTOMER, Role.SYSTEM))
        if self.report.owner:
            names.add(self.report.owner.name)
        names.discard(self.report.customer.name)
        return sorted(names)

    # ------------------------------------------------------------ predicates named in the table

    def has_proposal(self) -> bool:
        return self.proposal is not None

    def is_approved(self) -> bool:
        p = self.proposal
        return p is not None and (p.needs_approval_from is None or p.approved_by is not None)

    def is_delivered(self) -> bool:
        a = self.agreed
        return a is not None and all(i.status == "delivered" for i in a.items)

    def has_undelivered_items(self) -> bool:
        a = self.agreed
        if a is None or a.status != "agreed":
            return False
        statuses = [i.status for i in a.items]
        return "in_progress" not in statuses and any(s != "delivered" for s in statuses)

    def has_open_actions(self) -> bool:
        return any(a.status == "open" for a in self.actions)

    def has_items_to_confirm(self) -> bool:
        a = self.agreed
        return a is not None and any(
            i.item.delivery in ("work_order", "billing") and i.status not in ("delivered", "failed", "cancelled")
            for i in a.items
        )

    def remedy_value(self, remedy: Remedy) -> int:
        return remedy.value(self.report.order.amount_paid)

    def allowed_now(self) -> list[str]:
        """Human steps the table allows at this stage whose conditions hold now."""
        steps = [s for s in steps_from(self.stage) if s.by == "human"]
        return list(dict.fromkeys(s.trigger for s in steps if all(getattr(self, c)() for c in s.conditions)))

    # ------------------------------------------------------------ guards

    def check(self, trigger: str, payload: object, now: datetime) -> None:
        """Raise ``Refused`` with the reason when ``trigger`` may not happen now."""
        stage = self.stage
        step = step_for(stage, trigger)
        if step is None:
            if stage in AFTER_CLOSURE:
                closed = self.closed_at.date().isoformat() if self.closed_at else "an earlier date"
                raise Refused(
                    f"{trigger} refused: this incident was closed on {closed} and cannot be reopened; "
                    f"open a new incident with a new key"
                )
            allowed = ", ".join(self.allowed_now()) or "none (the clock takes the next step)"
            raise Refused(f"{trigger} refused: the incident is at stage '{stage}'; allowed now: {allowed}")
        for condition in step.conditions:
            if not getattr(self, condition)():
                raise Refused(f"{trigger} refused: {self._condition_reason(condition)}")
        extra = getattr(self, f"_check_{trigger}", None)
        if extra is not None:
            extra(payload, now)

    def _condition_reason(self, condition: str) -> str:
        p = self.proposal
        if condition == "has_proposal":
            return "no remedy has been proposed yet; propose_remedy first"
        if condition == "is_approved" and p is not None:
            return (
                f"remedy #{p.number} is worth {money(self.remedy_value(p), self.currency)}, above what "
                f"{a(p.proposed_by.role)} may promise; it needs approve_remedy by {a(p.needs_approval_from)} "
                f"or above before the customer's acceptance counts"
            )
        if condition == "has_undelivered_items":
            return "the agreed remedy has no undelivered item that is not already in progress"
        if condition == "has_items_to_confirm":
            return "the agreed remedy has no work order waiting for confirmation"
        if condition == "is_delivered":
            return "the agreed remedy is not fully delivered yet"
        return condition

    def _check_money(self, items: list, field: str) -> None:
        currency = self.currency
        paid = self.report.order.amount_paid.amount
        total = 0
        for n, item in enumerate(items):
            for name, amount in item.moneys():
                if amount.currency != currency:
                    raise Refused(
                        f"{field}[{n}].{name}.currency: must be the order's currency {currency}, "
                        f"not {amount.currency}"
                    )
            total += item.refund_amount()
        if total and not self.report.order.payment_reference:
            raise Refused("order.payment_reference: a refund needs the payment it goes back to; none was given")
        committed = self.committed_refunds()
        if committed + total > paid:
            raise Refused(
                f"{field}: refunds would total {money(committed + total, currency)}, more than the "
                f"{money(paid, currency)} paid ({money(committed, currency)} already refunded or agreed; "
                f"at most {money(paid - committed, currency)} more)"
            )

    def _check_propose_remedy(self, proposal: RemedyProposal, now: datetime) -> None:
        self._check_money(list(proposal.items), "items")

    def _check_approve_remedy(self, approval: ApprovalInput, now: datetime) -> None:
        p = self.proposal
        assert p is not None  # the table's has_proposal condition ran first
        role = approval.by.role
        if role not in APPROVER_ROLES:
            raise Refused(f"by.role: {a(role)} cannot approve a remedy; an agent, manager or director can")
        limit = self.report.approval_limits.limit(role)
        total = self.remedy_value(p)
        if total > limit:
            raise Refused(
                f"by.role: {a(role)} may approve up to {money(limit, self.currency)}; remedy #{p.number} "
                f"is worth {money(total, self.currency)} and needs {a(self.approver_for(total))}"
            )

    def _check_accept_remedy(self, accept: AcceptInput, now: datetime) -> None:
        p = self.proposal
        assert p is not None
        # The ceiling may have moved since the proposal (another remedy delivered).
        self._check_money([i.item for i in p.items], "items")

    def _check_confirm_fulfilment(self, confirmation: FulfilmentConfirmation, now: datetime) -> None:
        a = self.agreed
        assert a is not None
        item = next((i for i in a.items if i.item_id == confirmation.item_id), None)
        to_confirm = [
            i.item_id for i in a.items
            if i.item.delivery in ("work_order", "billing") and i.status not in ("delivered", "failed", "cancelled")
        ]
        if item is None:
            raise Refused(
                f"item_id: no item '{confirmation.item_id}' in the agreed remedy; "
                f"items to confirm: {', '.join(to_confirm) or 'none'}"
            )
        if item.item.delivery not in ("work_order", "billing"):
            raise Refused(f"item_id: '{item.item_id}' is a {item.item.kind}; the engine delivers it, nobody confirms it")
        if item.status == "delivered":
            raise Refused(f"item_id: '{item.item_id}' was already confirmed as delivered")
        if item.status in ("failed", "cancelled"):
            raise Refused(f"item_id: '{item.item_id}' {item.status}: {item.failure or 'renegotiate the remedy'}")

    def _check_record_postmortem(self, pm: PostmortemInput, now: datetime) -> None:
        today = now.date()
        for n, action in enumerate(pm.preventive_actions):
            if action.due < today:
                raise Refused(
                    f"preventive_actions[{n}].due: {action.due.isoformat()} is in the past; "
                    f"give a due date from {today.isoformat()} on"
                )
        # Blameless: the post-mortem describes the system, not a person.
        texts = [pm.what_happened, pm.root_cause, *(f.condition for f in pm.contributing_factors)]
        for name in self.report.staff_involved:
            pattern = name_pattern([name], min_part=3)
            if pattern and any(pattern.search(t) for t in texts):
                raise Refused(
                    f"root_cause: a blameless post-mortem names no one ('{name}' appears); describe the "
                    f"condition of the system that let it happen"
                )

    def _check_complete_action(self, done: CompleteActionInput, now: datetime) -> None:
        action = next((a for a in self.actions if a.action_id == done.action_id), None)
        if action is None:
            open_ids = ", ".join(a.action_id for a in self.actions if a.status == "open") or "none"
            raise Refused(f"action_id: no action '{done.action_id}'; open actions: {open_ids}")
        if action.status == "done":
            raise Refused(f"action_id: '{done.action_id}' was completed on {action.completed_at:%Y-%m-%d}")

    def _check_flag_account(self, flag: FlagInput, now: datetime) -> None:
        if self.red_flagged:
            raise Refused("flag_account refused: the account is already red-flagged")

    def approver_for(self, total: int) -> Role | None:
        limits = self.report.approval_limits
        return next((r for r in APPROVER_ROLES if limits.limit(r) >= total), Role.DIRECTOR)

    # ------------------------------------------------------------ recording

    def record(self, at: datetime, step: str, by: Actor, channel: str | None, detail: str = "") -> None:
        self.timeline.append(
            TimelineEntry(at=at, step=step, by=by, channel=channel, stage=self.stage, detail=detail)
        )

    def snapshot(self) -> Snapshot:
        paid = self.report.order.amount_paid.amount
        return Snapshot(
            workflow_id=self.workflow_id,
            report=self.report,
            stage=self.stage,
            allowed_steps=self.allowed_now(),
            timeline=self.timeline,
            needs=self.needs,
            proposal=self.proposal,
            agreed_remedy=self.agreed,
            remedies=self.remedies,
            money_moved=self.money_moved,
            refunded_total=self.refunded_total,
            refundable_left=paid - self.committed_refunds(),
            deadline=self.deadline,
            clock=self.clock,
            paused_total=self.paused_total,
            escalation_level=self.escalation_level,
            red_flagged=self.red_flagged,
            flags=self.flags,
            closed_at=self.closed_at,
            anniversary_due_at=self.anniversary_due_at,
            postmortem=self.postmortem,
            actions=self.actions,
            remedy_summary=self.remedy_summary or ([i.item.describe() for i in self.agreed.items] if self.agreed else []),
            breaches=self.carried_breaches + len({e.stage for e in self.timeline if e.step == "escalate"}),
            phase=self.phase,
            sla_ready=self.policy is not None,
        )

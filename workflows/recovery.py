"""The model the ``transitions`` machine drives: predicates and derived facts of one incident.

``Recovery`` wraps the ``RecoveryState``; the machine moves its ``state``
(the stage). The predicates named in the transition table live here. All of
it is pure: validators read it and must not change anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.inputs import Actor, ApprovalLimits, Contact, Role
from workflows.money import Money
from workflows.names import name_pattern
from workflows.sla import RemedyPolicy
from workflows.snapshot import Deadline, Remedy, RemedyItemState, Snapshot, StepResult, TimelineEntry
from workflows.stages import Stage, steps_from
from workflows.state import RecoveryState

APPROVER_ROLES = (Role.AGENT, Role.MANAGER, Role.DIRECTOR)
# Items that another system delivers and a backend or agent confirms.
CONFIRMED_BY_HAND = ("work_order", "billing")


class Recovery:
    def __init__(self, state: RecoveryState) -> None:
        self.s = state

    # ------------------------------------------------------------ the machine's view

    @property
    def state(self) -> str:
        return str(self.s.stage)

    @state.setter
    def state(self, value: str) -> None:
        self.s.stage = Stage(value)

    @property
    def stage(self) -> Stage:
        return self.s.stage

    # ------------------------------------------------------------ reading

    @property
    def currency(self) -> str:
        return self.s.report.order.amount_paid.currency

    @property
    def paid(self) -> Money:
        return self.s.report.order.amount_paid

    @property
    def deadline(self) -> Deadline | None:
        c = self.s.clock
        if c is None or c.due_at is None:
            return None
        return Deadline(stage=c.stage, waiting_for=c.waiting_for, due_at=c.due_at)

    @property
    def proposal(self) -> Remedy | None:
        return next((r for r in reversed(self.s.remedies) if r.status == "proposed"), None)

    @property
    def agreed(self) -> Remedy | None:
        return next((r for r in reversed(self.s.remedies) if r.status in ("agreed", "delivered")), None)

    @property
    def refunded_total(self) -> int:
        return sum(m.amount.amount for m in self.s.money_moved if m.kind == "refund")

    def committed_refunds(self) -> int:
        """Refunded already, plus refunds agreed and not yet failed: the ceiling's spend."""
        pending = sum(
            st.item.refund_amount()
            for remedy in self.s.remedies if remedy.status == "agreed"
            for st in remedy.items if st.status in ("pending", "in_progress", "unknown")
        )
        return self.refunded_total + pending

    @property
    def anniversary_due_at(self) -> datetime:
        return self.s.report.detected_at + timedelta(days=self.s.report.anniversary_after_days)

    def breaches(self) -> int:
        """Stages whose deadline was missed: a stage escalated three times is one breach."""
        return len({e.stage for e in self.s.timeline if e.step == "escalate"})

    def staff_names(self) -> list[str]:
        """Every person's name that must never reach the customer in the text from inputs: the people
        involved, everyone who took a step (approvers included), the owner and the preventive actions' owners."""
        report = self.s.report
        names = set(report.staff_involved)
        names.update(e.by.name for e in self.s.timeline if e.by.role not in (Role.CUSTOMER, Role.SYSTEM))
        names.update(a.owner.name for a in self.s.actions)
        if report.owner:
            names.add(report.owner.name)
        names.discard(report.customer.name)
        return sorted(names)

    def care_contact(self) -> Contact | None:
        """Who signs the customer's notices and takes their replies: the owner, unless the owner was among
        the people involved in the failure (then, as with no owner, the care team: None)."""
        owner = self.s.report.owner
        if owner is None:
            return None
        # Full names only: an owner who merely shares a given name with someone involved still signs.
        involved = name_pattern(self.s.report.staff_involved, min_part=10**6)
        if involved is not None and any(involved.search(n) for n in (owner.name, owner.signature)):
            return None
        return owner

    def remedy_value(self, remedy: Remedy) -> int:
        return remedy.value(self.paid)

    @property
    def remedy_policy(self) -> RemedyPolicy:
        """The worker's remedy policy, recorded when the incident opened."""
        return self.s.policy.remedies if self.s.policy else RemedyPolicy()

    @property
    def limits(self) -> ApprovalLimits:
        """The worker's policy, recorded when the incident opened (never the report's)."""
        return self.s.policy.remedies.approval_limits if self.s.policy else ApprovalLimits()

    def limit(self, role: Role) -> int:
        return self.limits.limit(role)

    def approver_for(self, total: int) -> Role:
        return next((r for r in APPROVER_ROLES if self.limit(r) >= total), Role.DIRECTOR)

    def goodwill(self, remedy: Remedy) -> int:
        """What a remedy gives beyond money back: coupons, waived balances, gifts, shares paid as coupons."""
        return sum(i.item.value(self.paid) for i in remedy.items if not i.item.refund_amount())

    @property
    def goodwill_ceiling(self) -> int:
        multiple = self.s.policy.remedies.goodwill_multiple if self.s.policy else 1.0
        return int(self.paid.amount * multiple)

    def goodwill_committed(self) -> int:
        return sum(self.goodwill(r) for r in self.s.remedies if r.status in ("agreed", "delivered"))

    def beyond_goodwill(self, remedy: Remedy) -> bool:
        goodwill = self.goodwill(remedy)
        return goodwill > 0 and self.goodwill_committed() + goodwill > self.goodwill_ceiling

    def items_to_confirm(self) -> list[RemedyItemState]:
        a = self.agreed
        return [] if a is None else [
            i for i in a.items
            if i.item.delivery in CONFIRMED_BY_HAND and i.status not in ("delivered", "failed", "cancelled")
        ]

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
        busy = "in_progress" in statuses or "unknown" in statuses
        return not busy and any(s != "delivered" for s in statuses)

    def has_open_actions(self) -> bool:
        return any(a.status == "open" for a in self.s.actions)

    def has_items_to_confirm(self) -> bool:
        return bool(self.items_to_confirm())

    def holds(self, condition: str) -> bool:
        predicate = getattr(self, condition)
        return bool(predicate())

    def allowed_now(self) -> list[str]:
        """Human steps the table allows at this stage whose conditions hold now."""
        steps = [s for s in steps_from(self.stage) if s.by == "human"]
        return list(dict.fromkeys(s.trigger for s in steps if all(self.holds(c) for c in s.conditions)))

    # ------------------------------------------------------------ recording

    def record(self, at: datetime, step: str, by: Actor, channel: str | None, detail: str = "") -> TimelineEntry:
        entry = TimelineEntry(at=at, step=step, by=by, channel=channel, stage=self.stage, detail=detail)
        self.s.timeline.append(entry)
        return entry

    def step_result(self, entry: TimelineEntry | None) -> StepResult:
        s = self.s
        return StepResult(
            workflow_id=s.workflow_id, stage=s.stage, allowed_steps=self.allowed_now(), deadline=self.deadline,
            escalation_level=s.escalation_level, entry=entry, remedy=s.remedies[-1].number if s.remedies else None,
        )

    def snapshot(self) -> Snapshot:
        s = self.s
        agreed = self.agreed
        return Snapshot(
            workflow_id=s.workflow_id,
            report=s.report,
            stage=s.stage,
            allowed_steps=self.allowed_now(),
            timeline=s.timeline,
            needs=s.needs,
            proposal=self.proposal,
            agreed_remedy=agreed,
            remedies=s.remedies,
            money_moved=s.money_moved,
            refunded_total=self.refunded_total,
            refundable_left=self.paid.amount - self.committed_refunds(),
            deadline=self.deadline,
            clock=s.clock,
            paused_total=s.paused_total,
            escalation_level=s.escalation_level,
            red_flagged=s.red_flagged,
            flags=s.flags,
            closed_at=s.closed_at,
            anniversary_due_at=self.anniversary_due_at,
            postmortem=s.postmortem,
            actions=s.actions,
            remedy_summary=[i.item.describe() for i in agreed.items] if agreed else [],
            breaches=self.breaches(),
            phase=s.phase,
            sla_ready=s.policy is not None,
        )

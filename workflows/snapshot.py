"""What an incident shows of itself: the ``snapshot`` query and the pieces of state it is made of."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from workflows.inputs import Actor, Contact, IncidentReport, PostmortemInput, Role
from workflows.money import Money
from workflows.remedies import RemedyItem
from workflows.stages import Stage


class ActionState(BaseModel):
    action_id: str
    action: str
    owner: Contact
    due: date
    status: Literal["open", "done"] = "open"
    completed_at: datetime | None = None
    completed_by: Actor | None = None
    reminders: int = 0


# ---------------------------------------------------------------- snapshot


class TimelineEntry(BaseModel):
    at: datetime
    step: str
    by: Actor
    channel: str | None = None
    stage: Stage
    detail: str = ""


# ``unknown``: money may have moved but Stripe has not said (its answer was lost); the
# attempts go on, the amount counts against what may still be refunded, and the
# remedy cannot be renegotiated until a look-up settles it.
ItemStatus = Literal[
    "pending", "in_progress", "unknown", "awaiting_confirmation", "delivered", "failed", "cancelled"
]


class RemedyItemState(BaseModel):
    item_id: str
    item: RemedyItem
    status: ItemStatus = "pending"
    reference: str | None = None
    failure: str | None = None


class Remedy(BaseModel):
    number: int
    proposed_by: Actor
    proposed_at: datetime
    note: str | None = None
    items: list[RemedyItemState]
    needs_approval_from: Role | None = None
    approved_by: Actor | None = None
    accepted_by: Actor | None = None
    accepted_at: datetime | None = None
    status: Literal["proposed", "agreed", "declined", "delivered", "renegotiated"] = "proposed"

    def value(self, paid: Money) -> int:
        return sum(i.item.value(paid) for i in self.items)


class MoneyMovement(BaseModel):
    item_id: str
    kind: str
    amount: Money
    reference: str
    at: datetime


class Deadline(BaseModel):
    stage: Stage
    waiting_for: str
    due_at: datetime


class ClockEvent(BaseModel):
    at: datetime
    kind: Literal["warning", "escalation"]
    fraction: float | None = None
    level: int | None = None
    repeat: int = 0
    target: str | None = None

    @property
    def key(self) -> str:
        return f"warning-{self.fraction}" if self.kind == "warning" else f"level-{self.level}-repeat-{self.repeat}"


class ClockState(BaseModel):
    """The SLA clock of the current stage."""

    stage: Stage
    waiting_for: str
    kind: Literal["calendar", "business"]
    target: timedelta = Field(description="How long the stage may take, on this clock.")
    started_at: datetime
    consumed: timedelta = Field(default=timedelta(0), description="Clock time used before running_since.")
    running_since: datetime | None = None
    paused_since: datetime | None = Field(default=None, description="Set while waiting on the customer.")
    paused_total: timedelta = timedelta(0)
    due_at: datetime | None = None
    breached: bool = False
    upcoming: list[ClockEvent] = Field(default_factory=list)
    fired: list[str] = Field(default_factory=list)
    paged: list[str] = Field(default_factory=list, description="Targets whose webhooks this stage paged.")


class Snapshot(BaseModel):
    """The whole current state of an incident (query ``snapshot``)."""

    workflow_id: str
    report: IncidentReport
    stage: Stage
    allowed_steps: list[str]
    timeline: list[TimelineEntry]
    needs: list[str]
    proposal: Remedy | None = None
    agreed_remedy: Remedy | None = None
    remedies: list[Remedy]
    money_moved: list[MoneyMovement]
    refunded_total: int
    refundable_left: int
    deadline: Deadline | None = None
    clock: ClockState | None = None
    paused_total: timedelta = Field(default=timedelta(0), description="Time the clocks stood still for the customer.")
    escalation_level: int = 0
    red_flagged: bool = False
    flags: list[str] = Field(default_factory=list)
    closed_at: datetime | None = None
    anniversary_due_at: datetime | None = None
    postmortem: PostmortemInput | None = None
    actions: list[ActionState] = Field(default_factory=list)
    remedy_summary: list[str] = Field(default_factory=list)
    breaches: int = Field(default=0, description="Stages whose deadline was missed.")
    sla_ready: bool = Field(default=False, description="The SLA policy is loaded and the clocks are set.")
    phase: Literal["recovery", "anniversary"] = "recovery"


class StepResult(BaseModel):
    """What a step's update returns: what its caller needs next, the same few hundred bytes however long
    the incident has run (the ``snapshot`` query is the whole view, for those allowed to read it)."""

    workflow_id: str
    stage: Stage
    allowed_steps: list[str] = Field(description="The steps the transition table allows from here.")
    deadline: Deadline | None = None
    escalation_level: int = 0
    entry: TimelineEntry | None = Field(
        default=None, description="The timeline entry the step made; None when the update repeats a step "
                                  "already taken (its answer then is the incident as it stands).")
    remedy: int | None = Field(default=None, description="The number of the latest remedy, to approve, accept or "
                                                         "decline it by.")

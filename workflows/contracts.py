"""The public contract: every input and output of ``IncidentRecovery``.

These models travel as plain JSON (``pydantic_data_converter``), so a Go or
Java backend, or the ``temporal`` CLI, can send them; ``amends schema`` writes
their JSON Schema for other languages. Money is integer minor units plus an
ISO 4217 code; times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Literal, Union

import email_validator  # noqa: F401  (loaded now, not lazily inside the workflow sandbox)
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from workflows.stages import Stage

# ---------------------------------------------------------------- basics


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
IncidentKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="The caller's own key, e.g. order-1001-late; the workflow id is incident-<key>.",
    ),
]
Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code in upper case, e.g. USD, EUR."),
]
Text = Annotated[str, Field(min_length=1, max_length=4000)]


class Contract(BaseModel):
    # Unknown fields are refused so that a misspelt field in a backend's JSON
    # is an error naming it, not silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=False)


class Money(Contract):
    amount: int = Field(gt=0, description="Integer minor units (cents); must be positive.")
    currency: Currency

    def __str__(self) -> str:
        return f"{self.amount / 100:.2f} {self.currency}"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Category(StrEnum):
    LATE_DELIVERY = "late_delivery"
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    BOTCHED_JOB = "botched_job"
    MISCOMMUNICATION = "miscommunication"
    RUDE_EXCHANGE = "rude_exchange"
    BILLING_ERROR = "billing_error"
    OTHER = "other"


class Role(StrEnum):
    AGENT = "agent"
    MANAGER = "manager"
    DIRECTOR = "director"
    CUSTOMER = "customer"
    BACKEND = "backend"
    SYSTEM = "system"


class Actor(Contract):
    """Who took a step. Internal only: never shown to the customer."""

    name: Text = Field(max_length=200)
    role: Role = Role.AGENT


class Customer(Contract):
    customer_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    phone: str | None = None


class Order(Contract):
    order_id: str = Field(min_length=1, max_length=200)
    amount_paid: Money
    payment_reference: str | None = Field(
        default=None,
        description="Stripe charge (ch_…) or payment intent (pi_…) that refunds go back to.",
    )


class Contact(Contract):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr


class ApprovalLimits(Contract):
    """Most money each role may promise without a higher role's approval (minor units)."""

    agent: int = Field(default=5_000, ge=0)
    manager: int = Field(default=50_000, ge=0)
    director: int = Field(default=10_000_000, ge=0)

    def limit(self, role: Role) -> int:
        return {Role.AGENT: self.agent, Role.MANAGER: self.manager, Role.DIRECTOR: self.director}.get(role, 0)


class IncidentReport(Contract):
    """What a backend sends to open an incident."""

    incident_key: IncidentKey
    customer: Customer
    order: Order
    category: Category
    severity: Severity
    what_happened: Text = Field(description="What went wrong, in plain words; shown to the customer.")
    impact: Text = Field(description="What it did to the customer; shown to the customer.")
    detected_at: UtcDatetime
    owner: Contact | None = Field(default=None, description="Who is answerable internally; stalls escalate to them.")
    staff_involved: list[str] = Field(
        default_factory=list,
        description="Staff connected with the failure: kept internal and removed from every customer notice.",
    )
    approval_limits: ApprovalLimits = Field(default_factory=ApprovalLimits)
    anniversary_after_days: int = Field(default=365, ge=1, le=3660)


# ---------------------------------------------------------------- remedies


class RefundItem(Contract):
    """Money back through the payment system; several partial refunds may add up to the amount paid."""

    kind: Literal["refund"] = "refund"
    amount: Money
    reason: str = Field(default="service recovery", max_length=500)


ManualKind = Literal["redo", "replacement", "late_delivery", "upgrade"]


class ManualItem(Contract):
    """Work another system or person must do and confirm with ``confirm_fulfilment``."""

    kind: ManualKind
    description: Text


RemedyItem = Annotated[Union[RefundItem, ManualItem], Field(discriminator="kind")]


class StepInput(Contract):
    by: Actor
    channel: str = Field(default="agent", max_length=50, description="email, phone, chat, backend, …")


class ApologyInput(StepInput):
    pass


class NeedsInput(StepInput):
    needs: Text = Field(description="What the customer needs, in their own words.")


class RemedyProposal(StepInput):
    items: list[RemedyItem] = Field(min_length=1, max_length=20)
    note: str | None = Field(default=None, max_length=2000)


class ApprovalInput(StepInput):
    note: str | None = Field(default=None, max_length=2000)


class AcceptInput(StepInput):
    on_behalf_of_customer: bool = Field(
        default=False, description="An agent records the customer's yes (say which channel they said it on)."
    )


class DeclineInput(StepInput):
    reason: Text


class FulfilmentConfirmation(StepInput):
    item_id: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=2000)


class RenegotiateInput(StepInput):
    reason: Text


class CloseInput(StepInput):
    summary: str | None = Field(default=None, max_length=2000, description="Internal note on the outcome.")


class PostmortemInput(StepInput):
    root_cause: Text = Field(description="A condition of the system (process, tooling, supplier), not a person.")
    contributing_factors: list[Text] = Field(default_factory=list)
    preventive_actions: list[Text] = Field(min_length=1)


class FlagInput(StepInput):
    reason: Text


# ---------------------------------------------------------------- snapshot


class TimelineEntry(BaseModel):
    at: datetime
    step: str
    by: Actor
    channel: str | None = None
    stage: Stage
    detail: str = ""


ItemStatus = Literal["pending", "in_progress", "awaiting_confirmation", "delivered", "failed", "cancelled"]


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

    def refund_total(self) -> int:
        return sum(i.item.amount.amount for i in self.items if isinstance(i.item, RefundItem))


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
    escalation_level: int = 0
    red_flagged: bool = False
    flags: list[str] = Field(default_factory=list)
    closed_at: datetime | None = None
    anniversary_due_at: datetime | None = None
    postmortem: PostmortemInput | None = None


# ---------------------------------------------------------------- activity payloads


class Notice(BaseModel):
    """A message the notices activity renders and sends."""

    kind: str
    audience: Literal["customer", "internal"]
    to: Contact | None = Field(default=None, description="None: the worker's configured care address.")
    message_id: str = Field(description="Stable per incident and notice, so a retried send is recognisable.")
    context: dict
    redact: list[str] = Field(default_factory=list, description="Names that must not reach a customer.")


class RefundRequest(BaseModel):
    idempotency_key: str
    incident_workflow_id: str
    item_id: str
    payment_reference: str
    amount: Money
    amount_paid: Money
    reason: str


class RefundResult(BaseModel):
    refund_id: str
    amount: Money
    status: str
    reused: bool = False


def one_year_after(moment: datetime, days: int) -> datetime:
    return moment + timedelta(days=days)

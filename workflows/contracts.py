"""The public contract: every input and output of ``IncidentRecovery``.

These models travel as plain JSON (``pydantic_data_converter``), so a Go or
Java backend, or the ``temporal`` CLI, can send them; ``amends schema`` writes
their JSON Schema for other languages. Money is integer minor units plus an
ISO 4217 code; times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Union

import email_validator  # noqa: F401  (loaded now, not lazily inside the workflow sandbox)
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
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


# ISO 4217 currencies whose minor unit is not the cent (as Stripe counts them).
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                          "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def exponent(currency: str) -> int:
    currency = currency.upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def format_money(amount: int, currency: str) -> str:
    """8000 USD is "80.00 USD"; 8000 JPY is "8000 JPY"."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f} {currency}"


class Money(Contract):
    amount: int = Field(gt=0, description="Integer minor units (cents for USD, yen for JPY); must be positive.")
    currency: Currency

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


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

    name: str = Field(min_length=1, max_length=200)
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
    anniversary_gift: Money | None = Field(
        default=None, description="A small gift with the anniversary note (a coupon); never for a red-flagged account.",
    )

    @model_validator(mode="after")
    def _gift_in_the_orders_currency(self) -> "IncidentReport":
        gift, currency = self.anniversary_gift, self.order.amount_paid.currency
        if gift is not None and gift.currency != currency:
            raise ValueError(f"anniversary_gift.currency: must be the order's currency {currency}, not {gift.currency}")
        return self


# ---------------------------------------------------------------- remedies
#
# Each remedy the playbook names is an item with its own rules. How an item
# is delivered (``delivery``) decides which activity the engine runs:
#   refund      money back through Stripe, automatic
#   coupon      a Stripe coupon with a deterministic id, automatic
#   billing     a signed work order to the billing backend, done when it answers 2xx
#   work_order  a signed work order to the backend that does the work, done
#               when that backend (or an agent) calls ``confirm_fulfilment``
#   note        words only (a gift note), delivered with the notices


def _share(total: int, percent: int) -> int:
    return (total * percent + 50) // 100  # half up, in minor units


class RemedyItemBase(Contract):
    delivery: ClassVar[str]

    def refund_amount(self) -> int:
        """Money back to the payment: counted against what was paid."""
        return 0

    def value(self, paid: Money) -> int:
        """What the item is worth in the order's minor units: counted against approval limits."""
        return self.refund_amount()

    def moneys(self) -> list[tuple[str, Money]]:
        """(field, money) pairs that must be in the order's currency."""
        return []

    def describe(self) -> str:
        raise NotImplementedError


class RefundItem(RemedyItemBase):
    """Money back through the payment system; several partial refunds may add up to the amount paid."""

    delivery: ClassVar[str] = "refund"
    kind: Literal["refund"] = "refund"
    amount: Money
    reason: str = Field(default="service recovery", max_length=500)

    def refund_amount(self) -> int:
        return self.amount.amount

    def moneys(self) -> list[tuple[str, Money]]:
        return [("amount", self.amount)]

    def describe(self) -> str:
        return f"a refund of {self.amount}"


class CouponItem(RemedyItemBase):
    """A coupon for a smaller grievance: an amount or a percentage off, valid for a while."""

    delivery: ClassVar[str] = "coupon"
    kind: Literal["coupon"] = "coupon"
    amount_off: Money | None = None
    percent_off: int | None = Field(default=None, ge=1, le=100)
    valid_for_days: int = Field(default=365, ge=1, le=3660)

    @model_validator(mode="after")
    def _one_discount(self) -> "CouponItem":
        if (self.amount_off is None) == (self.percent_off is None):
            raise ValueError("give exactly one of amount_off or percent_off")
        return self

    def value(self, paid: Money) -> int:
        return self.amount_off.amount if self.amount_off else _share(paid.amount, self.percent_off or 0)

    def moneys(self) -> list[tuple[str, Money]]:
        return [("amount_off", self.amount_off)] if self.amount_off else []

    def describe(self) -> str:
        off = str(self.amount_off) if self.amount_off else f"{self.percent_off}%"
        return f"a coupon for {off} off your next order, valid for {self.valid_for_days} days"


class WaiveBalanceItem(RemedyItemBase):
    """Waive what the customer still owes (a signed work order to the billing backend)."""

    delivery: ClassVar[str] = "billing"
    kind: Literal["waive_balance"] = "waive_balance"
    amount: Money
    invoice_reference: str = Field(min_length=1, max_length=200)

    def value(self, paid: Money) -> int:
        return self.amount.amount

    def moneys(self) -> list[tuple[str, Money]]:
        return [("amount", self.amount)]

    def describe(self) -> str:
        return f"we waive the {self.amount} still outstanding on invoice {self.invoice_reference}"


WorkKind = Literal["redo", "replacement", "late_delivery", "upgrade"]


class WorkItem(RemedyItemBase):
    """Work another system must do (a signed work order) and confirm with ``confirm_fulfilment``.

    ``upgrade`` is an upgrade at no extra cost; ``late_delivery`` delivers
    what was ordered after all.
    """

    delivery: ClassVar[str] = "work_order"
    kind: WorkKind
    description: Text

    def describe(self) -> str:
        label = {"redo": "we redo the work", "replacement": "a replacement", "late_delivery": "delivery of your order",
                 "upgrade": "an upgrade at no extra cost"}[self.kind]
        return f"{label}: {self.description}"


class SplitCostItem(RemedyItemBase):
    """Shared responsibility, shared cost: we pay our share of a stated cost, as a refund or a coupon."""

    kind: Literal["split_cost"] = "split_cost"
    cost: Money
    our_share_percent: int = Field(ge=1, le=100)
    paid_as: Literal["refund", "coupon"] = "refund"
    description: Text

    @property
    def delivery(self) -> str:  # type: ignore[override]
        return self.paid_as

    @property
    def share(self) -> Money:
        return Money(amount=max(_share(self.cost.amount, self.our_share_percent), 1), currency=self.cost.currency)

    def refund_amount(self) -> int:
        return self.share.amount if self.paid_as == "refund" else 0

    def value(self, paid: Money) -> int:
        return self.share.amount

    def moneys(self) -> list[tuple[str, Money]]:
        return [("cost", self.cost)]

    def describe(self) -> str:
        how = "a refund" if self.paid_as == "refund" else "a coupon"
        return f"we pay {self.our_share_percent}% of {self.description} ({self.cost}): {self.share} as {how}"


class GiftItem(RemedyItemBase):
    """A goodwill gift: a coupon, a note, or both."""

    kind: Literal["gift"] = "gift"
    coupon_amount: Money | None = None
    note: str | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _something(self) -> "GiftItem":
        if self.coupon_amount is None and self.note is None:
            raise ValueError("a gift needs a coupon_amount, a note, or both")
        return self

    @property
    def delivery(self) -> str:  # type: ignore[override]
        return "coupon" if self.coupon_amount else "note"

    def value(self, paid: Money) -> int:
        return self.coupon_amount.amount if self.coupon_amount else 0

    def moneys(self) -> list[tuple[str, Money]]:
        return [("coupon_amount", self.coupon_amount)] if self.coupon_amount else []

    def describe(self) -> str:
        parts = []
        if self.coupon_amount:
            parts.append(f"a gift voucher worth {self.coupon_amount}")
        if self.note:
            parts.append(self.note)
        return "a small gift from us: " + "; ".join(parts)


RemedyItem = Annotated[
    Union[RefundItem, CouponItem, WaiveBalanceItem, WorkItem, SplitCostItem, GiftItem],
    Field(discriminator="kind"),
]


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


class SystemCondition(StrEnum):
    """Where blame lands: on the system, never on a person (playbook, stage 7)."""

    PROCESS = "process"
    TOOLING = "tooling"
    COMMUNICATION = "communication"
    SUPPLIER = "supplier"
    TRAINING = "training"
    CAPACITY = "capacity"
    OTHER = "other"


class ContributingFactor(Contract):
    condition: Text = Field(description="A condition of the system, e.g. 'labels are printed by hand'.")
    kind: SystemCondition


class PreventiveAction(Contract):
    action: Text = Field(description="What will stop it happening again.")
    owner: Contact
    due: date = Field(description="The day it is due; reminders start the day after.")


class PostmortemInput(StepInput):
    """A structured, blameless post-mortem."""

    what_happened: Text
    root_cause_category: SystemCondition
    root_cause: Text = Field(description="A condition of the system (process, tooling, supplier), not a person.")
    contributing_factors: list[ContributingFactor] = Field(default_factory=list)
    preventive_actions: list[PreventiveAction] = Field(min_length=1)


class CompleteActionInput(StepInput):
    action_id: str = Field(min_length=1, max_length=50, description="e.g. action-1, from the snapshot.")
    note: str | None = Field(default=None, max_length=2000)


class ActionState(BaseModel):
    action_id: str
    action: str
    owner: Contact
    due: date
    status: Literal["open", "done"] = "open"
    completed_at: datetime | None = None
    completed_by: Actor | None = None
    reminders: int = 0


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


class PageRequest(BaseModel):
    """A warning or an escalation page, sent by email and signed webhook."""

    idempotency_key: str = Field(description="Incident, stage, level and repeat: one page each.")
    kind: Literal["warning", "escalation", "reminder", "action_overdue"]
    level: int | None = None
    repeat: int = 0
    fraction: float | None = None
    action: str | None = None
    target_name: str
    email: str | None = None
    webhook_url: str | None = None
    format: Literal["amends", "slack", "pagerduty"] = "amends"
    routing_key: str | None = None
    incident: str
    customer_id: str
    severity: str
    stage: str
    waiting_for: str
    due_at: datetime
    overdue: str = ""
    what_happened: str


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


class AnniversaryPhase(BaseModel):
    """What an incident carries across continue-as-new into its year of waiting.

    Only what the anniversary and the follow-up actions need: the key facts,
    the remedy in words, the post-mortem and its actions, the flags, and the
    milestones of the timeline. The full history stays in the first run.
    """

    closed_at: datetime
    apologised_at: datetime | None
    remedy_summary: list[str]
    refunded_total: int
    breaches: int
    postmortem: PostmortemInput
    actions: list[ActionState]
    flags: list[str]
    red_flagged: bool
    timeline: list[TimelineEntry]
    policy: dict = Field(description="The SLA policy the incident opened under (JSON).")


class ContinuedIncident(Contract):
    """The input of the incident's second run (continue-as-new); backends never send it."""

    report: IncidentReport
    phase: AnniversaryPhase


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


class CouponRequest(BaseModel):
    coupon_id: str = Field(description="Deterministic: the workflow id and item; also the idempotency key.")
    incident_workflow_id: str
    item_id: str
    amount_off: Money | None = None
    percent_off: int | None = None
    redeem_by: datetime


class CouponResult(BaseModel):
    coupon_id: str
    reused: bool = False


class WebhookRequest(BaseModel):
    target: str = Field(description="work_orders, billing, notices, crm or escalations")
    event: str
    idempotency_key: str
    payload: dict
    # A target that is not configured: fail (work orders must reach someone)
    # or skip quietly (optional copies such as notice webhooks).
    required: bool = True


class WebhookReceipt(BaseModel):
    delivered: bool
    status: int | None = None
    reference: str | None = None
    detail: str = ""


def one_year_after(moment: datetime, days: int) -> datetime:
    return moment + timedelta(days=days)

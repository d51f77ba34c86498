"""The public contract: what backends send to open an incident and to take each step.

These models travel as plain JSON (``pydantic_data_converter``), so a Go or
Java backend, or the ``temporal`` CLI, can send them; ``amends schema`` writes
their JSON Schema for other languages. Money is integer minor units plus an
ISO 4217 code; times are timezone-aware UTC. Change them only compatibly.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

import email_validator  # noqa: F401  (loaded now, not lazily inside the workflow sandbox)
from pydantic import EmailStr, Field, StrictBool, ValidationInfo, field_validator, model_validator

from workflows.basics import Contract, Count, IncidentKey, Line, Note, ShortLine, Text, UtcDatetime
from workflows.money import MAX_MINOR_UNITS, Money
from workflows.names import name_pattern
from workflows.remedies import RemedyItem


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

    name: Line
    role: Role = Role.AGENT


class Customer(Contract):
    customer_id: Line
    name: Line
    email: EmailStr
    phone: ShortLine | None = None


class Order(Contract):
    order_id: Line
    amount_paid: Money
    payment_reference: Line | None = Field(
        default=None,
        description="Stripe charge (ch_…) or payment intent (pi_…) that refunds go back to.",
    )


class Contact(Contract):
    name: Line
    email: EmailStr
    known_as: ShortLine | None = Field(
        default=None, description="The name this person uses with customers (e.g. 'Sam from customer care'); "
                                  "an incident's owner signs its notices with it.")

    @property
    def signature(self) -> str:
        return self.known_as or self.name


class ApprovalLimits(Contract):
    """Most money each role may promise without a higher role's approval (minor units)."""

    agent: Count = Field(default=5_000, ge=0, le=MAX_MINOR_UNITS)
    manager: Count = Field(default=50_000, ge=0, le=MAX_MINOR_UNITS)
    director: Count = Field(default=10_000_000, ge=0, le=MAX_MINOR_UNITS)

    def limit(self, role: Role) -> int:
        return {Role.AGENT: self.agent, Role.MANAGER: self.manager, Role.DIRECTOR: self.director}.get(role, 0)


# The fields of an open that the customer reads.
CUSTOMER_FACING = ("what_happened", "impact")
# Validation context that marks a new open (``IncidentReport.model_validate(data, context={OPENING: True})``):
# only then is a report that names staff to the customer refused.
OPENING = "opening"


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
    staff_involved: list[Line] = Field(
        max_length=50,
        default_factory=list,
        description="Staff connected with the failure: kept internal and removed from every customer notice.",
    )
    approval_limits: ApprovalLimits | None = Field(
        default=None,
        description="Not the report's to set: the worker's policy sets approval limits. Accepted only as the "
                    "defaults that reports recorded before carried.",
    )
    anniversary_after_days: Count = Field(default=365, ge=1, le=3660)
    anniversary_gift: Money | None = Field(
        default=None, description="A small gift with the anniversary note (a coupon); never for a red-flagged account.",
    )
    locale: str | None = Field(
        default=None, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
        description="The customer's language as a BCP 47 tag, e.g. de-DE: notices are written in it, amounts and "
                    "dates formatted for it. Omitted, or a language amends has no notices in (fr), the worker's "
                    "default (AMENDS_DEFAULT_LOCALE) is used.",
        examples=["de-DE", "en-GB"],
    )

    @field_validator("approval_limits")
    @classmethod
    def _limits_are_the_policys(cls, limits: ApprovalLimits | None) -> ApprovalLimits | None:
        if limits is not None and limits != ApprovalLimits():
            raise ValueError("set by the worker's policy, not by the report that opens an incident; leave it out")
        return limits

    @model_validator(mode="after")
    def _gift_in_the_orders_currency(self) -> IncidentReport:
        gift, currency = self.anniversary_gift, self.order.amount_paid.currency
        if gift is not None and gift.currency != currency:
            raise ValueError(f"anniversary_gift.currency: must be the order's currency {currency}, not {gift.currency}")
        return self

    @model_validator(mode="after")
    def _names_no_staff_when_opened(self, info: ValidationInfo) -> IncidentReport:
        # Only for a new open (validation context OPENING): a report recorded
        # before this rule, read back from a history or a snapshot, still decodes.
        if isinstance(info.context, dict) and info.context.get(OPENING):
            refusal = self.staff_named_to_customer()
            if refusal:
                raise ValueError(refusal)
        return self

    def staff_named_to_customer(self) -> str | None:
        """Why this report may not open an incident: a customer-facing field names staff (``None``: it may).

        ``what_happened`` and ``impact`` are shown to the customer, who never
        learns who was at fault; the people belong in ``staff_involved``. The
        same matcher as the notices' redaction (``workflows.names``: every
        form of a name, any case, accents and apostrophes; a name that is also
        an ordinary word only where it stands as a name).
        """
        pattern = name_pattern(self.staff_involved, min_part=2)
        if pattern is None:
            return None
        for field in CUSTOMER_FACING:
            found = pattern.search(getattr(self, field))
            if found is not None:
                return (
                    f"{field}: shown to the customer, who is never told who was at fault ('{found.text}' names "
                    f"'{found.name}' of staff_involved); say what happened as the company (\"we\") and keep the "
                    f"people in staff_involved"
                )
        return None



class StepInput(Contract):
    credential: str | None = Field(
        default=None, max_length=8000,
        description="A signed credential (JWT) bound to this incident, this step and a checksum of this input; "
                    "who acts comes from its verified claims. Required (optional in the schema only so that "
                    "incidents recorded before credentials still replay).",
    )
    by: Actor | None = Field(
        default=None,
        description="Not the caller's to say: filled in by amends from the credential's verified claims; a step "
                    "that sends it is refused.",
    )
    channel: ShortLine = Field(default="agent", description="email, phone, chat, backend, …")

    @property
    def actor(self) -> Actor:
        """Who took the step: set by the workflow from the verified credential before the step's effect runs."""
        assert self.by is not None, "the step's actor was not verified"
        return self.by


class ApologyInput(StepInput):
    pass


class NeedsInput(StepInput):
    needs: Text = Field(description="What the customer needs, in their own words.")


class RemedyProposal(StepInput):
    items: list[RemedyItem] = Field(min_length=1, max_length=20)
    note: Note | None = None


class Decision(StepInput):
    """A step that decides a proposed remedy: it names the remedy it decides."""

    remedy: Count | None = Field(
        default=None, ge=1,
        description="The number of the remedy this decides (#N in the snapshot). Required: a decision names "
                    "what it decides (optional in the schema only so that incidents recorded before still replay).",
    )


class ApprovalInput(Decision):
    total: Count | None = Field(
        default=None, ge=0,
        description="The remedy's worth as the approver saw it, in the order's minor units (the snapshot's "
                    "value of the remedy). Required, like remedy.",
    )
    note: Note | None = None


class AcceptInput(Decision):
    on_behalf_of_customer: StrictBool = Field(
        default=False, description="An agent records the customer's yes (say which channel they said it on)."
    )


class DeclineInput(Decision):
    reason: Text


class FulfilmentConfirmation(StepInput):
    item_id: Line = Field(description="e.g. remedy-1/item-2, from the snapshot.")
    note: Note | None = Field(default=None, description="e.g. the tracking number.")


class RenegotiateInput(StepInput):
    reason: Text


class CloseInput(StepInput):
    summary: Note | None = Field(default=None, description="Internal note on the outcome.")


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
    contributing_factors: list[ContributingFactor] = Field(default_factory=list, max_length=50)
    preventive_actions: list[PreventiveAction] = Field(min_length=1, max_length=50)


class CompleteActionInput(StepInput):
    action_id: ShortLine = Field(description="e.g. action-1, from the snapshot.")
    note: Note | None = Field(default=None, description="What was done, e.g. the change's reference.")



class FlagInput(StepInput):
    reason: Text


class Opening(Contract):
    """The argument of the ``opened`` update, sent with the open (update-with-start) or to an open incident.

    Without a step, ``opened`` answers once the incident is set up (its
    issuers' keys and SLA policy recorded) with its snapshot. With one, it
    also takes that step, in the same call, as soon as it is set up: a
    backend opens and apologises at once.
    """

    step: ShortLine | None = Field(
        default=None,
        description="A step to take as soon as the incident is set up, by its update's name (usually apologise).",
    )
    input: dict[str, Any] | None = Field(
        default=None,
        description="That step's input as its own update takes it (schema/<step>.schema.json), with a credential "
                    "bound to this incident, that step and this input.",
    )

    @model_validator(mode="after")
    def _step_with_its_input(self) -> Opening:
        if (self.step is None) != (self.input is None):
            raise ValueError("step and input: a first step needs its input (with its credential), and an input "
                             "the step it is for")
        return self

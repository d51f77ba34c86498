"""What the workflow hands its activities, and what they answer: internal, free to change with care."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from workflows.inputs import Actor, Contact
from workflows.money import Money
from workflows.sla import SlaPolicy
from workflows.trust import Trust


class PageRequest(BaseModel):
    """A warning or an escalation page, sent by email and signed webhook."""

    idempotency_key: str = Field(description="Incident, stage, level and repeat: one page each.")
    kind: Literal["warning", "escalation", "reminder", "action_overdue", "resolved"]
    level: int | None = None
    repeat: int = 0
    fraction: float | None = None
    action: str | None = None
    target_name: str
    email: str | None = None
    webhook_url: str | None = None
    format: Literal["amends", "slack", "pagerduty"] = "amends"
    routing_key: str | None = None
    target: str | None = Field(default=None, description="The policy's name for the target; the worker resolves "
                                                          "its webhook URL and routing key from it.")
    webhook: bool = Field(default=False, description="The target has a webhook the worker knows.")
    incident: str
    customer_id: str
    severity: str
    stage: str
    waiting_for: str
    due_at: datetime
    overdue: str = ""
    what_happened: str


# ---------------------------------------------------------------- activity payloads


class Notice(BaseModel):
    """A message the notices activity renders and sends."""

    kind: str
    audience: Literal["customer", "internal"]
    to: Contact | None = Field(default=None, description="None: the worker's configured care address.")
    message_id: str = Field(description="Stable per incident and notice, so a retried send is recognisable.")
    context: dict[str, Any]
    redact: list[str] = Field(default_factory=list, description="Names that must not reach a customer.")
    signer: Contact | None = Field(
        default=None, description="Who signs a customer notice and receives the reply: the incident's care "
                                  "contact; None: the worker's care team.")


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
    reused: bool = Field(default=False, description="Found by its key: made by an earlier attempt.")


class CouponRequest(BaseModel):
    coupon_id: str = Field(description="Deterministic: the workflow id and item; also the idempotency key.")
    incident_workflow_id: str
    item_id: str
    amount_off: Money | None = None
    percent_off: int | None = None
    redeem_by: datetime


class CouponResult(BaseModel):
    coupon_id: str = Field(description="The single-use Stripe coupon: the engine's reference, never told the customer.")
    code: str = Field(
        default="",
        description="The single-use promotion code the customer gets; empty in results recorded before codes existed.",
    )
    reused: bool = False


class WebhookRequest(BaseModel):
    target: str = Field(description="work_orders, billing, notices, crm or escalations")
    event: str
    idempotency_key: str
    payload: dict[str, Any]
    # A target that is not configured: fail (work orders must reach someone)
    # or skip quietly (optional copies such as notice webhooks).
    required: bool = True
    answers: list[int] = Field(
        default_factory=list,
        description="4xx statuses that are the backend's answer, not a rejection: 409 to a cancellation means "
                    "the work is already under way or shipped.",
    )


class WebhookReceipt(BaseModel):
    delivered: bool
    status: int | None = None
    reference: str | None = None
    detail: str = ""


class CredentialCheck(BaseModel):
    """A first step's credential, to verify outside the workflow (``verify_credential``, a local activity).

    A step sent with the open arrives before the incident has recorded whom
    it trusts, so no validator could verify it; verified once it has, by a
    local activity, its verdict is recorded in the history and replay never
    verifies again (as replay never runs validators).
    """

    trust: Trust
    step: str
    credential: str | None
    by_given: bool
    checksum: str
    workflow_id: str
    now: datetime
    used: list[str]


class CredentialVerdict(BaseModel):
    actor: Actor | None = None
    refusal: str | None = None
    unknown_key: bool = Field(default=False, description="Refused for a key the incident has not recorded.")


class Setup(BaseModel):
    """What an incident records when it opens, from one local activity (one marker): whom it trusts, and the
    SLA policy it runs under."""

    trust: Trust
    policy: SlaPolicy

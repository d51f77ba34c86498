"""Factories for the tests: the people who act, a paid order in localstripe and the incident report around it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from workflows.inputs import Actor, IncidentReport, Role

AGENT = Actor(name="Priya Shah", role=Role.AGENT)
MANAGER = Actor(name="Marcus Webb", role=Role.MANAGER)
DIRECTOR = Actor(name="Dana Okafor", role=Role.DIRECTOR)
CUSTOMER = Actor(name="customer via shop backend", role=Role.CUSTOMER)
# Staff connected with the failure: their names must never reach the customer.
STAFF_AT_FAULT = ["Kevin Lomax", "Rita Moreno"]
# Real-world names: a sharp s, "Family, Given", a typographic apostrophe, an accent.
STAFF_WORLDWIDE = ["Jonas Strauß", "Lomax, Kevin", "Siobhán O'Brien", "Zoë Adams"]
# Staff whose given names are everyday words: matched only where they stand as names.
STAFF_ORDINARY = ["May Chen", "Will Turner"]
# The incident's owner: the one member of staff a customer notice names, as its signature.
OWNER = "Olga Brandt"
EVERY_STAFF_NAME = STAFF_AT_FAULT + STAFF_WORLDWIDE + STAFF_ORDINARY + [AGENT.name, MANAGER.name, DIRECTOR.name, OWNER]

# A remedy's description is free text from an agent: the notices redact a staff name in it.
REDO = {"kind": "redo", "description": "Rita Moreno pitches the tent for you on site"}


def refund(cents: int, currency: str = "USD") -> dict:
    return {"kind": "refund", "amount": {"amount": cents, "currency": currency}}


async def paid_intent(stripe, amount: int, currency: str = "usd") -> str:
    intent = await stripe.v1.payment_intents.create_async(
        params={"amount": amount, "currency": currency, "payment_method": "pm_card_visa", "confirm": True}
    )
    assert intent.status == "succeeded"
    return intent.id


def report(
    payment_reference: str | None,
    amount: int = 8_000,
    currency: str = "USD",
    severity: str = "high",
    key: str | None = None,
    **overrides,
) -> IncidentReport:
    key = key or f"order-{uuid.uuid4().hex[:8]}-late"
    data = {
        "incident_key": key,
        "customer": {
            "customer_id": f"cus-{key}",
            "name": "Alex Rivera",
            "email": f"alex.{key}@example.com",
        },
        "order": {
            "order_id": f"ord-{key}",
            "amount_paid": {"amount": amount, "currency": currency},
            "payment_reference": payment_reference,
        },
        "category": "late_delivery",
        "severity": severity,
        "what_happened": "Your tent arrived nine days late because the parcel was mislabelled.",
        "impact": "You left for your trip without it and had to buy another one.",
        "detected_at": datetime.now(UTC),
        "owner": {"name": OWNER, "email": f"owner.{key}@example.com"},
        "staff_involved": STAFF_AT_FAULT,
    }
    data.update(overrides)
    return IncidentReport.model_validate(data)

"""The people and the paid order the benchmark's incidents are made of (bench never imports from tests/)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from workflows.inputs import Actor, IncidentReport, PostmortemInput, Role

AGENT = Actor(name="Priya Shah", role=Role.AGENT)
MANAGER = Actor(name="Marcus Webb", role=Role.MANAGER)
CUSTOMER = Actor(name="customer via shop backend", role=Role.CUSTOMER)


async def paid_intent(stripe, amount: int, currency: str = "usd") -> str:
    """A payment intent in localstripe, paid, for refunds to go back to."""
    intent = await stripe.v1.payment_intents.create_async(
        params={"amount": amount, "currency": currency, "payment_method": "pm_card_visa", "confirm": True}
    )
    assert intent.status == "succeeded"
    return intent.id


def report(payment_reference: str, key: str, amount: int = 8_000, currency: str = "USD") -> IncidentReport:
    """A late tent: the incident each benchmark run drives from opening to the post-mortem."""
    return IncidentReport.model_validate({
        "incident_key": key,
        "customer": {"customer_id": f"cus-{key}", "name": "Alex Rivera", "email": f"alex.{key}@example.com"},
        "order": {
            "order_id": f"ord-{key}",
            "amount_paid": {"amount": amount, "currency": currency},
            "payment_reference": payment_reference,
        },
        "category": "late_delivery",
        "severity": "high",
        "what_happened": "Your tent arrived nine days late because we mislabelled the parcel.",
        "impact": "You left for your trip without it and had to buy another one.",
        "detected_at": datetime.now(UTC),
        "owner": {"name": "Olga Brandt", "email": f"owner.{key}@example.com"},
        "staff_involved": ["Kevin Lomax", "Rita Moreno"],
    })


def postmortem(root_cause_category: str = "process") -> PostmortemInput:
    """The manager's post-mortem every benchmark incident ends with."""
    return PostmortemInput(
        what_happened="late", root_cause_category=root_cause_category, root_cause="no label check",
        preventive_actions=[{"action": "check labels", "owner": {"name": "Ops", "email": "ops@example.com"},
                             "due": date.today() + timedelta(days=30)}])


async def until_fulfilled(stage: Callable[[], Awaitable[str]]) -> None:
    """Poll ``stage()`` (a snapshot query's stage) until the remedy is fulfilled, as a backend would, for 30 s."""
    for _ in range(600):
        if await stage() == "fulfilled":
            return
        await asyncio.sleep(0.05)


async def stage_of(client: Any, key: str) -> str:
    """The incident's stage, from its snapshot (``client`` an ``AmendsClient``)."""
    return str((await client.snapshot(key)).stage)

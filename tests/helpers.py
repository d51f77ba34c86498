"""Factories for the tests: a paid order in localstripe and the incident report around it."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from workflows.inputs import Actor, IncidentReport, Role

AGENT = Actor(name="Priya Shah", role=Role.AGENT)
MANAGER = Actor(name="Marcus Webb", role=Role.MANAGER)
DIRECTOR = Actor(name="Dana Okafor", role=Role.DIRECTOR)
CUSTOMER = Actor(name="customer via shop backend", role=Role.CUSTOMER)
# Staff connected with the failure: their names must never reach the customer.
STAFF_AT_FAULT = ["Kevin Lomax", "Rita Moreno"]
EVERY_STAFF_NAME = STAFF_AT_FAULT + [AGENT.name, MANAGER.name, DIRECTOR.name, "Olga Brandt"]


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
    data = dict(
        incident_key=key,
        customer={
            "customer_id": f"cus-{key}",
            "name": "Alex Rivera",
            "email": f"alex.{key}@example.com",
        },
        order={
            "order_id": f"ord-{key}",
            "amount_paid": {"amount": amount, "currency": currency},
            "payment_reference": payment_reference,
        },
        category="late_delivery",
        severity=severity,
        what_happened="Your tent arrived nine days late because Kevin Lomax mislabelled the parcel.",
        impact="You left for your trip without it and had to buy another one.",
        detected_at=datetime.now(timezone.utc),
        owner={"name": "Olga Brandt", "email": f"owner.{key}@example.com"},
        staff_involved=STAFF_AT_FAULT,
    )
    data.update(overrides)
    return IncidentReport.model_validate(data)


async def recorded_search_attributes(handle) -> dict:
    """The search attributes as the history recorded them (start, then every upsert).

    Read from the history because the time-skipping server cannot describe a
    workflow whose Datetime attribute was unset.
    """
    from temporalio.converter import decode_search_attributes

    seen: dict = {}
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind == "workflow_execution_started_event_attributes":
            attrs = event.workflow_execution_started_event_attributes.search_attributes
        elif kind == "upsert_workflow_search_attributes_event_attributes":
            attrs = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        else:
            continue
        for name, payload in attrs.indexed_fields.items():
            if payload.data in (b"", b"null"):
                seen.pop(name, None)
            else:
                seen[name] = decode_search_attributes(type(attrs)(indexed_fields={name: payload}))[name]
    return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in seen.items()}


async def history_length(handle) -> int:
    return len([e async for e in handle.fetch_history_events()])


async def history_kinds(handle) -> list[str]:
    """The kinds of the events in a workflow's history, e.g. ``timer_started``."""
    return [e.WhichOneof("attributes").removesuffix("_event_attributes") async for e in handle.fetch_history_events()]


async def settled(handle) -> list[str]:
    """Wait until the workflow has no activity in flight and its history stops growing."""
    import asyncio

    last: list[str] = []
    for _ in range(400):
        kinds = await history_kinds(handle)
        scheduled = kinds.count("activity_task_scheduled")
        finished = sum(kinds.count(k) for k in ("activity_task_completed", "activity_task_failed", "activity_task_timed_out"))
        # A workflow task scheduled or started (say, the first of a run continued as new) is not settled.
        if kinds == last and scheduled == finished and kinds[-1] not in ("workflow_task_scheduled",
                                                                         "workflow_task_started"):
            return kinds
        last = kinds
        await asyncio.sleep(0.05)
    raise AssertionError(f"history did not settle: {last[-5:]}")


HISTORIES = __import__("pathlib").Path(__file__).parent / "histories"


async def keep_history(handle, name: str) -> None:
    """With AMENDS_RECORD_HISTORIES=1, store the run's history for the replay test as ``<name>.json``.

    Stored histories are how long-lived incidents are protected from code
    changes: every history kept here must still replay (tests/workflows/test_replay.py).
    A stored history is never overwritten: after a change of the workflow's
    commands, record under a new name and keep the old file beside it.
    """
    import os

    path = HISTORIES / f"{name}.json"
    if os.environ.get("AMENDS_RECORD_HISTORIES") == "1" and not path.exists():
        history = await handle.fetch_history()
        path.write_text(history.to_json())


def text_of(message) -> str:
    """The plain-text part of a notice (each also carries an HTML alternative)."""
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


async def mail_to(sink, address: str, kind: str | None = None, count: int = 1, tries: int = 200) -> list:
    """Wait until ``count`` notices (of ``kind``) have reached ``address``; return them."""
    import asyncio

    found: list = []
    for _ in range(tries):
        found = [m for m in sink.to(address) if kind is None or m["X-Amends-Notice"] == kind]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(found)} of {count} {kind or ''} notices reached {address}")

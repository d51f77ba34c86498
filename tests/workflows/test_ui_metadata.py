"""What ops read in the Web UI, checked where the server keeps it: describe() and the history."""

from __future__ import annotations

import asyncio
import re

from temporalio.api.sdk.v1 import WorkflowMetadata

from tests.support.codec import data_converter
from tests.support.factories import AGENT, CUSTOMER, paid_intent, report
from tests.support.identity import Amends
from tests.support.steps import take, wait_for
from workflows.client import summary
from workflows.inputs import AcceptInput, RemedyProposal


async def metadata(handle) -> WorkflowMetadata:
    return await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)


async def summaries(handle, kind: str) -> list[str]:
    """The user-metadata summaries of every ``kind`` event (timer_started, activity_task_scheduled)."""
    out = []
    async for event in handle.fetch_history_events():
        if event.WhichOneof("attributes") == f"{kind}_event_attributes" and event.HasField("user_metadata"):
            [summary] = await data_converter.decode([event.user_metadata.summary], [str])
            out.append(summary)
    return out


async def test_an_incident_reads_well_in_the_ui_at_two_stages(dev_env, dev_worker, settings, stripe):
    amends = Amends(dev_env.client, settings.task_queue)
    rep = report(await paid_intent(stripe, 8_000), severity="high")
    key = rep.incident_key
    await amends.open_incident(rep)
    handle = amends.handle(key)
    await wait_for(amends, key, lambda s: s.deadline is not None)

    # Stage one: detected, the apology clock running.
    desc = await handle.describe()
    assert await desc.static_summary() == summary(rep) == f"high late delivery · {rep.customer.customer_id} · order {rep.order.order_id}"
    details = await desc.static_details()
    assert rep.what_happened in details and "**Severity:** high" in details and "80.00 USD" in details
    meta = await metadata(handle)
    current = meta.current_details
    assert current.startswith("**Stage:** detected · **Severity:** high · **Category:** late_delivery")
    assert re.search(r"\*\*Next:\*\* apology, due in (1 h|59 min) \(\d{4}-\d\d-\d\d \d\d:\d\d UTC, calendar clock\)", current)
    assert "**Allowed steps:** apologise, flag_account" in current
    descriptions = {u.name: u.description for u in meta.definition.update_definitions}
    assert descriptions["apologise"] == "Apologise to the customer, first and fast; sends the apology notice."
    assert all(descriptions[name] for name in ("record_needs", "propose_remedy", "approve_remedy", "accept_remedy",
                                               "decline_remedy", "confirm_fulfilment", "close", "record_postmortem",
                                               "complete_action", "flag_account", "renegotiate"))
    assert await summaries(handle, "timer_started") == ["warn at 50% of the apology deadline (calendar clock)"]

    # Stage two: remedy agreed, money moving.
    for step in ("apologise", "record_needs"):
        await take(amends, key, step)
    await amends.propose_remedy(key, RemedyProposal(by=AGENT, items=[
        {"kind": "refund", "amount": {"amount": 3_000, "currency": "USD"}},
        {"kind": "replacement", "description": "a new tent"},
    ]))
    await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
    await wait_for(amends, key, lambda s: s.agreed_remedy.items[1].status == "awaiting_confirmation")
    await asyncio.sleep(0.2)
    current = (await metadata(handle)).current_details
    assert current.startswith("**Stage:** remedy_agreed")
    assert "**Remedy #1 (agreed):** remedy-1/item-1 refund [delivered], remedy-1/item-2 replacement [awaiting_confirmation]" in current
    assert "**Money refunded:** 30.00 USD" in current
    assert re.search(r"\*\*Next:\*\* fulfilment, due in (3 d|2\.9 d|71\.\d h)", current), current
    activities = await summaries(handle, "activity_task_scheduled")
    assert activities[:2] == ["apology notice to the customer by email", "apology notice as a webhook"]
    assert "refund 30.00 USD via Stripe" in activities
    assert "replacement work order to work_orders" in activities
    # Each timer says what it waits for: the watch on the refund's answer, the fulfilment clock last.
    # Which warnings of the short stages were started depends on how fast the steps came.
    timers = await summaries(handle, "timer_started")
    assert timers[0] == "warn at 50% of the apology deadline (calendar clock)"
    assert "refund remedy-1/item-1 unanswered for 5 min: outcome unknown" in timers
    assert timers[-1] == "warn at 50% of the fulfilment deadline (calendar clock)"
    assert set(timers) <= {
        "warn at 50% of the apology deadline (calendar clock)",
        "warn at 50% of the customer's needs deadline (calendar clock)",
        "warn at 50% of the agreed remedy deadline (calendar clock)",
        "refund remedy-1/item-1 unanswered for 5 min: outcome unknown",
        "warn at 50% of the fulfilment deadline (calendar clock)",
    }
    desc = await handle.describe()
    assert await desc.static_summary() == summary(rep)  # the summary stays; the details move on

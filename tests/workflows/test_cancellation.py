"""Renegotiating a remedy cancels the work orders that backends were sent, once each, and records their answers."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from temporalio.worker import Worker

from activities.webhooks import verify
from tests.support.factories import AGENT, CUSTOMER, MANAGER, report
from tests.support.history import keep_history, markers, settled
from tests.support.identity import Amends
from tests.support.servers import WEBHOOK_SECRET
from tests.support.steps import last_entry, take, wait_for
from worker.main import WORKFLOW_RUNNER, activities_for
from workflows.client import AmendsClient
from workflows.incident import IncidentRecovery
from workflows.inputs import AcceptInput, FulfilmentConfirmation, RemedyProposal, RenegotiateInput
from workflows.stages import Stage

CANCELLED = "work_order.cancelled"
OUTCOMES = ("work_order_cancelled", "work_order_already_shipped", "work_order_cancel_failed")


def usd(cents: int) -> dict:
    return {"amount": cents, "currency": "USD"}


@pytest.fixture
def amends(ts_env, ts_worker, settings) -> AmendsClient:
    return Amends(ts_env.client, settings.task_queue)


@asynccontextmanager
async def worker_with(env, settings, work_orders: str | None, skipping: bool = False):
    """A worker of its own whose work orders go to ``work_orders`` (None: no backend takes them).

    ``skipping``: ``env`` is the test's own server, whose time the test moves (credentials follow it).
    """
    urls = {k: v for k, v in settings.webhooks.urls.items() if k != "work_orders"}
    if work_orders is not None:
        urls["work_orders"] = work_orders
    odd = settings.model_copy(update={
        "task_queue": f"amends-cancel-{uuid.uuid4().hex[:6]}",
        "webhooks": settings.webhooks.model_copy(update={"urls": urls}),
    })
    async with Worker(env.client, task_queue=odd.task_queue, workflows=[IncidentRecovery],
                      activities=activities_for(odd), workflow_runner=WORKFLOW_RUNNER):
        yield Amends(env.client, odd.task_queue, env=env if skipping else None)


async def agreed(amends, items: list[dict], number: int = 1, key: str | None = None) -> str:
    """Open an incident (or use ``key``), propose ``items`` as remedy ``number`` and have the customer accept."""
    if key is None:
        rep = report(None, amount=10_000)
        key = rep.incident_key
        await amends.open_incident(rep)
        for step in ("apologise", "record_needs"):
            await take(amends, key, step)
    await amends.propose_remedy(key, RemedyProposal(by=MANAGER, items=items))
    await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=number))
    return key


def requests(sink, path: str, key: str, event: str) -> list:
    return [r for r in sink.at(path) if r.body["data"]["incident"] == f"incident-{key}" and r.body["event"] == event]


def outcomes(snap) -> list[tuple[str, str | None, str]]:
    return [(e.step, e.channel, e.detail) for e in snap.timeline if e.step in OUTCOMES]


async def patch_markers(handle) -> int:
    """How many times the history recorded the ``cancel-work-orders`` patch."""
    n = 0
    async for event in handle.fetch_history_events():
        if event.HasField("marker_recorded_event_attributes"):
            n += b"cancel-work-orders" in event.marker_recorded_event_attributes.SerializeToString()
    return n


async def test_renegotiating_cancels_each_sent_work_order_once(amends, webhook_sink):
    replacement = {"kind": "replacement", "description": "a new tent, size L"}
    key = await agreed(amends, [replacement, {"kind": "redo", "description": "re-stitch the old tent"},
                                {"kind": "waive_balance", "amount": usd(1_000), "invoice_reference": "INV-9"}])
    snap = await wait_for(amends, key, lambda s: [i.status for i in s.agreed_remedy.items]
                          == ["awaiting_confirmation", "awaiting_confirmation", "delivered"])
    [order] = [r for r in requests(webhook_sink, "/work-orders", key, "work_order.replacement")]
    # The redo is done before the renegotiation: it is not cancelled.
    await amends.confirm_fulfilment(key, FulfilmentConfirmation(by=AGENT, item_id="remedy-1/item-2", note="done"))

    renegotiate = RenegotiateInput(by=AGENT, reason="the customer moved abroad")
    snap = await amends.renegotiate(key, renegotiate, update_id="desk-renegotiate-1")
    assert snap.stage == Stage.NEEDS_GATHERED
    assert [i.status for i in snap.remedies[0].items] == ["cancelled", "delivered", "delivered"]
    snap = await wait_for(amends, key, lambda s: outcomes(s))

    # Exactly one signed cancellation, to the backend that got the order, under its own stable key.
    [cancel] = requests(webhook_sink, "/work-orders", key, CANCELLED)
    assert verify(WEBHOOK_SECRET, cancel.headers, cancel.raw)
    assert cancel.headers["X-Amends-Event"] == CANCELLED
    assert cancel.headers["Idempotency-Key"] == f"incident-{key}/remedy-1/item-1/cancel"
    assert cancel.body["idempotency_key"] == f"incident-{key}/remedy-1/item-1/cancel"
    data = cancel.body["data"]
    assert data["item_id"] == "remedy-1/item-1"
    assert data["work_order"] == order.headers["Idempotency-Key"] == f"incident-{key}/remedy-1/item-1"
    assert data["reference"] == snap.remedies[0].items[0].reference and data["reference"].startswith("ref-")
    assert data["item"] == replacement
    assert data["reason"] == "remedy #1 renegotiated: the customer moved abroad"
    assert [e.step for e in snap.timeline][-2:] == ["renegotiate", "work_order_cancelled"]
    answer = webhook_sink._references[cancel.headers["Idempotency-Key"]]  # the backend's reference for it
    assert outcomes(snap) == [("work_order_cancelled", "work_orders",
                               f"remedy-1/item-1: work order cancelled (order {data['reference']}, "
                               f"cancellation {answer})")]
    # Nothing for the delivered redo, nor for the balance billing already waived.
    assert [r.body["data"]["item_id"] for r in requests(webhook_sink, "/work-orders", key, CANCELLED)] \
        == ["remedy-1/item-1"]
    assert requests(webhook_sink, "/billing", key, CANCELLED) == []

    # The renegotiation retried with its update id: the same answer, no second cancellation.
    again = await amends.renegotiate(key, renegotiate, update_id="desk-renegotiate-1")
    assert [e.step for e in again.timeline].count("renegotiate") == 1
    await settled(amends.handle(key))
    assert len(requests(webhook_sink, "/work-orders", key, CANCELLED)) == 1

    # A second remedy, its work order sent and renegotiated in turn: its own cancellation, none again for the first.
    await agreed(amends, [{"kind": "redo", "description": "pitch the tent on site"}], number=2, key=key)
    await wait_for(amends, key, lambda s: s.agreed_remedy and s.agreed_remedy.number == 2
                   and s.agreed_remedy.items[0].status == "awaiting_confirmation")
    await amends.renegotiate(key, RenegotiateInput(by=AGENT, reason="no one can go on site"))
    snap = await wait_for(amends, key, lambda s: len(outcomes(s)) == 2)
    await settled(amends.handle(key))
    assert sorted(r.headers["Idempotency-Key"] for r in requests(webhook_sink, "/work-orders", key, CANCELLED)) == [
        f"incident-{key}/remedy-1/item-1/cancel", f"incident-{key}/remedy-2/item-1/cancel"]
    assert [o[0] for o in outcomes(snap)] == ["work_order_cancelled", "work_order_cancelled"]
    # The new commands sit behind a patch: the release's one marker (workflows/versions.py), none of their own.
    patches = [m for m in markers(await amends.handle(key).fetch_history()) if m.startswith("patch:")]
    assert patches == ["patch:release-2026-12"]
    await keep_history(amends.handle(key), "work_orders_cancelled")
    await keep_history(amends.handle(key), "work_orders_cancelled_in_lanes")  # with independent-channels


async def test_a_work_order_that_reached_no_backend_gets_no_cancellation(ts_env, settings, webhook_sink):
    async with worker_with(ts_env, settings, None) as amends:
        key = await agreed(amends, [{"kind": "replacement", "description": "a new tent"}])
        snap = await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "awaiting_confirmation")
        assert "webhook not configured" in last_entry(snap).detail
        snap = await amends.renegotiate(key, RenegotiateInput(by=AGENT, reason="out of stock"))
        assert snap.remedies[0].items[0].status == "cancelled"
        await settled(amends.handle(key))
        snap = await amends.snapshot(key)
        assert outcomes(snap) == []
        assert [r for r in webhook_sink.received if r.body.get("data", {}).get("incident") == f"incident-{key}"
                and r.body["event"] == CANCELLED] == []
        assert await patch_markers(amends.handle(key)) == 0


async def test_a_failed_work_order_gets_no_cancellation(ts_env, settings, webhook_sink):
    rejecting = f"/work-orders-{uuid.uuid4().hex[:6]}"
    webhook_sink.respond[rejecting] = (422, {"reason": "the replacement is out of stock"})
    async with worker_with(ts_env, settings, webhook_sink.url + rejecting) as amends:
        key = await agreed(amends, [{"kind": "replacement", "description": "a new tent"}])
        await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "failed")
        await amends.renegotiate(key, RenegotiateInput(by=AGENT, reason="out of stock"))
        await settled(amends.handle(key))
        assert outcomes(await amends.snapshot(key)) == []
        assert requests(webhook_sink, rejecting, key, CANCELLED) == []


async def test_too_late_to_cancel_is_recorded(ts_env, settings, webhook_sink):
    path = f"/work-orders-{uuid.uuid4().hex[:6]}"
    webhook_sink.respond_to[(path, CANCELLED)] = (409, {"reason": "already shipped with UPS 1Z999"})
    async with worker_with(ts_env, settings, webhook_sink.url + path) as amends:
        key = await agreed(amends, [{"kind": "replacement", "description": "a new tent"}])
        await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "awaiting_confirmation")
        await amends.renegotiate(key, RenegotiateInput(by=AGENT, reason="the customer wants money back"))
        snap = await wait_for(amends, key, lambda s: outcomes(s))
        assert outcomes(snap) == [("work_order_already_shipped", "work_orders",
                                   "remedy-1/item-1: too late to cancel, already shipped with UPS 1Z999")]
        [cancel] = requests(webhook_sink, path, key, CANCELLED)
        assert verify(WEBHOOK_SECRET, cancel.headers, cancel.raw)


async def test_a_cancellation_unanswered_after_retries_is_recorded(clock_env, settings, webhook_sink):
    path = f"/work-orders-{uuid.uuid4().hex[:6]}"
    webhook_sink.respond_to[(path, CANCELLED)] = (503, {"reason": "down for maintenance"})
    async with worker_with(clock_env, settings, webhook_sink.url + path, skipping=True) as amends:
        key = await agreed(amends, [{"kind": "replacement", "description": "a new tent"}])
        await wait_for(amends, key, lambda s: s.agreed_remedy.items[0].status == "awaiting_confirmation")
        await amends.renegotiate(key, RenegotiateInput(by=AGENT, reason="the customer wants money back"))
        # The retries back off to minutes apart: move the server's time on until they run out.
        for _ in range(20):
            snap = await amends.snapshot(key)
            if outcomes(snap):
                break
            await clock_env.sleep(timedelta(minutes=2))
        [(step, channel, detail)] = outcomes(snap)
        assert (step, channel) == ("work_order_cancel_failed", "work_orders")
        assert detail == ("remedy-1/item-1: cancellation failed, the backend may still do the work: unanswered after "
                          "every retry (last: work_orders answered 503)")
        # Every attempt carried the same key: the backend sees one cancellation, asked again.
        attempts = requests(webhook_sink, path, key, CANCELLED)
        assert len(attempts) == 10
        assert {r.headers["Idempotency-Key"] for r in attempts} == {f"incident-{key}/remedy-1/item-1/cancel"}

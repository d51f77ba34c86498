"""Stalled steps escalate by themselves, on durable timers ("do not hide")."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import AGENT, keep_history, recorded_search_attributes, report
from tests.workflows.test_guards import take
from workflows.client import AmendsClient
from workflows.contracts import ApologyInput
from workflows.stages import Stage


async def test_a_late_apology_escalates_up_the_ladder_and_stops_when_it_is_sent(clock_env, settings, mail_sink):
    amends = AmendsClient(clock_env.client, settings.task_queue)
    rep = report("pi_unused", severity="high")  # a high-severity apology is due within 1 h
    key = rep.incident_key
    snap = await amends.open_incident(rep)
    handle = amends.handle(key)
    assert snap.deadline.waiting_for == "apology"
    assert snap.deadline.due_at - snap.report.detected_at < timedelta(hours=1, minutes=1)

    await clock_env.sleep(timedelta(minutes=59))
    snap = await amends.snapshot(key)
    assert snap.escalation_level == 0 and mail_sink.to(rep.owner.email) == []

    await clock_env.sleep(timedelta(minutes=2))
    snap = await amends.snapshot(key)
    assert snap.escalation_level == 1
    assert snap.timeline[-1].step == "escalate" and "apology overdue by" in snap.timeline[-1].detail
    recorded = await recorded_search_attributes(handle)
    assert recorded["EscalationLevel"] == 1
    assert recorded["StageDeadline"] == snap.deadline.due_at

    # Each further hour climbs one level, up to the top, then the ladder stops.
    await clock_env.sleep(timedelta(hours=5))
    snap = await amends.snapshot(key)
    assert snap.escalation_level == 3
    assert [e.step for e in snap.timeline].count("escalate") == 3
    pages = mail_sink.to(rep.owner.email)
    assert [p["Subject"].split(":")[-1].strip() for p in pages] == [
        "apology overdue, level 1", "apology overdue, level 2", "apology overdue, level 3",
    ]
    assert all(f"incident-{key}" in p["Subject"] for p in pages)

    # Apologising stops the clock and starts the next stage's at level 0.
    snap = await amends.apologise(key, ApologyInput(by=AGENT))
    assert snap.stage == Stage.APOLOGISED and snap.escalation_level == 0
    assert snap.deadline.waiting_for == "customer's needs"
    assert (await recorded_search_attributes(handle))["EscalationLevel"] == 0
    await keep_history(handle, "escalated_apology")

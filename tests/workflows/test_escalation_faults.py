"""Escalation under faults: one channel down silences no other, nobody is left unpaged, the clock runs
whenever the company holds the next move.

Faults are real: the mail relay is a port where nothing listens (then a sink started on it), and every
page is counted at the receivers.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.support.factories import AGENT, paid_intent, report
from tests.support.history import keep_history
from tests.support.identity import Amends
from tests.support.mail import mail_to
from tests.support.policy import paging
from tests.support.servers import time_skipping
from tests.support.steps import STEP_INPUTS, agreed_refund, take, wait_for
from worker.mailsink import start_sink
from worker.processes import free_port
from workflows.inputs import RemedyProposal
from workflows.stages import Stage


async def test_with_the_mail_relay_down_pages_reach_slack_and_pagerduty_and_money_still_moves(
        settings, stripe, webhook_sink):
    port = free_port()  # the relay: nothing listens here for the first hours
    down = settings.model_copy(update={
        "sla_policy": paging(webhook_sink.url), "task_queue": f"amends-relay-down-{uuid.uuid4().hex[:6]}",
        "mail": settings.mail.model_copy(update={"port": port}),
    })
    async with time_skipping(down) as env:
        amends = Amends(env.client, down.task_queue, env=env)
        rep = report(None, severity="high")  # the apology is due in 1 h; levels at 0, +30 min, +1 h
        key = rep.incident_key
        await amends.open_incident(rep)
        other = report(await paid_intent(stripe, 8_000))
        await agreed_refund(amends, other, 3_000)
        await env.sleep(timedelta(hours=2, minutes=40))

        # Another incident's refund went through while every e-mail was failing.
        moved = await wait_for(amends, other.incident_key, lambda s: s.stage == Stage.FULFILLED)
        assert moved.refunded_total == 3_000
        snap = await amends.snapshot(key)
        assert snap.escalation_level == 3
        # Level 1 (the owner, by e-mail only) reached nobody: level 2 was paged at once, not 30 min later.
        early = [e for e in snap.timeline if e.step == "escalate_early"]
        assert [e.detail for e in early] == ["level 1 unreachable on every channel"]
        escalations = [e for e in snap.timeline if e.step == "escalate"]
        assert [round((e.at - escalations[0].at) / timedelta(minutes=1)) for e in escalations] == [0, 5, 90]
        # Slack (level 2) and PagerDuty (level 3) heard, each once, while the relay was down.
        slack = [r for r in webhook_sink.at("/slack") if f"incident-{key}" in r.body["text"]]
        pd = [r for r in webhook_sink.at("/pagerduty") if r.body["dedup_key"] == f"incident-{key}/detected"]
        assert len(slack) == 1 and "level 2" in slack[0].body["text"]
        assert len(pd) == 1 and pd[0].body["event_action"] == "trigger"

        # The relay comes back: every page's e-mail goes out, once each.
        controller, sink = start_sink("127.0.0.1", port)
        try:
            await env.sleep(timedelta(minutes=30))
            owner = await mail_to(sink, rep.owner.email, count=3)
            lead = await mail_to(sink, "lead@example.com", count=1)
            head = await mail_to(sink, "head@example.com", count=1)
            mine = [m for m in sink.messages if f"incident-{key}" in m["Message-ID"]]
            assert sorted(m["X-Amends-Notice"] for m in owner) == ["escalation", "warning", "warning"]
            assert len(lead) == len(head) == 1
            assert len(mine) == len({m["Message-ID"] for m in mine}) == 5
        finally:
            controller.stop()
        await keep_history(amends.handle(key), "relay_down_pages")
        await keep_history(amends.handle(key), "release_relay_down_pages")


async def test_without_an_owner_the_care_contact_gets_every_warning_and_page(settings, mail_sink):
    alone = settings.model_copy(update={"task_queue": f"amends-no-owner-{uuid.uuid4().hex[:6]}"})
    async with time_skipping(alone) as env:
        amends = Amends(env.client, alone.task_queue, env=env)
        rep = report(None, severity="high", owner=None)
        key = rep.incident_key
        await amends.open_incident(rep)
        await env.sleep(timedelta(hours=1, minutes=10))
        care = settings.mail.care.email
        mine = [m for m in await mail_to(mail_sink, care, count=3) if f"incident-{key}" in m["Message-ID"]]
        assert sorted(m["X-Amends-Notice"] for m in mine) == ["escalation", "warning", "warning"]
        snap = await amends.snapshot(key)
        pages = [e.detail for e in snap.timeline if e.step == "paged"]
        assert pages and all("nobody" not in p for p in pages)
        assert "level 1 page to Customer care by email to Customer care" in pages


async def test_an_over_limit_proposal_waiting_for_approval_escalates_on_time(settings):
    async with time_skipping(settings) as env:
        amends = Amends(env.client, settings.task_queue, env=env)
        rep = report("pi_unused", severity="high")  # an agreed remedy is due within 2 d of the needs
        key = rep.incident_key
        await amends.open_incident(rep)
        for step in ("apologise", "record_needs"):
            await take(amends, key, step)
        snap = await amends.propose_remedy(key, STEP_INPUTS["propose_remedy"])
        assert snap.clock.paused_since is not None  # the customer holds the next move
        await env.sleep(timedelta(days=1))
        # A bigger offer replaces it, and waits for a manager: the company holds the move, the clock runs.
        snap = await amends.propose_remedy(key, RemedyProposal(
            by=AGENT, items=[{"kind": "refund", "amount": {"amount": 6_000, "currency": "USD"}}]))
        assert snap.remedies[-1].needs_approval_from == "manager"
        assert snap.clock.paused_since is None and snap.deadline is not None
        assert timedelta(days=1) <= snap.paused_total < timedelta(days=1, minutes=1)
        await env.sleep(timedelta(days=2))
        snap = await wait_for(amends, key, lambda s: s.escalation_level >= 1)
        assert snap.stage == Stage.NEEDS_GATHERED
        await keep_history(amends.handle(key), "approval_waits_clock_runs")

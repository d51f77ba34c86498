"""SLA clocks: deadlines per stage and severity, business hours, pauses, warnings and the ladder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from activities.webhooks import verify
from tests.support.factories import AGENT, CUSTOMER, report
from tests.support.history import decoded_payloads, keep_history, recorded_search_attributes
from tests.support.identity import Amends
from tests.support.mail import mail_to
from tests.support.policy import ALL_CALENDAR, paging, policy
from tests.support.servers import WEBHOOK_SECRET, time_skipping
from tests.support.steps import STEP_INPUTS, last_entry, take
from workflows.inputs import ApologyInput, DeclineInput
from workflows.sla import BusinessHours, advance, elapsed

BERLIN = ZoneInfo("Europe/Berlin")


# ---------------------------------------------------------------- the business clock, as a function


def test_business_clock_skips_the_weekend_and_a_holiday_in_its_time_zone():
    hours = BusinessHours(timezone="Europe/Berlin", holidays=["2026-11-30"])  # Monday off
    friday_4pm = datetime(2026, 11, 27, 16, 0, tzinfo=BERLIN)
    due = advance(friday_4pm.astimezone(UTC), timedelta(hours=8), hours)
    # 1 h on Friday, nothing at the weekend or on the holiday, 7 h on Tuesday.
    assert due == datetime(2026, 12, 1, 16, 0, tzinfo=BERLIN)
    assert elapsed(friday_4pm, due, hours) == timedelta(hours=8)
    # Across the change to summer time the clock keeps local opening hours.
    before_dst = datetime(2027, 3, 26, 16, 30, tzinfo=BERLIN)
    assert advance(before_dst, timedelta(hours=1), hours) == datetime(2027, 3, 29, 9, 30, tzinfo=BERLIN)


def test_a_bad_policy_is_refused_with_the_field_and_the_rule():
    with pytest.raises(ValidationError, match="timezone: 'Mars/Olympus' is not an IANA time zone"):
        policy(business_hours__timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="deadlines.detected: no deadline for low"):
        policy(deadlines__detected={"critical": "15m", "high": "1h", "medium": "4h"})
    with pytest.raises(ValidationError, match="'team_leed' is not 'owner' or under"):
        policy(ladder__levels=[{"level": 1, "target": "team_leed", "after": "0m"}])
    with pytest.raises(ValidationError, match="warn_at: fractions must be between 0 and 1"):
        policy(warn_at=[0.5, 1.5])


# ---------------------------------------------------------------- on the time-skipping server


async def escalation_level(amends, key) -> int:
    return (await amends.snapshot(key)).escalation_level


async def test_each_severitys_apology_deadline_fires_on_time_and_not_before(settings):
    calendar = settings.model_copy(update={"sla_policy": policy(clocks=ALL_CALENDAR)})
    async with time_skipping(calendar) as env:
        amends = Amends(env.client, settings.task_queue, env=env)
        keys = {}
        for severity in ("critical", "high", "medium", "low"):
            rep = report(None, severity=severity)
            await amends.open_incident(rep)
            keys[severity] = rep.incident_key
        opened_at = await env.get_current_time()
        for severity, minutes in (("critical", 15), ("high", 60), ("medium", 240), ("low", 480)):
            snap = await amends.snapshot(keys[severity])
            assert snap.deadline.due_at - snap.clock.started_at == timedelta(minutes=minutes)
            await env.sleep(opened_at + timedelta(minutes=minutes - 1) - await env.get_current_time())
            assert await escalation_level(amends, keys[severity]) == 0, f"{severity} escalated early"
            await env.sleep(timedelta(minutes=2))
            snap = await amends.snapshot(keys[severity])
            assert snap.escalation_level == 1, severity
            fired = next(e for e in snap.timeline if e.step == "escalate")
            assert abs(fired.at - snap.deadline.due_at) < timedelta(seconds=1), severity


async def test_business_hours_deadline_lands_after_the_weekend_and_holiday(settings):
    holiday_policy = policy(business_hours__closures=["2026-11-30", "2026-12-07"],
                            business_hours__timezone="Europe/Berlin")
    async with time_skipping(settings.model_copy(update={"sla_policy": holiday_policy})) as env:
        amends = Amends(env.client, settings.task_queue, env=env)
        now = (await env.get_current_time()).astimezone(BERLIN)
        days = (4 - now.weekday()) % 7 or 7  # the next Friday
        friday = datetime.combine(now.date() + timedelta(days=days), datetime.min.time(), BERLIN).replace(hour=16)
        await env.sleep(friday - now)
        rep = report(None, severity="low")  # 8 business hours to apologise
        snap = await amends.open_incident(rep)
        snap = await amends.snapshot(rep.incident_key)
        monday = friday.date() + timedelta(days=3)
        assert monday.isoformat() in ("2026-11-30", "2026-12-07")  # the configured holiday
        expected = datetime.combine(monday + timedelta(days=1), datetime.min.time(), BERLIN).replace(hour=16)
        assert snap.clock.kind == "business"
        # Opened a few milliseconds after 16:00 on Friday, due as many after 16:00 on Tuesday.
        assert abs(snap.deadline.due_at - expected) < timedelta(seconds=1)
        await env.sleep(expected - timedelta(minutes=1) - await env.get_current_time())
        assert await escalation_level(amends, rep.incident_key) == 0
        await env.sleep(timedelta(minutes=2))
        assert await escalation_level(amends, rep.incident_key) == 1


async def test_time_waiting_on_the_customer_is_not_counted(clock_env, settings):
    amends = Amends(clock_env.client, settings.task_queue, env=clock_env)
    rep = report(None, severity="high")  # agreeing a remedy may take 2 d
    key = rep.incident_key
    await amends.open_incident(rep)
    for step in ("apologise", "record_needs"):
        await take(amends, key, step)
    started = (await amends.snapshot(key)).clock.started_at
    await clock_env.sleep(timedelta(hours=12))
    snap = await amends.propose_remedy(key, STEP_INPUTS["propose_remedy"])
    assert snap.clock.paused_since is not None and snap.deadline is None
    await clock_env.sleep(timedelta(days=3))  # the customer takes three days to answer
    snap = await amends.snapshot(key)
    assert snap.escalation_level == 0 and "clock paused" in last_entry(snap).detail
    assert "StageDeadline" not in await recorded_search_attributes(amends.handle(key))
    snap = await amends.decline_remedy(key, DeclineInput(by=CUSTOMER, reason="I want the money back", remedy=1))
    assert snap.clock.paused_since is None
    assert timedelta(days=3) <= snap.paused_total < timedelta(days=3, minutes=1)
    # 12 h were used before the pause: 36 h are left from the answer.
    assert snap.deadline.due_at - started - snap.paused_total == timedelta(days=2)
    await clock_env.sleep(timedelta(hours=35, minutes=59))
    assert await escalation_level(amends, key) == 0
    await clock_env.sleep(timedelta(minutes=2))  # level 2 would follow 30 min later
    assert await escalation_level(amends, key) == 1


async def test_warnings_then_the_ladder_with_repeats_then_silence(settings, mail_sink, webhook_sink):
    base = webhook_sink.url
    async with time_skipping(settings.model_copy(update={"sla_policy": paging(base)})) as env:
        amends = Amends(env.client, settings.task_queue, env=env)
        rep = report(None, severity="high")  # apology due in 1 h, calendar clock
        key = rep.incident_key
        await amends.open_incident(rep)
        start = (await amends.snapshot(key)).clock.started_at
        await env.sleep(timedelta(hours=8))
        snap = await amends.snapshot(key)
        events = [(e.step, e.at - start) for e in snap.timeline if e.step in ("warning", "escalate")]
        m = timedelta(minutes=1)
        assert [(step, round(t / m)) for step, t in events] == [
            ("warning", 30), ("warning", 45),                           # 50 % and 75 % of the hour
            ("escalate", 60), ("escalate", 90), ("escalate", 150),      # levels 1, 2, 3 at 0, +30 min, +1 h
            ("escalate", 270), ("escalate", 300), ("escalate", 360),    # one repeat, 2 h after the last level
        ]
        assert snap.escalation_level == 3
        details = [e.detail for e in snap.timeline if e.step == "escalate"]
        assert details[1] == "apology overdue by 30 min: escalated to level 2 (team_lead)"
        assert details[3].endswith("level 1 (owner, repeat 1)")

        # Pages reached their people by email ...
        owner_mail = await mail_to(mail_sink, rep.owner.email, count=4)
        assert [m["X-Amends-Notice"] for m in owner_mail] == ["warning", "warning", "escalation", "escalation"]
        assert "apology overdue, level 1" in owner_mail[2]["Subject"]
        assert len(await mail_to(mail_sink, "lead@example.com", count=2)) >= 2
        # ... and by signed webhooks in Slack's and PagerDuty's formats.
        slack = [r for r in webhook_sink.at("/slack") if f"incident-{key}" in r.body["text"]]
        assert len(slack) == 2 and all(verify(WEBHOOK_SECRET, r.headers, r.raw) for r in slack)
        assert slack[0].body["text"].startswith(":rotating_light: incident-")
        assert slack[0].body["blocks"][0]["type"] == "section"
        pd = [r for r in webhook_sink.at("/pagerduty") if r.body["dedup_key"].startswith(f"incident-{key}/")]
        assert len(pd) == 2 and all(verify(WEBHOOK_SECRET, r.headers, r.raw) for r in pd)
        assert pd[0].body["routing_key"] == "R0UT1NGKEY" and pd[0].body["event_action"] == "trigger"
        # One PagerDuty incident for the stage: the repeat updates it rather than opening another.
        assert {r.body["dedup_key"] for r in pd} == {f"incident-{key}/detected"}
        assert len({r.headers["Idempotency-Key"] for r in pd}) == 2  # still two distinct pages
        assert pd[0].body["payload"]["severity"] == "error" and pd[0].body["payload"]["source"] == "amends"

        # The ladder has run out: nothing more, and nothing after the stage moves on.
        pages = len(mail_sink.messages)
        await env.sleep(timedelta(hours=3))
        assert len(mail_sink.messages) == pages
        snap = await amends.apologise(key, ApologyInput(by=AGENT))
        assert snap.escalation_level == 0 and snap.clock.waiting_for == "customer's needs"
        await env.sleep(timedelta(hours=5))  # the needs clock (1 d) has not warned yet
        # The step is taken: PagerDuty's incident is resolved under the same key, Slack hears it is done.
        pd = [r for r in webhook_sink.at("/pagerduty") if r.body["dedup_key"].startswith(f"incident-{key}/")]
        assert [r.body["event_action"] for r in pd] == ["trigger", "trigger", "resolve"]
        assert pd[-1].body == {"routing_key": "R0UT1NGKEY", "event_action": "resolve",
                               "dedup_key": f"incident-{key}/detected"}
        slack = [r for r in webhook_sink.at("/slack") if f"incident-{key}" in r.body["text"]]
        assert slack[-1].body["text"] == f":white_check_mark: incident-{key}: apology done; resolved"
        assert len(slack) == 3
        after = [e for e in (await amends.snapshot(key)).timeline if e.step in ("warning", "escalate")]
        assert len(after) == len(events)
        recorded = await recorded_search_attributes(amends.handle(key))
        assert recorded["EscalationLevel"] == 0
        await keep_history(amends.handle(key), "escalated_apology")
        await keep_history(amends.handle(key), "escalated_apology_resolved")
        await keep_history(amends.handle(key), "release_escalated_apology_resolved")
        # The pages reached Slack and PagerDuty, yet neither the webhook URLs nor the routing key are in the
        # history: the incident recorded its targets by name, and the worker resolved them when it sent.
        recorded = decoded_payloads((await amends.handle(key).fetch_history()).to_json())
        assert "R0UT1NGKEY" not in recorded and f"{base}/slack" not in recorded and f"{base}/pagerduty" not in recorded
        assert '"team_lead"' in recorded
        await keep_history(amends.handle(key), "escalated_without_secrets")


async def test_a_business_clock_pauses_and_resumes_in_business_time(settings):
    async with time_skipping(settings) as env:
        amends = Amends(env.client, settings.task_queue, env=env)
        now = (await env.get_current_time()).astimezone(BERLIN)
        days = (0 - now.weekday()) % 7 or 7  # the next Monday, 10:00 in Berlin
        monday = datetime.combine(now.date() + timedelta(days=days), datetime.min.time(), BERLIN).replace(hour=10)
        await env.sleep(monday - now)
        rep = report(None, severity="medium")  # business clock; remedy within 3 d = 24 business hours
        key = rep.incident_key
        await amends.open_incident(rep)
        for step in ("apologise", "record_needs"):
            await take(amends, key, step)
        await env.sleep(timedelta(hours=2))                     # 2 business hours used (10:00-12:00)
        await amends.propose_remedy(key, STEP_INPUTS["propose_remedy"])
        await env.sleep(timedelta(days=1))                      # Tuesday 12:00: the customer answers
        snap = await amends.decline_remedy(key, DeclineInput(by=CUSTOMER, reason="not enough", remedy=1))
        snap = await amends.snapshot(key)
        assert abs(snap.clock.consumed - timedelta(hours=2)) < timedelta(seconds=1)
        # 22 business hours from Tuesday 12:00: 5 h Tuesday, 8 h Wednesday, 8 h Thursday, 1 h Friday.
        friday_10 = monday + timedelta(days=4)
        assert abs(snap.deadline.due_at - friday_10) < timedelta(seconds=2)
        await keep_history(amends.handle(key), "business_clock_decline")
        await keep_history(amends.handle(key), "release_business_clock_decline")

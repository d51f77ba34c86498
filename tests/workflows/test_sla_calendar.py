"""The business calendar on the time-skipping server: the worker's default policy, as an incident records it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support.codec import CODEC, data_converter
from tests.support.factories import report
from tests.support.identity import Amends
from tests.support.servers import time_skipping
from workflows.payloads import Setup
from workflows.sla import SlaPolicy

BERLIN = ZoneInfo("Europe/Berlin")


def next_23_december_on_a_weekday(today: date) -> date:
    year = today.year if today < date(today.year, 12, 23) else today.year + 1
    while date(year, 12, 23).weekday() > 3:  # Monday to Thursday: the next day is a working day but for the calendar
        year += 1
    return date(year, 12, 23)


async def recorded_policy(handle) -> SlaPolicy:
    history = await handle.fetch_history()
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            details = event.marker_recorded_event_attributes.details
            if "result" in details and b"set_up_incident" in CODEC.open(details["data"].payloads[0]).data:
                [setup] = await data_converter.decode(list(details["result"].payloads), [Setup])
                return setup.policy
    raise AssertionError("no set_up_incident marker in the history")


async def test_a_low_severity_apology_waits_out_christmas_on_the_default_calendar(settings):
    async with time_skipping(settings) as env:
        amends = Amends(env.client, settings.task_queue, env=env)
        now = (await env.get_current_time()).astimezone(BERLIN)
        eve = next_23_december_on_a_weekday(now.date())
        await env.sleep(datetime.combine(eve, datetime.min.time(), BERLIN).replace(hour=16) - now)
        rep = report(None, severity="low")  # 8 business hours to apologise
        await amends.open_incident(rep)
        snap = await amends.snapshot(rep.incident_key)
        # 1 h on 23 December; 24 December (the company's), 25 and 26 (public holidays) and the
        # weekend closed; 7 h on the next working day.
        resume = eve + timedelta(days=4)
        while resume.weekday() > 4:
            resume += timedelta(days=1)
        expected = datetime.combine(resume, datetime.min.time(), BERLIN).replace(hour=16)
        assert snap.clock.kind == "business"
        assert abs(snap.deadline.due_at - expected) < timedelta(seconds=1)
        # The incident recorded the calendar it was measured on, as dates: the worker's
        # year before through two after (a later year is added when the clock reaches it).
        hours = (await recorded_policy(amends.handle(rep.incident_key))).business_hours
        year = datetime.now(UTC).year
        assert (hours.country, hours.subdivision, hours.calendar_years) == ("DE", "BE", (year - 1, year + 2))
        assert {date(year, 12, 25), date(year + 2, 12, 26)} <= set(hours.public_holidays)
        assert hours.annual_closures == ["12-24", "12-31"]
        await env.sleep(expected - timedelta(minutes=1) - await env.get_current_time())
        assert (await amends.snapshot(rep.incident_key)).escalation_level == 0
        await env.sleep(timedelta(minutes=2))
        assert (await amends.snapshot(rep.incident_key)).escalation_level == 1

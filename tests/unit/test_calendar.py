"""Business calendars that don't run out: public holidays from the policy's country, expanded when it is loaded.

The clock is asked through the same functions its activities call, with the
policy as the worker loads it (``load_policy``) or as an incident records it
(``load_sla_policy``).
"""

from __future__ import annotations

import json
from base64 import b64decode
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from activities.clock import CalendarError, ClockActivities, advance_on_calendar, elapsed_on_calendar
from tests.support.history import HISTORIES
from worker.config import DEFAULT_SLA_POLICY, load_policy
from workflows.sla import AdvanceRequest, BusinessHours, ElapsedRequest, OutsideCalendar, SlaPolicy, advance, elapsed

BERLIN = ZoneInfo("Europe/Berlin")
EIGHT_HOURS = timedelta(hours=8)  # one working day of 09:00-17:00


def at(day: str, hour: int) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), BERLIN).replace(hour=hour)


def due(hours: BusinessHours, start: datetime, work: timedelta = EIGHT_HOURS) -> datetime:
    return advance(start.astimezone(UTC), work, hours).astimezone(BERLIN)


@pytest.fixture(scope="module")
def loaded() -> BusinessHours:
    """The default policy's business hours as the worker loads them on 1 July 2026."""
    return load_policy(today=date(2026, 7, 1)).business_hours


def test_the_default_policy_holds_berlins_public_holidays_for_the_years_around_its_load(loaded):
    assert (loaded.country, loaded.subdivision) == ("DE", "BE")
    assert loaded.calendar_years == (2025, 2028)
    for day in ("2027-03-26", "2027-03-29", "2027-05-01", "2027-10-03",  # Good Friday, Easter Monday, 1 May, 3 Oct
                "2028-04-14", "2028-04-17", "2028-05-01", "2028-10-03",
                "2028-06-17"):  # Berlin's one-off holiday (holidays>=0.60)
        assert date.fromisoformat(day) in loaded.public_holidays, day
    # The company's own days on top, every year.
    assert loaded.closed(date(2027, 12, 24)) and loaded.closed(date(2031, 12, 31))


@pytest.mark.parametrize(("start", "expected"), [
    # Thursday before Easter 2027, 16:00: 1 h, then Good Friday, the weekend and Easter Monday pass; 7 h on Tuesday.
    ("2027-03-25", "2027-03-30"),
    ("2028-04-13", "2028-04-18"),
    # Friday before 1 May 2028 (a Monday): 1 h, then the weekend and May Day; 7 h on Tuesday.
    ("2028-04-28", "2028-05-02"),
    # 3 October 2028 is a Tuesday.
    ("2028-10-02", "2028-10-04"),
])
def test_the_default_business_clock_skips_good_friday_easter_and_may_day_in_2027_and_2028(loaded, start, expected):
    opened = at(start, 16)
    assert due(loaded, opened) == at(expected, 16)
    assert elapsed(opened, at(expected, 16), loaded) == EIGHT_HOURS
    # A day's clock: what the old hand-written list counted as working hours.
    assert elapsed(at(start, 9), at(expected, 9), loaded) == EIGHT_HOURS


def test_may_day_2027_is_skipped_by_a_clock_open_on_saturdays(loaded):
    # 1 May 2027 is a Saturday: a business open on Saturdays still closes for it.
    hours = loaded.model_copy(update={"weekly": {**loaded.weekly, "sat": "09:00-17:00"}})
    assert due(hours, at("2027-04-30", 16)) == at("2027-05-03", 16)
    assert due(hours, at("2027-04-23", 16)) == at("2027-04-24", 16)  # an ordinary Saturday counts


async def test_the_incidents_clock_activities_skip_the_holidays_of_the_policy_they_record():
    clock = ClockActivities(load_policy())
    recorded = (await clock.load_sla_policy()).business_hours
    this_year = datetime.now(UTC).year
    assert recorded.calendar_years == (this_year - 1, this_year + 2)
    start = at("2028-04-13", 16).astimezone(UTC)
    [when] = await clock.business_clock_advance(AdvanceRequest(hours=recorded, start=start, offsets=[EIGHT_HOURS]))
    assert when == at("2028-04-18", 16)
    used = await clock.business_clock_elapsed(ElapsedRequest(hours=recorded, start=start, end=when))
    assert used == EIGHT_HOURS
    # A worker that runs for years hands each year's incidents their own window, no longer.
    assert clock.policy_for(date(2030, 3, 1)).business_hours.calendar_years == (2029, 2032)
    assert min(clock.policy_for(date(2030, 3, 1)).business_hours.public_holidays) == date(2029, 1, 1)


def test_the_default_policy_is_right_in_any_year(loaded):
    # Good Friday 2031 is 11 April, Easter Monday 14 April; 1 May 2031 a Thursday.
    opened_2031 = load_policy(today=date(2031, 2, 3)).business_hours
    assert opened_2031.calendar_years == (2030, 2033)
    assert due(opened_2031, at("2031-04-10", 16)) == at("2031-04-15", 16)
    assert due(opened_2031, at("2031-04-30", 16)) == at("2031-05-02", 16)
    # An incident opened in 2026 whose clock still runs in 2031: the plain clock refuses to
    # guess, the clock activities add the year's calendar.
    with pytest.raises(OutsideCalendar, match="2031"):
        advance(at("2031-04-10", 16), EIGHT_HOURS, loaded)
    assert advance_on_calendar(at("2031-04-10", 16), EIGHT_HOURS, loaded) == at("2031-04-15", 16)
    assert elapsed_on_calendar(at("2031-04-10", 9), at("2031-04-15", 9), loaded) == EIGHT_HOURS
    # ... and across a year's end beyond the window: Monday 23 Dec 2030, 1 h; 24-26 Dec closed;
    # 27 and 30 Dec, 16 h; 31 Dec and 1 Jan closed; 2 Jan, 8 h; 7 h on Friday 3 Jan 2031.
    assert advance_on_calendar(at("2030-12-23", 16), EIGHT_HOURS * 4, loaded) == at("2031-01-03", 16)


def test_elapsed_up_to_the_windows_end_needs_no_later_year(loaded):
    assert elapsed(at("2028-12-29", 9), at("2028-12-29", 17), loaded) == EIGHT_HOURS


def write_policy(tmp_path, **business_hours) -> str:
    text = DEFAULT_SLA_POLICY.read_text()
    for field, value in business_hours.items():
        old = next(line for line in text.splitlines() if line.startswith(f"{field} = "))
        text = text.replace(old, f"{field} = {json.dumps(value)}" if value is not None else "")
    path = tmp_path / "sla.toml"
    path.write_text(text)
    return str(path)


def test_an_unknown_country_or_subdivision_is_refused_at_load_naming_the_field(tmp_path):
    with pytest.raises(CalendarError, match="business_hours.country: 'XX' is not a country"):
        load_policy(write_policy(tmp_path, country="XX"))
    with pytest.raises(CalendarError, match="business_hours.subdivision: 'ZZ' is not a subdivision of 'DE'; known: BB, BE"):
        load_policy(write_policy(tmp_path, subdivision="ZZ"))
    with pytest.raises(ValidationError, match="subdivision: names a region of a country; set country too"):
        load_policy(write_policy(tmp_path, country=None))
    with pytest.raises(ValidationError, match="annual_closures: '13-01' is not a day of the year"):
        load_policy(write_policy(tmp_path, annual_closures=["13-01"]))
    # A worker handed such a policy another way refuses to start.
    bad = load_policy().model_copy(deep=True)
    bad.business_hours.country = "Atlantis"
    with pytest.raises(CalendarError, match="business_hours.country"):
        ClockActivities(bad)
    # Another country and region of the calendar loads.
    us = load_policy(write_policy(tmp_path, country="US", subdivision="CA"), today=date(2027, 1, 1)).business_hours
    assert date(2027, 7, 5) in us.public_holidays  # 4 July 2027 is a Sunday: observed on Monday


def recorded_policies() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(HISTORIES.glob("*.json")):
        for event in json.loads(path.read_text())["events"]:
            marker = event.get("markerRecordedEventAttributes")
            if not marker or "data" not in marker.get("details", {}):
                continue
            data = json.loads(b64decode(marker["details"]["data"]["payloads"][0]["data"]))
            if data.get("activity_type") == "load_sla_policy":
                found.append((path.stem, json.loads(b64decode(marker["details"]["result"]["payloads"][0]["data"]))))
    return found


def test_policies_recorded_before_calendars_still_decode_and_keep_their_hand_written_days():
    recorded = recorded_policies()
    assert len(recorded) >= 5
    for name, data in recorded:
        if "country" in data["business_hours"]:
            continue  # recorded since calendars came in
        hours = SlaPolicy.model_validate(data).business_hours
        listed = [date.fromisoformat(d) for d in data["business_hours"].get("holidays", [])]
        assert hours.closures == listed, name
        assert hours.country is None and hours.calendar_years is None
        # No calendar named: the hand-written days are the whole story, in any year.
        assert elapsed(at("2035-01-01", 0), at("2035-01-08", 0), hours) > timedelta(0)

"""The SLA policy, its business calendar and the business-hours clock, as local activities.

All of them need the outside world (the worker's policy file, the time-zone
database, the ``holidays`` calendar), so the workflow asks for them through
activities: the answers are recorded in its history, and replays and restarts
reuse them rather than re-reading a file, a calendar or tz data that may have
changed.

Public holidays come from the ``holidays`` package by the policy's
``country`` and ``subdivision`` and are written into the policy as concrete
dates (``public_holidays`` for ``calendar_years``) when an incident loads it:
the year before the incident opens through two years after, which covers
every deadline of its recovery. The business clock never counts a day of an
unknown year as a working day: asked about one (an incident waiting years on
its customer), it adds that year's calendar here, in the activity.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import holidays
from temporalio import activity

from workflows.sla import AdvanceRequest, BusinessHours, ElapsedRequest, OutsideCalendar, SlaPolicy, advance, elapsed

T = TypeVar("T")

# The years of public holidays an incident records: from the year before it
# opens (a clock started on 31 December, read in another time zone) through two after.
YEARS_BEFORE, YEARS_AFTER = 1, 2


class CalendarError(ValueError):
    """A policy names a calendar the ``holidays`` package does not have; the message names the field."""


def check_calendar(hours: BusinessHours) -> None:
    """Refuse a country or subdivision the calendar does not know, naming the field."""
    if hours.country is None:
        return
    supported = holidays.list_supported_countries()
    if hours.country not in supported:
        raise CalendarError(
            f"business_hours.country: '{hours.country}' is not a country the holidays calendar knows; "
            "use an ISO 3166-1 alpha-2 code such as 'DE'"
        )
    if hours.subdivision is not None:
        try:
            holidays.country_holidays(hours.country, subdiv=hours.subdivision)
        except NotImplementedError:
            known = ", ".join(str(s) for s in supported[hours.country]) or "none"
            raise CalendarError(
                f"business_hours.subdivision: '{hours.subdivision}' is not a subdivision of "
                f"'{hours.country}'; known: {known}"
            ) from None


def public_holidays(hours: BusinessHours, first: int, last: int) -> list[date]:
    """The public holidays of ``hours``' country and subdivision from ``first`` through ``last``."""
    if hours.country is None:
        return [d for d in hours.public_holidays if first <= d.year <= last]
    check_calendar(hours)
    calendar = holidays.country_holidays(hours.country, subdiv=hours.subdivision, years=range(first, last + 1))
    return sorted(day for day in calendar if first <= day.year <= last)


def with_calendar(hours: BusinessHours, first: int, last: int) -> BusinessHours:
    """``hours`` holding the public holidays of at least ``first`` through ``last``.

    Years already held keep the dates they hold (what the incident recorded);
    only the years missing are read from the calendar.
    """
    if hours.country is None:
        return hours
    held = hours.calendar_years
    if held is not None:
        if held[0] <= first and last <= held[1]:
            return hours
        first, last = min(first, held[0]), max(last, held[1])
    added = [d for d in public_holidays(hours, first, last) if held is None or not held[0] <= d.year <= held[1]]
    return hours.model_copy(update={
        "public_holidays": sorted({*hours.public_holidays, *added}),
        "calendar_years": (first, last),
    })


def policy_as_of(policy: SlaPolicy, today: date) -> SlaPolicy:
    """The policy an incident opened ``today`` records: its business calendar expanded around ``today``.

    With a country, the window is exactly the years around ``today`` (a
    worker that runs for years does not carry an ever longer list).
    """
    hours = policy.business_hours
    if hours.country is None:
        return policy
    fresh = hours.model_copy(update={"public_holidays": [], "calendar_years": None})
    hours = with_calendar(fresh, today.year - YEARS_BEFORE, today.year + YEARS_AFTER)
    return policy.model_copy(update={"business_hours": hours})


def on_calendar(compute: Callable[[BusinessHours], T], hours: BusinessHours) -> T:
    """``compute(hours)``, adding the calendar of any year it reaches that ``hours`` does not hold."""
    while True:
        try:
            return compute(hours)
        except OutsideCalendar as gap:
            hours = with_calendar(hours, gap.year, gap.year)


def advance_on_calendar(start: datetime, work: timedelta, hours: BusinessHours) -> datetime:
    return on_calendar(lambda h: advance(start, work, h), hours)


def elapsed_on_calendar(start: datetime, end: datetime, hours: BusinessHours) -> timedelta:
    return on_calendar(lambda h: elapsed(start, end, h), hours)


class ClockActivities:
    def __init__(self, policy: SlaPolicy) -> None:
        check_calendar(policy.business_hours)  # a worker with a bad calendar refuses to start
        self.policy = policy
        self._by_year: dict[int, SlaPolicy] = {}

    def policy_for(self, today: date) -> SlaPolicy:
        if today.year not in self._by_year:
            self._by_year[today.year] = policy_as_of(self.policy, today)
        return self._by_year[today.year]

    @activity.defn(name="load_sla_policy")
    async def load_sla_policy(self) -> SlaPolicy:
        # The worker's date, not the workflow's: the calendar's window is
        # generous, and the clock adds any year it reaches beyond it.
        # Webhook URLs and routing keys stay in the worker: the page activities resolve them at send time.
        return self.policy_for(datetime.now(UTC).date()).recordable()

    @activity.defn(name="business_clock_advance")
    async def business_clock_advance(self, req: AdvanceRequest) -> list[datetime]:
        return [advance_on_calendar(req.start, offset, req.hours) for offset in req.offsets]

    @activity.defn(name="business_clock_elapsed")
    async def business_clock_elapsed(self, req: ElapsedRequest) -> timedelta:
        return elapsed_on_calendar(req.start, req.end, req.hours)

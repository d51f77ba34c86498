"""SLA policy: how long each stage may wait, on which clock, and who hears about it.

"Do not hide": a stalled step is the worst outcome, and the apology has the
tightest deadline (playbook). The policy is configuration — a TOML file
validated by these models (``worker/sla_default.toml`` documents every
field; ``AMENDS_SLA_POLICY`` points a deployment at its own). The worker
hands it to each incident when the incident opens (a local activity, so it
is recorded in the history): a policy change applies to new incidents and
never moves the deadlines of running ones.

Deadlines are measured on a calendar clock (24/7) or a business-hours clock
(time zone, weekly hours, public holidays, company closures); warnings fire
at fractions of the deadline; after a breach, an escalation ladder pages one
level after another and repeats a configured number of times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from workflows.inputs import ApprovalLimits, Severity
from workflows.stages import Stage

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(value: object) -> object:
    """'15m', '1h30m', '2d', '45s' (or anything pydantic takes: seconds, ISO 8601)."""
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            d, h, mi, s = (int(x) if x else 0 for x in m.groups())
            return timedelta(days=d, hours=h, minutes=mi, seconds=s)
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
ClockKind = Literal["calendar", "business"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutsideCalendar(Exception):
    """The business clock reached a year whose public holidays the policy does not hold.

    The clock never guesses that such a day is a working day: the worker's
    clock activity adds that year's calendar and asks again.
    """

    def __init__(self, year: int) -> None:
        super().__init__(f"the business calendar holds no public holidays for {year}")
        self.year = year


class BusinessHours(Strict):
    """When the business clock runs: weekly opening hours in a time zone, minus public holidays and closures.

    ``country`` and ``subdivision`` name a public calendar; the worker turns it
    into concrete dates (``public_holidays`` for ``calendar_years``) when it
    loads the policy, so an incident records the very days its clock skips and
    workflow code never consults a calendar.
    """

    timezone: str = "UTC"
    # day -> "HH:MM-HH:MM"; a day left out is closed.
    weekly: dict[str, str] = Field(default_factory=lambda: {d: "09:00-17:00" for d in DAYS[:5]})
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code of the country whose public holidays close the clock.",
    )
    subdivision: str | None = Field(
        default=None, description="Its state or region (e.g. 'BE' for Berlin in 'DE'); none: nationwide holidays only.",
    )
    # Policies and incidents recorded before public calendars listed every
    # closed day by hand under `holidays`; that name still reads as closures.
    closures: list[date] = Field(
        default_factory=list, validation_alias=AliasChoices("closures", "holidays"),
        description="Company-specific closed days (one-off dates) on top of the public holidays.",
    )
    annual_closures: list[str] = Field(
        default_factory=list, description="Company-specific closed days every year, as 'MM-DD' (e.g. '12-24').",
    )
    public_holidays: list[date] = Field(
        default_factory=list,
        description="The public holidays of calendar_years as dates, filled in from country and subdivision when "
                    "the policy is loaded (listed by hand when no country is given).",
    )
    calendar_years: tuple[int, int] | None = Field(
        default=None, description="First and last year (inclusive) whose public holidays public_holidays holds.",
    )

    @field_validator("annual_closures")
    @classmethod
    def _annual(cls, days: list[str]) -> list[str]:
        for day in days:
            try:
                date.fromisoformat(f"2000-{day}")  # a leap year: '02-29' is a day some years have
            except ValueError:
                raise ValueError(f"annual_closures: '{day}' is not a day of the year as MM-DD, e.g. '12-24'") from None
        return days

    @model_validator(mode="after")
    def _calendar(self) -> BusinessHours:
        if self.subdivision is not None and self.country is None:
            raise ValueError("subdivision: names a region of a country; set country too")
        if self.calendar_years is not None and self.calendar_years[0] > self.calendar_years[1]:
            raise ValueError("calendar_years: the first year comes after the last")
        return self

    def closed(self, day: date) -> bool:
        """Whether the clock stands still all ``day`` (OutsideCalendar: its year's public holidays are unknown)."""
        if day in self.closures or f"{day:%m-%d}" in self.annual_closures:
            return True
        if self.country is not None and not (
            self.calendar_years and self.calendar_years[0] <= day.year <= self.calendar_years[1]
        ):
            raise OutsideCalendar(day.year)
        return day in self.public_holidays

    @field_validator("weekly")
    @classmethod
    def _hours(cls, weekly: dict[str, str]) -> dict[str, str]:
        for day, span in weekly.items():
            if day not in DAYS:
                raise ValueError(f"weekly: '{day}' is not one of {', '.join(DAYS)}")
            m = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", span)
            if not m:
                raise ValueError(f"weekly.{day}: '{span}' is not HH:MM-HH:MM")
            start, end = time(int(m[1]), int(m[2])), time(int(m[3]) % 24, int(m[4]))
            if end <= start and span[6:] != "24:00":
                raise ValueError(f"weekly.{day}: '{span}' ends before it starts")
        if not weekly:
            raise ValueError("weekly: a business clock needs at least one open day")
        return weekly

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from temporalio import workflow

        # The time-zone database is read where the policy file is loaded (the
        # worker), never in workflow code: an incident decoding its recorded
        # policy a year later must not depend on today's tz data.
        if workflow.in_workflow():
            return zone
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: '{zone}' is not an IANA time zone such as Europe/Berlin") from None
        return zone

    def opening(self, day: str) -> tuple[time, time] | None:
        span = self.weekly.get(day)
        if span is None:
            return None
        start = time(int(span[0:2]), int(span[3:5]))
        end = time.max if span[6:] == "24:00" else time(int(span[6:8]), int(span[9:11]))
        return start, end


class PageTarget(Strict):
    """Someone the ladder pages: by email, and by a signed webhook in their tool's format."""

    name: str
    email: str | None = None
    webhook_url: str | None = None
    format: Literal["amends", "slack", "pagerduty"] = "amends"
    routing_key: str | None = Field(default=None, description="PagerDuty Events v2 integration key.")
    webhook: bool = Field(
        default=False,
        description="Set in the policy an incident records: the target has a webhook, whose URL and routing key "
                    "(secrets) the worker resolves when it sends and never writes into the history.",
    )

    @property
    def has_webhook(self) -> bool:
        return self.webhook_url is not None or self.webhook

    def recordable(self) -> PageTarget:
        """This target as an incident records it: that it has a webhook, not where or with which key."""
        return self.model_copy(update={"webhook_url": None, "routing_key": None, "webhook": self.has_webhook})


class Level(Strict):
    level: int = Field(ge=1, le=9)
    target: str = Field(description="'owner' (the incident's owner) or a name under [targets].")
    after: Duration = Field(description="Wait after the previous level (the first: after the breach).")


class Ladder(Strict):
    levels: list[Level] = Field(min_length=1)
    repeats: int = Field(default=1, ge=0, le=10, description="How many times the whole ladder runs again.")
    repeat_after: Duration = Field(default=timedelta(hours=1), description="Pause before a repeat starts.")

    @model_validator(mode="after")
    def _ordered(self) -> Ladder:
        if [lv.level for lv in self.levels] != sorted({lv.level for lv in self.levels}):
            raise ValueError("levels: numbers must be distinct and in increasing order")
        return self


def _calendar_always() -> dict[Severity, ClockKind]:
    return dict.fromkeys(Severity, "calendar")


class RemedyPolicy(Strict):
    """What may be promised without a higher role, set by the company (never by the report that opens an incident)."""

    approval_limits: ApprovalLimits = Field(default_factory=ApprovalLimits)
    # What can go round in circles is capped: each turn adds to the incident's history, and a customer who
    # has turned down twenty offers needs a person to call them, not a twenty-first e-mail.
    max_proposals: int = Field(default=20, ge=1, le=500, description="Remedies one incident may have proposed.")
    max_renegotiations: int = Field(default=5, ge=0, le=100, description="Times an agreed remedy may be reopened.")
    max_needs: int = Field(default=50, ge=1, le=500, description="Needs one incident may record.")
    goodwill_multiple: float = Field(
        default=1.0, ge=0, le=100,
        description="Coupons, waived balances, gifts and split shares of one incident together may reach this "
                    "multiple of the amount paid; beyond it only a director may promise or approve.",
    )


class SlaPolicy(Strict):
    # Per stage, per severity: how long the stage may take.
    deadlines: dict[Stage, dict[Severity, Duration]]
    # Per severity: which clock measures it (critical incidents run 24/7).
    clocks: dict[Severity, ClockKind] = Field(default_factory=lambda: _calendar_always())
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    warn_at: list[float] = Field(default_factory=lambda: [0.5, 0.75])
    ladder: Ladder
    targets: dict[str, PageTarget] = Field(default_factory=dict)
    pause_while_waiting_on_customer: bool = True
    remedies: RemedyPolicy = Field(default_factory=RemedyPolicy)


    def recordable(self) -> SlaPolicy:
        """The policy as an incident records it: escalation targets by name, without their secrets."""
        return self.model_copy(update={"targets": {k: t.recordable() for k, t in self.targets.items()}})

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, warn_at: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in warn_at):
            raise ValueError("warn_at: fractions must be between 0 and 1, e.g. [0.5, 0.75]")
        return sorted(set(warn_at))

    @model_validator(mode="after")
    def _complete(self) -> SlaPolicy:
        for stage, per in self.deadlines.items():
            missing = [s.value for s in Severity if s not in per]
            if missing:
                raise ValueError(f"deadlines.{stage.value}: no deadline for {', '.join(missing)}")
        for lv in self.ladder.levels:
            if lv.target != "owner" and lv.target not in self.targets:
                raise ValueError(f"ladder.levels[{lv.level}].target: '{lv.target}' is not 'owner' or under [targets]")
        return self

    def deadline(self, stage: Stage, severity: Severity) -> timedelta | None:
        per = self.deadlines.get(stage)
        return None if per is None else per[severity]

    def clock(self, severity: Severity) -> ClockKind:
        return self.clocks.get(severity, "calendar")


# What the incident waits for in each stage.
WAITING_FOR: dict[Stage, str] = {
    Stage.DETECTED: "apology",
    Stage.APOLOGISED: "customer's needs",
    Stage.NEEDS_GATHERED: "agreed remedy",
    Stage.REMEDY_AGREED: "fulfilment",
    Stage.FULFILLED: "closing",
    Stage.CLOSED: "post-mortem",
}


# ---------------------------------------------------------------- the business clock
#
# Pure functions of the policy; they need the time-zone database (and, past
# the years whose public holidays the policy holds, the calendar: they raise
# OutsideCalendar rather than count a possible holiday as a working day), so
# the workflow calls them through a local activity (their answers are recorded).


def _segments(
    start: datetime, hours: BusinessHours, until: datetime | None = None,
) -> Iterator[tuple[datetime, datetime]]:
    """Open intervals (UTC) from ``start`` on, in order (up to ``until``, when given)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(hours.timezone)
    local = start.astimezone(zone)
    day = local.date()
    for _ in range(3660):  # ten years of days: more than any deadline needs
        if until is not None and datetime.combine(day, time(0), zone) >= until:
            return
        opening = hours.opening(DAYS[day.weekday()])
        if opening and not hours.closed(day):
            open_at = datetime.combine(day, opening[0], zone)
            close_at = (
                datetime.combine(day + timedelta(days=1), time(0), zone)
                if opening[1] == time.max
                else datetime.combine(day, opening[1], zone)
            )
            open_at, close_at = max(open_at, start.astimezone(zone)), close_at
            if close_at > open_at:
                yield open_at.astimezone(start.tzinfo), close_at.astimezone(start.tzinfo)
        day += timedelta(days=1)
    raise ValueError("the business clock found no open hours within ten years")


def advance(start: datetime, work: timedelta, hours: BusinessHours) -> datetime:
    """The instant when ``work`` of business time has passed since ``start``."""
    left = work
    for open_at, close_at in _segments(start, hours):
        span = close_at - open_at
        if left <= span:
            return open_at + left if left > timedelta(0) else open_at
        left -= span
    raise AssertionError("unreachable")


def elapsed(start: datetime, end: datetime, hours: BusinessHours) -> timedelta:
    """Business time between ``start`` and ``end``."""
    total = timedelta(0)
    if end <= start:
        return total
    for open_at, close_at in _segments(start, hours, until=end):
        if open_at >= end:
            break
        total += min(close_at, end) - open_at
    return total


class AdvanceRequest(BaseModel):
    hours: BusinessHours
    start: datetime
    offsets: list[timedelta]


class ElapsedRequest(BaseModel):
    hours: BusinessHours
    start: datetime
    end: datetime

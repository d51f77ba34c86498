"""Side effects as typed values.

Update handlers never call activities: they change the state and queue one
of these; the run loop hands each to one dispatcher (``Playbook.perform``
in ``workflows/incident.py``), which matches on its type. A value the
dispatcher does not know is an error, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

CustomerNotice = Literal["apology", "proposal", "confirmation", "closing", "anniversary"]


@dataclass(frozen=True)
class NotifyCustomer:
    """Send the customer a notice (by email, and as a webhook for backends that message them)."""

    notice: CustomerNotice


@dataclass(frozen=True)
class DeliverRemedy:
    """Deliver every pending item of the agreed remedy with this number."""

    number: int


@dataclass(frozen=True)
class CancelWorkOrders:
    """Tell the backends to stop the work orders they were sent for a renegotiated remedy."""

    number: int
    reason: str


@dataclass(frozen=True)
class TellCrm:
    """Tell the CRM the account is red-flagged (internal only)."""

    reason: str


@dataclass(frozen=True)
class PlanBusinessClock:
    """Turn business-time offsets from the clock's start into instants (needs the time-zone database)."""

    fractions: tuple[float, ...]
    offsets: tuple[timedelta, ...]


@dataclass(frozen=True)
class ConsumeBusinessTime:
    """Add the business time between two instants to the clock (it was running, now it pauses)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class ResolvePages:
    """The step a stage's pages were about is taken: tell the paged webhooks (PagerDuty, Slack) it is resolved."""

    stage: str
    waiting_for: str
    targets: tuple[str, ...]


Effect = (
    NotifyCustomer | DeliverRemedy | CancelWorkOrders | TellCrm | PlanBusinessClock | ConsumeBusinessTime
    | ResolvePages
)

"""The SLA policy and the business-hours clock, as local activities.

Both need the outside world (the worker's policy file, the time-zone
database), so the workflow asks for them through activities: the answers are
recorded in its history, and replays and restarts reuse them rather than
re-reading a file that may have changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity

from workflows.sla import AdvanceRequest, ElapsedRequest, SlaPolicy, advance, elapsed


class ClockActivities:
    def __init__(self, policy: SlaPolicy) -> None:
        self.policy = policy

    @activity.defn(name="load_sla_policy")
    async def load_sla_policy(self) -> SlaPolicy:
        return self.policy

    @activity.defn(name="business_clock_advance")
    async def business_clock_advance(self, req: AdvanceRequest) -> list[datetime]:
        return [advance(req.start, offset, req.hours) for offset in req.offsets]

    @activity.defn(name="business_clock_elapsed")
    async def business_clock_elapsed(self, req: ElapsedRequest) -> timedelta:
        return elapsed(req.start, req.end, req.hours)

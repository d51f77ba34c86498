"""The incident's set-up: whom it trusts and the SLA policy it runs under, recorded in one local activity.

Two local activities, as incidents opened before the release ran them, wrote
two markers; one writes one, and costs one round of the SDK's local-activity
machinery instead of two.
"""

from __future__ import annotations

from temporalio import activity

from activities.clock import ClockActivities
from activities.identity import IdentityActivities
from workflows.payloads import Setup


class SetupActivities:
    def __init__(self, clock: ClockActivities, identity: IdentityActivities) -> None:
        self.clock = clock
        self.identity = identity

    @activity.defn(name="set_up_incident")
    async def set_up_incident(self) -> Setup:
        return Setup(trust=await self.identity.load_trust(), policy=await self.clock.load_sla_policy())

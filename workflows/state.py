"""Everything an incident knows, as one typed value.

``RecoveryState`` is internal: the workflow changes it, the ``snapshot``
query shows a view of it, and continue-as-new carries it whole into the
year of waiting, so the record of what was offered, approved and accepted
is never cut short. Backends never send it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from workflows.basics import Contract
from workflows.inputs import IncidentReport, PostmortemInput
from workflows.sla import SlaPolicy
from workflows.snapshot import ActionState, ClockState, MoneyMovement, Remedy, TimelineEntry
from workflows.stages import Stage
from workflows.trust import Trust


class RecoveryState(BaseModel):
    workflow_id: str
    report: IncidentReport
    stage: Stage = Stage.DETECTED
    phase: Literal["recovery", "anniversary"] = "recovery"
    stage_entered_at: datetime | None = Field(default=None, description="When the current stage began.")
    timeline: list[TimelineEntry] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    remedies: list[Remedy] = Field(default_factory=list)
    money_moved: list[MoneyMovement] = Field(default_factory=list)
    escalation_level: int = 0
    policy: SlaPolicy | None = Field(default=None, description="The SLA policy the incident opened under.")
    clock: ClockState | None = None
    paused_total: timedelta = timedelta(0)
    flags: list[str] = Field(default_factory=list)
    red_flagged: bool = False
    closed_at: datetime | None = None
    postmortem: PostmortemInput | None = None
    actions: list[ActionState] = Field(default_factory=list)
    anniversary_gift_code: str | None = None
    trust: Trust | None = Field(default=None, description="The issuers whose credentials this incident accepts.")
    used_credentials: list[str] = Field(default_factory=list, description="The jti of every credential used here.")
    release: str | None = Field(
        default=None, description="The release whose behaviour the incident's runs take (workflows/versions.py).",
    )
    answered: list[str] = Field(
        default_factory=list,
        description="The id of every update that took a step: a retry with the same id, even in the run after "
                    "the continue-as-new (where Temporal no longer knows it), gets an answer and changes nothing.",
    )


class ContinuedIncident(Contract):
    """The input of the incident's next run (continue-as-new); backends never send it.

    The anniversary run follows the post-mortem (``state.phase == "anniversary"``); a run whose history
    grew long continues in the middle of the recovery (``"recovery"``), carrying what the run kept in
    memory too: where each work order went, and which were cancelled.
    """

    state: RecoveryState
    work_orders_sent: dict[str, str] = Field(default_factory=dict)
    work_orders_cancelled: list[str] = Field(default_factory=list)

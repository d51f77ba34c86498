"""Typed search attributes: what ops filter on in the Temporal Web UI, and what ``amends report`` counts.

SQLite visibility (the dev server) allows 10 Keyword and 3 of each other type
per namespace; amends uses 5 Keyword, 3 Int (all three Int slots: none is
left), 1 Datetime and 1 Bool.

The first seven are the filters (``FILTERS``). The last three
(``REPORTED``) let ``amends report`` answer from one visibility listing
instead of a query per incident; none of them is personal data. They change
only together with a filter (the stage at the apology and the post-mortem,
the escalation level at a breach), so they ride in upserts the workflow makes
anyway and cost no history event of their own (``changed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from temporalio.common import SearchAttributeKey, TypedSearchAttributes

from workflows.inputs import IncidentReport
from workflows.recovery import Recovery
from workflows.state import RecoveryState

RECOVERY_STAGE = SearchAttributeKey.for_keyword("RecoveryStage")
SEVERITY = SearchAttributeKey.for_keyword("Severity")
INCIDENT_CATEGORY = SearchAttributeKey.for_keyword("IncidentCategory")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
STAGE_DEADLINE = SearchAttributeKey.for_datetime("StageDeadline")
RED_FLAGGED = SearchAttributeKey.for_bool("RedFlagged")
# For the report: the post-mortem's root_cause_category (unset until then), the stages whose
# deadline was missed (the snapshot's ``breaches``; 0 from the start), and the whole seconds from
# the report's detected_at to the first apology (unset until apologised).
ROOT_CAUSE = SearchAttributeKey.for_keyword("RootCause")
DEADLINES_BREACHED = SearchAttributeKey.for_int("DeadlinesBreached")
SECONDS_TO_APOLOGY = SearchAttributeKey.for_int("SecondsToApology")

Values = list[tuple[SearchAttributeKey[Any], Any]]


class _Timeline(Protocol):
    """A ``RecoveryState`` or a ``Snapshot``: the report and the timeline."""

    @property
    def report(self) -> IncidentReport: ...

    @property
    def timeline(self) -> Sequence[Any]: ...


def apologised_at(incident: _Timeline) -> datetime | None:
    """When the customer was first apologised to; None while they wait for it."""
    return next((e.at for e in incident.timeline if e.step == "apologise"), None)


def seconds_to_apology(incident: _Timeline) -> int | None:
    """Whole seconds from detection to the first apology; None while the customer waits for one."""
    at = apologised_at(incident)
    return None if at is None else (at - incident.report.detected_at) // timedelta(seconds=1)


def values(report: IncidentReport, stage: str, escalation_level: int = 0, red_flagged: bool = False,
           deadline: datetime | None = None, *, breaches: int = 0, to_apology: int | None = None,
           root_cause: str | None = None) -> Values:
    """Every attribute's value for an incident: what the client sets at start and the workflow upserts."""
    return [
        (RECOVERY_STAGE, str(stage)),
        (SEVERITY, str(report.severity)),
        (INCIDENT_CATEGORY, str(report.category)),
        (CUSTOMER_ID, report.customer.customer_id),
        (ESCALATION_LEVEL, escalation_level),
        (RED_FLAGGED, red_flagged),
        (STAGE_DEADLINE, deadline),  # None: no deadline now
        (DEADLINES_BREACHED, breaches),
        (SECONDS_TO_APOLOGY, to_apology),  # None: not apologised yet
        (ROOT_CAUSE, root_cause),  # None: no post-mortem yet
    ]


def values_of(state: RecoveryState) -> Values:
    """Every attribute's value for the incident in ``state``: what ``Playbook.publish`` upserts."""
    s = state
    return values(
        s.report, s.stage, s.escalation_level, s.red_flagged, s.clock.due_at if s.clock else None,
        breaches=Recovery(s).breaches(),
        to_apology=seconds_to_apology(s),
        root_cause=str(s.postmortem.root_cause_category) if s.postmortem else None,
    )


FILTERS = (RECOVERY_STAGE, SEVERITY, INCIDENT_CATEGORY, CUSTOMER_ID, ESCALATION_LEVEL, STAGE_DEADLINE, RED_FLAGGED)
REPORTED = (ROOT_CAUSE, DEADLINES_BREACHED, SECONDS_TO_APOLOGY)
ALL = FILTERS + REPORTED


def changed(attrs: Iterable[tuple[SearchAttributeKey[Any], Any]], held: TypedSearchAttributes) -> Values:
    """What an upsert carries: the attributes whose value differs from what the run ``held``.

    The report's attributes ride along only with a filter's change, never alone: a run that
    opened before they existed replays its history, where they were never upserted, and an
    upsert of them alone would be a command its history does not have. With a filter's change
    there is an upsert command either way and only its values differ, which replays.
    """
    moved = [(k, v) for k, v in attrs if held.get(k) != v]
    return moved if any(k in FILTERS for k, _ in moved) else []


# Names as the `temporal` CLI and the operator API spell the types.
CLI_TYPES = {
    "KEYWORD": "Keyword",
    "INT": "Int",
    "DATETIME": "Datetime",
    "BOOL": "Bool",
}


def cli_flags() -> list[str]:
    """``--search-attribute NAME=Type`` pairs for ``temporal server start-dev``."""
    out = []
    for key in ALL:
        out += ["--search-attribute", f"{key.name}={CLI_TYPES[key.indexed_value_type.name]}"]
    return out

"""Typed search attributes: what ops filter on in the Temporal Web UI.

SQLite visibility (the dev server) allows 10 Keyword and 3 of each other type
per namespace; amends uses 4 Keyword, 1 Int, 1 Datetime and 1 Bool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey

from workflows.inputs import IncidentReport

RECOVERY_STAGE = SearchAttributeKey.for_keyword("RecoveryStage")
SEVERITY = SearchAttributeKey.for_keyword("Severity")
INCIDENT_CATEGORY = SearchAttributeKey.for_keyword("IncidentCategory")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
STAGE_DEADLINE = SearchAttributeKey.for_datetime("StageDeadline")
RED_FLAGGED = SearchAttributeKey.for_bool("RedFlagged")


def values(report: IncidentReport, stage: str, escalation_level: int = 0, red_flagged: bool = False,
           deadline: datetime | None = None) -> list[tuple[SearchAttributeKey[Any], Any]]:
    """Every attribute's value for an incident: what the client sets at start and the workflow upserts."""
    return [
        (RECOVERY_STAGE, str(stage)),
        (SEVERITY, str(report.severity)),
        (INCIDENT_CATEGORY, str(report.category)),
        (CUSTOMER_ID, report.customer.customer_id),
        (ESCALATION_LEVEL, escalation_level),
        (RED_FLAGGED, red_flagged),
        (STAGE_DEADLINE, deadline),  # None: no deadline now
    ]


ALL = (RECOVERY_STAGE, SEVERITY, INCIDENT_CATEGORY, CUSTOMER_ID, ESCALATION_LEVEL, STAGE_DEADLINE, RED_FLAGGED)

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

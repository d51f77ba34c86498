"""Typed search attributes: what ops filter on in the Temporal Web UI.

SQLite visibility (the dev server) allows 10 Keyword and 3 of each other type
per namespace; amends uses 4 Keyword, 1 Int, 1 Datetime and 1 Bool.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

RECOVERY_STAGE = SearchAttributeKey.for_keyword("RecoveryStage")
SEVERITY = SearchAttributeKey.for_keyword("Severity")
INCIDENT_CATEGORY = SearchAttributeKey.for_keyword("IncidentCategory")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
STAGE_DEADLINE = SearchAttributeKey.for_datetime("StageDeadline")
RED_FLAGGED = SearchAttributeKey.for_bool("RedFlagged")

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

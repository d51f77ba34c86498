"""SLA policies for tests: the default policy with some fields changed."""

from __future__ import annotations

from worker.config import load_policy
from workflows.sla import SlaPolicy

DEFAULT = load_policy()
ALL_CALENDAR = {"critical": "calendar", "high": "calendar", "medium": "calendar", "low": "calendar"}


def policy(**changes) -> SlaPolicy:
    """The default policy with ``changes``; a nested field is named with ``__``: ``deadlines__detected=...``."""
    data = DEFAULT.model_dump(mode="json")
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return SlaPolicy.model_validate(data)

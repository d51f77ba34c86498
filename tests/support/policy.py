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


def paging(base: str) -> SlaPolicy:
    """The default policy with the team lead on Slack and the head of care on PagerDuty, both at ``base``."""
    return policy(targets={
        "team_lead": {"name": "Team lead", "email": "lead@example.com", "webhook_url": f"{base}/slack",
                      "format": "slack"},
        "head_of_care": {"name": "Head of care", "email": "head@example.com", "webhook_url": f"{base}/pagerduty",
                         "format": "pagerduty", "routing_key": "R0UT1NGKEY"},
    })

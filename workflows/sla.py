"""How long each stage may wait before it escalates ("do not hide").

The apology has the tightest deadline and tightens with severity (playbook:
"speed matters most at the start"). Deadlines are calendar durations here;
they are measured by durable workflow timers.
"""

from __future__ import annotations

from datetime import timedelta

from workflows.contracts import Severity
from workflows.stages import Stage

H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)

# What the incident waits for in each stage, and how long it may wait.
WAITING_FOR: dict[Stage, str] = {
    Stage.DETECTED: "apology",
    Stage.APOLOGISED: "customer's needs",
    Stage.NEEDS_GATHERED: "agreed remedy",
    Stage.REMEDY_AGREED: "fulfilment",
    Stage.FULFILLED: "closing",
    Stage.CLOSED: "post-mortem",
}

_BY_SEVERITY: dict[Stage, dict[Severity, timedelta]] = {
    Stage.DETECTED: {Severity.CRITICAL: 15 * M, Severity.HIGH: 1 * H, Severity.MEDIUM: 4 * H, Severity.LOW: 24 * H},
    Stage.APOLOGISED: {Severity.CRITICAL: 4 * H, Severity.HIGH: 1 * D, Severity.MEDIUM: 2 * D, Severity.LOW: 3 * D},
    Stage.NEEDS_GATHERED: {Severity.CRITICAL: 1 * D, Severity.HIGH: 2 * D, Severity.MEDIUM: 3 * D, Severity.LOW: 5 * D},
    Stage.REMEDY_AGREED: {Severity.CRITICAL: 2 * D, Severity.HIGH: 3 * D, Severity.MEDIUM: 5 * D, Severity.LOW: 7 * D},
    Stage.FULFILLED: {s: 2 * D for s in Severity},
    Stage.CLOSED: {s: 14 * D for s in Severity},
}

# Escalation climbs one level each time a deadline passes: owner, team lead,
# head of customer care.
MAX_ESCALATION_LEVEL = 3


def stage_deadline(stage: Stage, severity: Severity) -> timedelta | None:
    per = _BY_SEVERITY.get(stage)
    return None if per is None else per[severity]


def human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{max(seconds // 60, 0)} min"

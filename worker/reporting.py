"""Reading incidents back: the post-mortem as Markdown, and the summary of many incidents.

Pure functions (no Temporal, no clock) of a ``Snapshot``, or for the summary
of small per-incident rows (``IncidentRow``) that the CLI reads from the
visibility listing, so that the CLI only fetches and prints, and the tests
check the words and the numbers without a server.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from workflows.formatting import duration, money, utc
from workflows.inputs import SystemCondition
from workflows.names import name_pattern
from workflows.search import apologised_at, seconds_to_apology
from workflows.snapshot import Snapshot
from workflows.stages import Stage

NO_ROOT_CAUSE = "none yet"
# What an incident opened before the report's search attributes existed does not say (the report
# run with --visibility-only): its category or stage when it set none, its root cause after the
# post-mortem.
UNKNOWN = "unknown"

# The steps a post-mortem reader needs from the timeline: the playbook's
# milestones, the deadlines missed, and the follow-ups.
MILESTONES = (
    "detected", "apologise", "record_needs", "accept_remedy", "decline_remedy", "renegotiate", "fulfil", "close",
    "escalate", "record_postmortem", "complete_action", "action_overdue", "flag_account", "anniversary",
)

BLAMELESS = (
    "This review is blameless: it describes the conditions of the system that let the failure happen "
    "(process, tooling, communication, supplier), not the people who were there. "
    "Names of staff connected with the incident are replaced by \"our team\"."
)


class NoPostmortem(ValueError):
    """The incident has no post-mortem yet."""


# ================================================================ small facts of one incident


def time_to_apology(snap: Snapshot) -> timedelta | None:
    """From detection to the first apology; None while the customer waits for one."""
    at = apologised_at(snap)
    return None if at is None else at - snap.report.detected_at


def breached_deadlines(snap: Snapshot) -> int:
    """Stages whose deadline was missed: a stage escalated three times is one breach.

    The workflow counts them (``breaches``), across its continue-as-new; the
    timeline's ``escalate`` entries are the fallback for older snapshots.
    """
    return max(snap.breaches, len({e.stage for e in snap.timeline if e.step == "escalate"}))


def root_cause_category(snap: Snapshot) -> str:
    return str(snap.postmortem.root_cause_category) if snap.postmortem else NO_ROOT_CAUSE


def contact_text(contact) -> str:
    """``Ann Lee <ann@example.com>``, or the address alone when it is also the name."""
    return contact.email if contact.name == contact.email else f"{contact.name} <{contact.email}>"


def timeline_time(moment: datetime) -> str:
    """A time under a "(UTC)" heading: the zone is said once, in the heading."""
    return utc(moment, seconds=True).removesuffix(" UTC")


def _when(moment: datetime | None) -> str:
    return utc(moment) if moment else "—"


# ================================================================ the post-mortem as Markdown


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|") or "—"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def postmortem_markdown(snap: Snapshot) -> str:
    """The blameless post-mortem of one incident, as a Markdown document.

    Raises ``NoPostmortem`` when none has been recorded yet.
    """
    pm = snap.postmortem
    if pm is None:
        raise NoPostmortem(
            f"{snap.workflow_id} has no post-mortem yet (stage {snap.stage}); record it with "
            f"`amends incident postmortem {snap.report.incident_key} ...` once the incident is closed"
        )
    r = snap.report
    pattern = name_pattern(r.staff_involved, min_part=3)

    def clean(text: str) -> str:
        return pattern.sub("our team", text) if pattern else text

    currency = r.order.amount_paid.currency
    apology = time_to_apology(snap)
    recorded = next((e for e in snap.timeline if e.step == "record_postmortem"), None)
    out = [
        f"# Post-mortem: {snap.workflow_id} — {clean(r.what_happened)}",
        "",
        f"> {BLAMELESS}",
        "",
        "| | |",
        "|---|---|",
        f"| Incident | `{snap.workflow_id}` (key `{r.incident_key}`) |",
        (f"| Customer | {_cell(r.customer.customer_id)}, order {_cell(r.order.order_id)} "
         f"({money(r.order.amount_paid.amount, currency)} paid) |"),
        f"| Severity | {r.severity} |",
        f"| Category | {r.category.replace('_', ' ')} |",
        f"| Detected | {_when(r.detected_at)} |",
        f"| Apologised | {_when(apologised_at(snap))}"
        + (f" ({duration(apology)} after detection)" if apology is not None else "") + " |",
        f"| Closed | {_when(snap.closed_at)} |",
        f"| Stage | {snap.stage} ({snap.phase} phase) |",
        f"| Deadlines breached | {breached_deadlines(snap)} |",
    ]
    if recorded:
        out.append(f"| Post-mortem recorded | {_when(recorded.at)} by {_cell(recorded.by.name)} |")
    out += [
        "",
        "## What the customer experienced",
        "",
        clean(r.what_happened),
        "",
        f"Impact: {clean(r.impact)}",
        "",
        "## What happened (internal)",
        "",
        clean(pm.what_happened),
        "",
        "## Root cause",
        "",
        f"**{pm.root_cause_category}** — {clean(pm.root_cause)}",
        "",
        "## Contributing factors (conditions of the system)",
        "",
    ]
    if pm.contributing_factors:
        out += [f"- **{f.kind}**: {clean(f.condition)}" for f in pm.contributing_factors]
    else:
        out.append("None recorded.")
    out += ["", "## Preventive actions", ""]
    out += _table(
        ["id", "action", "owner", "due", "status", "completed at"],
        [[a.action_id, a.action, contact_text(a.owner), a.due.isoformat(), a.status,
          _when(a.completed_at)] for a in snap.actions],
    )
    done = sum(a.status == "done" for a in snap.actions)
    out += ["", f"{done} of {len(snap.actions)} done."]
    out += ["", "## Remedy", ""]
    out += [f"- {clean(line)}" for line in snap.remedy_summary] or ["No remedy was agreed."]
    out += [
        "",
        (f"Money refunded: {money(snap.refunded_total, currency)} of "
         f"{money(r.order.amount_paid.amount, currency)} paid."),
        "",
        "## Timeline (UTC)",
        "",
    ]
    out += _table(
        ["when", "step", "by", "detail"],
        [[timeline_time(e.at), e.step, f"{e.by.name} ({e.by.role})", clean(e.detail)]
         for e in snap.timeline if e.step in MILESTONES],
    )
    return "\n".join(out) + "\n"


# ================================================================ many incidents


def _ordered(counts: Counter, order: list[str] | None = None) -> dict[str, int]:
    if order is not None:
        known = [k for k in order if k in counts]
        return {k: counts[k] for k in known + sorted(k for k in counts if k not in order)}
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class IncidentRow:
    """What the summary needs of one incident: a row of ``report --json``.

    ``None`` where it is not known: an incident opened before the report's search attributes
    existed, read from visibility alone, says neither its time to apology nor its breaches.
    """

    workflow_id: str
    category: str
    root_cause_category: str  # a SystemCondition, NO_ROOT_CAUSE, or UNKNOWN
    stage: str
    phase: str
    apologised: bool
    time_to_apology_seconds: int | None  # None: not apologised, or not known
    breached_deadlines: int | None  # None: not known


APOLOGISED_STAGES = {s.value for s in Stage} - {Stage.DETECTED.value}
POSTMORTEM_STAGES = {Stage.POSTMORTEM_DONE.value, Stage.ANNIVERSARY.value}


def row_of(snap: Snapshot) -> IncidentRow:
    """An incident's row from its snapshot."""
    to_apology = seconds_to_apology(snap)
    return IncidentRow(
        workflow_id=snap.workflow_id, category=str(snap.report.category), root_cause_category=root_cause_category(snap),
        stage=str(snap.stage), phase=snap.phase, apologised=to_apology is not None,
        time_to_apology_seconds=to_apology, breached_deadlines=breached_deadlines(snap),
    )


def row_of_attributes(workflow_id: str, phase: str, category: str | None, stage: str | None,
                      root_cause: str | None, breaches: int | None, to_apology: int | None) -> IncidentRow:
    """An incident's row from its search attributes (``breaches`` None: it opened before the report's existed).

    The stage says whether the customer was apologised to and whether a post-mortem exists; an
    incident without the report's attributes leaves the time and the root cause unknown.
    """
    known = breaches is not None
    stage = stage or UNKNOWN
    apologised = to_apology is not None or stage in APOLOGISED_STAGES
    if root_cause is None:
        root_cause = NO_ROOT_CAUSE if known or stage not in POSTMORTEM_STAGES and stage != UNKNOWN else UNKNOWN
    return IncidentRow(
        workflow_id=workflow_id, category=category or UNKNOWN, root_cause_category=root_cause, stage=stage,
        phase=phase, apologised=apologised, time_to_apology_seconds=to_apology, breached_deadlines=breaches,
    )


def summarise(incidents: Iterable[IncidentRow | Snapshot]) -> dict:
    """Counts by category, root-cause category and stage; median time to apology; breached deadlines.

    The median counts only incidents apologised for whose time is known; an incident's breaches
    are the stages whose deadline it missed. What is not known is counted apart
    (``apology_time_unknown``, ``breaches_unknown``), never as a zero.
    """
    rows = [row_of(i) if isinstance(i, Snapshot) else i for i in incidents]
    times = [r.time_to_apology_seconds for r in rows if r.time_to_apology_seconds is not None]
    apologised = sum(r.apologised for r in rows)
    return {
        "incidents": len(rows),
        "by_category": _ordered(Counter(r.category for r in rows)),
        "by_root_cause_category": _ordered(
            Counter(r.root_cause_category for r in rows),
            [c.value for c in SystemCondition] + [NO_ROOT_CAUSE, UNKNOWN],
        ),
        "by_stage": _ordered(Counter(r.stage for r in rows), [s.value for s in Stage] + [UNKNOWN]),
        "apologised": apologised,
        "median_time_to_apology_seconds": statistics.median(times) if times else None,
        "apology_time_unknown": apologised - len(times),
        "breached_deadlines": sum(r.breached_deadlines or 0 for r in rows),
        "breaches_unknown": sum(r.breached_deadlines is None for r in rows),
        "rows": [asdict(r) for r in sorted(rows, key=lambda r: r.workflow_id)],
    }


def report_text(summary: dict) -> str:
    """The summary as a readable table."""
    out = [f"{summary['incidents']} incidents" + (f" since {summary['since']}" if summary.get("since") else "")]
    sections = [("by category", "by_category"), ("by root cause", "by_root_cause_category"), ("by stage", "by_stage")]
    labels = [k for _, key in sections for k in summary[key]]
    width = max([len(k) for k in labels] + [12])
    for title, key in sections:
        out += ["", title]
        out += [f"  {k.replace('_', ' '):<{width}}  {n:>5}" for k, n in summary[key].items()] or ["  (none)"]
    out += ["", "median time to apology  " + apology_line(summary),
            f"breached deadlines      {breaches_line(summary)}"]
    return "\n".join(out)


def apology_line(summary: dict) -> str:
    """``2 h  (1 of 3 apologised)``, saying how many apologies have no time known."""
    median = summary["median_time_to_apology_seconds"]
    unknown = summary.get("apology_time_unknown", 0)
    return ((duration(median) if median is not None else "—")
            + f"  ({summary['apologised']} of {summary['incidents']} apologised"
            + (f"; {unknown} of them without a recorded time" if unknown else "") + ")")


def breaches_line(summary: dict) -> str:
    unknown = summary.get("breaches_unknown", 0)
    return str(summary["breached_deadlines"]) + (f"  (not known for {unknown} incidents)" if unknown else "")

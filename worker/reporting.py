"""Reading incidents back: the post-mortem as Markdown, and the summary of many incidents.

Pure functions of ``Snapshot``s (no Temporal, no clock), so that the CLI
only fetches and prints, and the tests check the words and the numbers
without a server.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from workflows.formatting import duration, money, utc
from workflows.inputs import SystemCondition
from workflows.names import name_pattern
from workflows.snapshot import Snapshot
from workflows.stages import Stage

NO_ROOT_CAUSE = "none yet"

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


def apologised_at(snap: Snapshot) -> datetime | None:
    return next((e.at for e in snap.timeline if e.step == "apologise"), None)


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


def summarise(snaps: Iterable[Snapshot]) -> dict:
    """Counts by category, root-cause category and stage; median time to apology; breached deadlines.

    The median counts only incidents apologised for; an incident's breaches
    are the stages whose deadline it missed.
    """
    snaps = list(snaps)
    apologies = [t for t in (time_to_apology(s) for s in snaps) if t is not None]
    median = statistics.median(t.total_seconds() for t in apologies) if apologies else None
    return {
        "incidents": len(snaps),
        "by_category": _ordered(Counter(str(s.report.category) for s in snaps)),
        "by_root_cause_category": _ordered(
            Counter(root_cause_category(s) for s in snaps), [c.value for c in SystemCondition] + [NO_ROOT_CAUSE]
        ),
        "by_stage": _ordered(Counter(str(s.stage) for s in snaps), [s.value for s in Stage]),
        "apologised": len(apologies),
        "median_time_to_apology_seconds": median,
        "breached_deadlines": sum(breached_deadlines(s) for s in snaps),
        "rows": [
            {
                "workflow_id": s.workflow_id,
                "category": str(s.report.category),
                "root_cause_category": root_cause_category(s),
                "stage": str(s.stage),
                "phase": s.phase,
                "time_to_apology_seconds": t.total_seconds() if (t := time_to_apology(s)) is not None else None,
                "breached_deadlines": breached_deadlines(s),
            }
            for s in sorted(snaps, key=lambda s: s.workflow_id)
        ],
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
    median = summary["median_time_to_apology_seconds"]
    out += [
        "",
        "median time to apology  "
        + (duration(median) if median is not None else "—")
        + f"  ({summary['apologised']} of {summary['incidents']} apologised)",
        f"breached deadlines      {summary['breached_deadlines']}",
    ]
    return "\n".join(out)

"""``amends incident show``: one incident as a person reads it (or as JSON), and the line after each step."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from worker.cli.connection import CONTEXT, Connection
from worker.reporting import contact_text, timeline_time
from workflows.formatting import duration, money, utc
from workflows.snapshot import Snapshot, StepResult


def deadline_text(snap: Snapshot | StepResult, now: datetime | None = None) -> str:
    d = snap.deadline
    assert d is not None
    left = (d.due_at - (now or datetime.now(UTC))).total_seconds()
    when = f"due in {duration(left)}" if left >= 0 else f"overdue by {duration(left)}"
    return f"{d.waiting_for} {when} ({utc(d.due_at, seconds=True)})"


def summary_line(snap: Snapshot | StepResult) -> str:
    parts = []
    if snap.deadline:
        parts.append(deadline_text(snap))
    parts.append("next: " + (", ".join(snap.allowed_steps) or "nothing (the clock takes the next step)"))
    return "; ".join(parts)


def print_step_result(snap: Snapshot | StepResult) -> None:
    click.echo(f"{snap.workflow_id} {snap.stage}")
    click.echo(summary_line(snap))


@click.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="The whole snapshot as JSON (schema/snapshot.schema.json).")
@click.pass_context
def show(ctx: click.Context, key: str, as_json: bool) -> None:
    """Show an incident: stage, deadline, remedy, money, flags, next steps and the timeline."""
    conn: Connection = ctx.obj
    snap: Snapshot = conn.run(key, lambda amends: amends.snapshot(key))
    click.echo(snap.model_dump_json(indent=2) if as_json else render(snap))


@click.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True,
              help="The record's format (schema/snapshot.schema.json).")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file, not stdout.")
@click.pass_context
def export(ctx: click.Context, key: str, fmt: str, out: str | None) -> None:
    """Export an incident's whole record for archiving: timeline, needs, remedies and who proposed,
    approved and accepted them, money moved, post-mortem, the anniversary.

    Archive it before the namespace's retention removes the incident: the run after the
    continue-as-new carries the whole record, so one export holds everything.
    """
    conn: Connection = ctx.obj
    # A finished incident still answers (a worker replays it): its record is its last state.
    snap: Snapshot = conn.run(key, lambda amends: amends.snapshot(key))
    text = snap.model_dump_json(indent=2)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        click.echo(text)


def render(s: Snapshot, now: datetime | None = None) -> str:
    return "\n".join([*_facts(s, now), *_remedies(s), *_postmortem(s), *_timeline(s)])


def _facts(s: Snapshot, now: datetime | None) -> list[str]:
    r = s.report
    cur = r.order.amount_paid.currency
    rows: list[tuple[str, str]] = [
        ("Stage", str(s.stage)),
        ("Phase", s.phase + (" (after the continue-as-new: the whole record carried over)"
                             if s.phase == "anniversary" else "")),
        ("Severity", f"{r.severity} · {r.category.replace('_', ' ')}"),
        ("Customer", f"{r.customer.name} <{r.customer.email}> ({r.customer.customer_id})"
                     + ("  RED-FLAGGED" if s.red_flagged else "")),
        ("Order", f"{r.order.order_id}, {money(r.order.amount_paid.amount, cur)} paid"
                  + (f" ({r.order.payment_reference})" if r.order.payment_reference else "")),
        ("What happened", r.what_happened),
        ("Impact", r.impact),
    ]
    if r.owner:
        rows.append(("Owner", f"{r.owner.name} <{r.owner.email}>"))
    rows.append(("Deadline", deadline_text(s, now) if s.deadline else "none"))
    rows.append(("Escalation", f"level {s.escalation_level}"))
    paused_since = s.clock.paused_since if s.clock else None
    if s.paused_total or paused_since:
        paused = f"{duration(s.paused_total)} waiting on the customer"
        if paused_since:
            paused += f"; paused now, since {utc(paused_since, seconds=True)}"
        rows.append(("Paused", paused))
    for n, need in enumerate(s.needs):
        rows.append(("Needs" if n == 0 else "", need))
    refunded = (f"{money(s.refunded_total, cur)} of {money(r.order.amount_paid.amount, cur)} paid; "
                f"{money(s.refundable_left, cur)} refundable left")
    rows.append(("Refunded", refunded))
    rows.append(("Flags", "; ".join(s.flags) if s.flags else ("red-flagged" if s.red_flagged else "none")))
    if s.closed_at:
        rows.append(("Closed", utc(s.closed_at, seconds=True)))
    if s.anniversary_due_at and s.stage != "anniversary":
        rows.append(("Anniversary", utc(s.anniversary_due_at)[:10]))
    rows.append(("Next steps", ", ".join(s.allowed_steps) or "none (the clock takes the next step)"))
    width = max(len(label) for label, _ in rows)
    return [s.workflow_id, *(f"  {label:<{width}}  {value}" for label, value in rows)]


def _remedies(s: Snapshot) -> list[str]:
    out = []
    if s.remedies:
        out += ["", "Remedies"]
        for rem in s.remedies:
            who = f"proposed by {rem.proposed_by.name} ({rem.proposed_by.role})"
            if rem.needs_approval_from and not rem.approved_by:
                who += f", awaiting approval by a {rem.needs_approval_from}"
            if rem.approved_by:
                who += f", approved by {rem.approved_by.name} ({rem.approved_by.role})"
            if rem.accepted_by:
                who += f", accepted by {rem.accepted_by.name} ({rem.accepted_by.role})"
            out.append(f"  #{rem.number} {rem.status}: {who}" + (f" — {rem.note}" if rem.note else ""))
            iw = max(len(i.item_id) for i in rem.items)
            for i in rem.items:
                # Each kind says what it is itself: the CLI knows no kind's fields.
                extra = "".join(f" ({x})" for x in (i.reference, i.failure) if x)
                out.append(f"    {i.item_id:<{iw}}  {i.status:<21}  {i.item.describe()}{extra}")
    if s.money_moved:
        out += ["", "Money moved"]
        for m in s.money_moved:
            out.append(f"  {timeline_time(m.at)}  {m.kind} {money(m.amount.amount, m.amount.currency)}  "
                       f"{m.item_id}  {m.reference}")
    return out


def _postmortem(s: Snapshot) -> list[str]:
    out = []
    if s.postmortem:
        pm = s.postmortem
        out += ["", "Post-mortem (blameless)"]
        pm_rows = [("What happened", pm.what_happened), ("Root cause", f"{pm.root_cause_category}: {pm.root_cause}")]
        pm_rows += [("Factor", f"{f.kind}: {f.condition}") for f in pm.contributing_factors]
        out += [f"  {label:<13}  {value}" for label, value in pm_rows]
    if s.actions:
        out += ["", "Preventive actions"]
        cells = [(a.action_id, contact_text(a.owner), f"due {a.due.isoformat()}",
                  a.status + (f" {utc(a.completed_at).removesuffix(' UTC')}" if a.completed_at else "")
                  + (f" ({a.reminders} reminders)" if a.reminders and a.status == "open" else ""), a.action)
                 for a in s.actions]
        widths = [max(len(row[c]) for row in cells) for c in range(4)]
        out += ["  " + "  ".join(f"{row[c]:<{widths[c]}}" for c in range(4)) + f"  {row[4]}" for row in cells]
    return out


def _timeline(s: Snapshot) -> list[str]:
    out = ["", "Timeline (UTC)"]
    entries = [(timeline_time(e.at), e.step, f"{e.by.name} ({e.by.role})", e.channel or "-", e.detail)
               for e in s.timeline]
    if entries:
        widths = [max(len(row[c]) for row in entries) for c in range(4)]
        for row in entries:
            cols = "  ".join(f"{row[c]:<{widths[c]}}" for c in range(4))
            out.append(f"  {cols}  {row[4]}".rstrip())
    return out

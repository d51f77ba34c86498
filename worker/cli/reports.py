"""Reading many incidents back: ``amends report``, ``amends incidents stalled``, ``amends postmortem export``.

Lists print as rich tables at a terminal and as plain lines elsewhere;
``--json`` prints one JSON object per incident listed (JSON lines), and
``report --json`` the one summary object.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from worker.cli.connection import (
    CONTEXT,
    EXIT_REFUSED,
    Connection,
    connected_group,
    connection_options,
    fail,
)
from worker.cli.output import console, table, terminal
from workflows.client import AmendsClient
from workflows.formatting import duration, utc
from workflows.snapshot import Snapshot

if TYPE_CHECKING:
    from worker.reporting import IncidentRow

# ================================================================ post-mortem export

postmortem_group = connected_group(
    "postmortem",
    help="Read an incident's blameless post-mortem back (record it with `amends incident postmortem`).",
    short_help="Read post-mortems back (Markdown export).",
)


@postmortem_group.command("export", context_settings=CONTEXT)
@click.argument("key")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write the Markdown to FILE instead of stdout.")
@click.pass_context
def postmortem_export(ctx: click.Context, key: str, out_file: Path | None) -> None:
    """Write the post-mortem of incident KEY as Markdown: dates, severity and category, what happened,
    the root cause, contributing factors, preventive actions and their status, the remedy, money
    refunded and the milestones. Exits 1 when the incident has no post-mortem yet."""
    from worker.reporting import NoPostmortem, postmortem_markdown

    conn: Connection = ctx.obj
    snap: Snapshot = conn.run(key, lambda amends: amends.snapshot(key))
    try:
        text = postmortem_markdown(snap)
    except NoPostmortem as err:
        fail(f"refused: {err}", EXIT_REFUSED)
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.write_text(text)
        click.echo(str(out_file))


# ================================================================ the report


def parse_since(text: str) -> datetime:
    """``2026-11-01`` (midnight UTC) or an ISO 8601 time; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time", param_hint="--since"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


REPORT_QUERY = 'WorkflowType="IncidentRecovery"'
# With --since: the runs opened after it, and the runs that continued as new after it, so that an
# incident whose first run opened before shows one of its runs started before, and is left out.
SINCE_QUERY = REPORT_QUERY + (' AND (StartTime > "{since}"'
                              ' OR (ExecutionStatus = "ContinuedAsNew" AND CloseTime > "{since}"))')
QUERY_CONCURRENCY = 8


def report_query(since: datetime | None) -> str:
    if since is None:
        return REPORT_QUERY
    return SINCE_QUERY.format(since=since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


async def listed_incidents(client, since: datetime | None) -> dict[str, list]:
    """The runs one visibility listing gives, by workflow id: the incidents opened after ``since``.

    An incident that continued as new has several runs. With ``since``, it is kept only when its
    first run opened after ``since``: the listing also holds every run that continued as new after
    ``since``, so an incident opened before shows a run started before (and is left out).
    """
    runs: dict[str, list] = {}
    async for wf in client.list_workflows(report_query(since)):
        runs.setdefault(wf.id, []).append(wf)
    if since is not None:
        runs = {wid: listed for wid, listed in runs.items() if min(w.start_time for w in listed) > since}
    return runs


def latest(listed: list):
    """The incident's current run: the one that did not continue as new (else the last started)."""
    from temporalio.client import WorkflowExecutionStatus

    open_or_done = [w for w in listed if w.status != WorkflowExecutionStatus.CONTINUED_AS_NEW]
    return max(open_or_done or listed, key=lambda w: w.start_time)


def row_from_visibility(listed: list) -> IncidentRow:
    """An incident's row from the search attributes of its current run (``listed``: all its runs listed)."""
    from worker.reporting import POSTMORTEM_STAGES, row_of_attributes
    from workflows import search

    wf = latest(listed)
    attrs = wf.typed_search_attributes
    stage = attrs.get(search.RECOVERY_STAGE)
    # The anniversary run is the one the post-mortem continued into (a run continued in the middle
    # of the recovery is still the recovery phase).
    phase = "anniversary" if stage in POSTMORTEM_STAGES and len(listed) > 1 or stage == "anniversary" else "recovery"
    return row_of_attributes(
        wf.id, phase, attrs.get(search.INCIDENT_CATEGORY), stage, attrs.get(search.ROOT_CAUSE),
        attrs.get(search.DEADLINES_BREACHED), attrs.get(search.SECONDS_TO_APOLOGY),
    )


def has_report_attributes(listed: list) -> bool:
    """Whether the incident sets the report's attributes: every one opened since they exist does (from the start)."""
    from workflows import search

    return latest(listed).typed_search_attributes.get(search.DEADLINES_BREACHED) is not None


async def incident_rows(client, since: datetime | None, *, query_older: bool, per_query_timeout: float,
                        warn: Callable[[str], None]) -> tuple[list[IncidentRow], int]:
    """The row of every incident opened after ``since`` (all without), and how many were queried.

    One visibility listing answers for every incident that sets the report's search attributes.
    An incident opened before they existed (it lacks ``DeadlinesBreached``) is read by its
    ``snapshot`` query when ``query_older``, or else from the attributes it has, its time to
    apology, root cause and breaches unknown. One that cannot be queried is skipped with a warning.
    """
    from worker.reporting import row_of

    runs = await listed_incidents(client, since)
    rows = [row_from_visibility(listed) for listed in runs.values() if not query_older or has_report_attributes(listed)]
    older = [wid for wid, listed in runs.items() if query_older and not has_report_attributes(listed)]
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def one(wid: str) -> IncidentRow | None:
        from workflows.incident import IncidentRecovery

        async with gate:
            try:
                handle = client.get_workflow_handle(wid, result_type=Snapshot)  # no run id: the latest run
                return row_of(await asyncio.wait_for(handle.query(IncidentRecovery.snapshot), per_query_timeout))
            except TimeoutError:
                warn(f"warning: skipped {wid}: no answer to the snapshot query within {per_query_timeout:.0f}s")
            except Exception as err:  # noqa: BLE001  (a failed, terminated or foreign workflow: report the rest)
                warn(f"warning: skipped {wid}: {getattr(err, 'message', None) or err}")
            return None

    rows += [r for r in await asyncio.gather(*(one(wid) for wid in older)) if r is not None]
    return rows, len(older)


@click.command(context_settings=CONTEXT, short_help="Summarise incidents: categories, root causes, stages, SLAs.")
@click.option("--since", default=None, metavar="DATE",
              help="Only incidents opened after DATE (YYYY-MM-DD, or an ISO 8601 time; UTC unless it says).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with one row per incident) instead of a table.")
@click.option("--visibility-only", is_flag=True,
              help="Query no incident: count those opened before the report's search attributes existed "
                   "with their time to apology, root cause and breaches unknown.")
@connection_options
def report(since: str | None, as_json: bool, visibility_only: bool, address: str | None, namespace: str | None,
           profile: str | None, config_file: str | None, task_queue: str, timeout: float) -> None:
    """Summarise incidents from one listing of Temporal's visibility store: counts by category, by
    root-cause category (from the post-mortem; "none yet" without one) and by stage, the median time
    from detection to apology (of those apologised for, in whole seconds), and the deadlines
    breached (stages whose deadline was missed, summed). Each incident's search attributes say it
    all (RecoveryStage, IncidentCategory, RootCause, DeadlinesBreached, SecondsToApology): no
    incident is queried.

    Incidents opened before amends set RootCause, DeadlinesBreached and SecondsToApology (a
    running one sets them at its next stage change) do not vanish: each is read by its snapshot
    query instead, and the report says on stderr how many were ("queried" in --json); one that
    cannot answer is skipped with a warning. With --visibility-only they are counted from the
    attributes they have, their time to apology, root cause and breaches "unknown", and counted
    apart ("apology_time_unknown", "breaches_unknown")."""
    from worker.reporting import report_text, summarise

    since_at = parse_since(since) if since else None
    conn = Connection(address, namespace, task_queue, timeout, profile, config_file)
    warnings: list[str] = []

    async def work(amends: AmendsClient) -> tuple[list[IncidentRow], int]:
        # Each query gets a third of the whole: a few that cannot answer still leave time for the rest.
        return await incident_rows(amends.client, since_at, query_older=not visibility_only,
                                   per_query_timeout=min(10.0, timeout / 3), warn=warnings.append)

    rows, queried = conn.run(None, work)
    for line in warnings:
        click.echo(line, err=True)
    if queried:
        click.echo(f"note: {queried} incident{'s' if queried > 1 else ''} without the report's search attributes "
                   "(opened before they existed) read by query", err=True)
    summary = {"since": since_at.isoformat() if since_at else None, **summarise(rows),
               "queried": queried, "skipped": len(warnings)}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif terminal():
        print_report(summary)
    else:
        click.echo(report_text(summary))


def print_report(summary: dict) -> None:
    """The summary as rich tables (``report_text`` is the same for a pipe)."""
    from rich.text import Text

    from worker.reporting import apology_line, breaches_line

    out = console()
    out.print(Text.assemble((f"{summary['incidents']} incidents", "bold"),
                            f" since {summary['since']}" if summary["since"] else ""))
    for title, key in (("by category", "by_category"), ("by root cause", "by_root_cause_category"),
                       ("by stage", "by_stage")):
        rows = [(k.replace("_", " "), str(n)) for k, n in summary[key].items()]
        out.print(table([title, "incidents"], rows or [("(none)", "")], numeric=["incidents"]))
    out.print(Text.assemble(("median time to apology  ", "bold"), apology_line(summary)))
    out.print(Text.assemble(("breached deadlines      ", "bold"), breaches_line(summary)))


# ================================================================ stalled incidents

incidents = connected_group(
    "incidents",
    help="Lists of incidents, from Temporal's visibility store (the same queries the Web UI runs).",
    short_help="Lists of incidents for ops (visibility queries).",
)

STALLED_QUERY = 'ExecutionStatus="Running" AND WorkflowType="IncidentRecovery" AND StageDeadline < "{now}"'


async def stalled_incidents(client, now: datetime) -> list[dict]:
    """Running incidents past their stage deadline, most overdue first."""
    from workflows import search

    query = STALLED_QUERY.format(now=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    rows = []
    async for wf in client.list_workflows(query):
        attrs = wf.typed_search_attributes
        due = attrs.get(search.STAGE_DEADLINE)
        if due is None or due >= now:
            continue
        rows.append({
            "workflow_id": wf.id,
            "stage": attrs.get(search.RECOVERY_STAGE),
            "severity": attrs.get(search.SEVERITY),
            "customer_id": attrs.get(search.CUSTOMER_ID),
            "escalation_level": attrs.get(search.ESCALATION_LEVEL) or 0,
            "deadline": due,
            "overdue_seconds": int((now - due).total_seconds()),
        })
    return sorted(rows, key=lambda r: r["deadline"])


@incidents.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def stalled(ctx: click.Context, as_json: bool) -> None:
    """Incidents past their stage's deadline, most overdue first."""
    conn: Connection = ctx.obj

    async def work(amends: AmendsClient) -> list[dict]:
        return await stalled_incidents(amends.client, datetime.now(UTC))

    rows = conn.run(None, work)
    if as_json:
        for row in rows:
            click.echo(json.dumps({**row, "deadline": row["deadline"].isoformat()}))
        return
    if not rows:
        click.echo("no stalled incidents")
        return
    cells = [(r["workflow_id"], r["stage"] or "", r["severity"] or "", duration(r["overdue_seconds"]),
              str(r["escalation_level"]), utc(r["deadline"]), r["customer_id"] or "") for r in rows]
    if terminal():
        console().print(table(["incident", "stage", "severity", "overdue", "level", "due", "customer"], cells,
                              numeric=["level"], whole=["incident"]))
        return
    for wid, stage, severity, overdue, level, due, customer in cells:
        click.echo(f"{wid}  {stage:<15} {severity:<8} overdue {overdue}  level {level}  due {due}  {customer}")

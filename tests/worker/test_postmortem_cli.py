"""Reading incidents back through the ``amends`` CLI: the post-mortem, its actions, the export, the report.

The commands run in this process (``invoke``: click's CliRunner, in a thread, as the session's worker
shares the event loop), against the session's dev server; ``postmortem export`` and ``report`` also
run once each as a real process (``amends``), whose standard output is what a shell redirects. The
reporting functions are also checked alone, on snapshots built here.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import (
    HandleQueryInput,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from tests.support.cli import amends, invoke, open_options, signed_in
from tests.support.factories import AGENT, CUSTOMER, MANAGER, report
from tests.support.identity import Amends
from tests.support.policy import ALL_CALENDAR, policy
from tests.support.steps import opened, wait_for, walk_to
from worker.main import WORKFLOW_RUNNER, activities_for
from worker.reporting import (
    NO_ROOT_CAUSE,
    NoPostmortem,
    breached_deadlines,
    postmortem_markdown,
    summarise,
    time_to_apology,
)
from workflows import search
from workflows.client import AmendsClient
from workflows.incident import IncidentRecovery
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    CloseInput,
    FulfilmentConfirmation,
    NeedsInput,
    RemedyProposal,
)
from workflows.snapshot import Snapshot
from workflows.stages import Stage

SHORT_APOLOGY = policy(clocks=ALL_CALENDAR, deadlines__detected={"critical": "1s", "high": "1h", "medium": "4h",
                                                                  "low": "8h"})


def today() -> date:
    return datetime.now(UTC).date()


async def shown(key: str, env: dict) -> Snapshot:
    ran = await invoke("incident", "show", key, "--json", env=env)
    assert ran.code == 0, ran.err
    return Snapshot.model_validate_json(ran.out)


async def until(key: str, env: dict, predicate, tries: int = 100) -> Snapshot:
    for _ in range(tries):
        snap = await shown(key, env)
        if predicate(snap):
            return snap
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached: stage {snap.stage}, phase {snap.phase}, {[e.step for e in snap.timeline]}")


async def closed_by_client(client: AmendsClient, **overrides) -> str:
    """An incident walked to closed with the typed client (a manual item: no money moves)."""
    rep = report(None, **overrides)
    key = rep.incident_key
    await client.open_incident(rep)
    await client.apologise(key, ApologyInput(by=AGENT))
    await client.record_needs(key, NeedsInput(by=AGENT, needs="a tent before Friday"))
    await client.propose_remedy(key, RemedyProposal(by=AGENT, items=[{"kind": "replacement", "description": "a tent"}]))
    await client.accept_remedy(key, AcceptInput(by=CUSTOMER, remedy=1))
    await client.confirm_fulfilment(key, FulfilmentConfirmation(by=AGENT, item_id="remedy-1/item-1"))
    await client.close(key, CloseInput(by=MANAGER))
    # Settled: the closing notice's e-mail has gone out and is on the timeline.
    await wait_for(client, key, lambda s: [e.detail for e in s.timeline][-1] == "closing e-mailed to the customer")
    return key


# ---------------------------------------------------------------- through the CLI


async def test_a_postmortem_recorded_followed_up_and_exported_through_the_cli(cli_env, tmp_path):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    opened = await invoke("incident", "open", *open_options(key, "pi_unused"), env=cli_env)
    assert opened.code == 0, opened.err
    customer = signed_in(cli_env, "Alex Rivera", "customer")
    for args, env in (
        (["apologise", key, "--channel", "phone"], cli_env),
        (["needs", key, "--needs", "A tent that works before Friday."], cli_env),
        (["propose", key, "--replacement", "a new tent by express"], cli_env),
        (["accept", key, "--remedy", "1", "--channel", "email"], customer),
        (["confirm", key, "remedy-1/item-1", "--note", "UPS 1Z999"], cli_env),
    ):
        step = await invoke("incident", *args, env=env)
        assert step.code == 0, f"{args}: {step.err}"
    await until(key, cli_env, lambda s: s.stage == Stage.FULFILLED)
    assert (await invoke("incident", "close", key, env=cli_env)).code == 0

    # Before the post-mortem there is nothing to export.
    early = await invoke("postmortem", "export", key, env=cli_env)
    assert early.code == 1 and early.out == ""
    assert early.err.startswith(f"refused: incident-{key} has no post-mortem yet (stage closed)")

    due1, due2 = today() + timedelta(days=14), today() + timedelta(days=45)
    recorded = await invoke(
        "incident", "postmortem", key,
        "--what", "the parcel left the warehouse with another order's label",
        "--category", "process",
        "--root-cause", "labels are printed by hand, away from the order system",
        "--factor", "capacity:peak season doubled the parcels per packer",
        "--action", "print labels from the order system", "--owner", "Ann Lee <ann.lee@example.com>",
        "--due", due1.isoformat(),
        "--action", "scan each label against its order at packing", "--owner", "ops@example.com",
        "--due", due2.isoformat(),
        env=signed_in(cli_env, "Marcus Webb", "manager"),
    )
    assert recorded.code == 0, recorded.err
    assert recorded.out.split()[:2] == [f"incident-{key}", "postmortem_done"]

    done = await invoke("incident", "complete-action", key, "action-1", "--note", "PR 42 merged", env=cli_env)
    assert done.code == 0, done.err
    again = await invoke("incident", "complete-action", key, "action-1", env=cli_env)
    assert again.code == 1 and again.err.startswith("refused: action_id: 'action-1' was completed on ")
    unknown = await invoke("incident", "complete-action", key, "action-9", env=cli_env)
    assert unknown.code == 1 and "open actions: action-2" in unknown.err

    # What the server holds: the structured post-mortem and the actions' state.
    snap = await until(key, cli_env, lambda s: s.phase == "anniversary")
    pm = snap.postmortem
    assert (pm.root_cause_category, pm.root_cause) == ("process", "labels are printed by hand, away from the order system")
    assert [(f.kind, f.condition) for f in pm.contributing_factors] == [
        ("capacity", "peak season doubled the parcels per packer")]
    assert [(a.action_id, a.owner.name, a.owner.email, a.due, a.status) for a in snap.actions] == [
        ("action-1", "Ann Lee", "ann.lee@example.com", due1, "done"),
        ("action-2", "ops@example.com", "ops@example.com", due2, "open"),
    ]

    text = (await invoke("incident", "show", key, env=cli_env)).out
    assert "Phase          anniversary" in text
    assert "Root cause     process: labels are printed by hand, away from the order system" in text
    assert "Factor         capacity: peak season doubled the parcels per packer" in text
    actions = text.split("Preventive actions\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert actions[0].split()[:5] == ["action-1", "Ann", "Lee", "<ann.lee@example.com>", "due"]
    assert "done " in actions[0] and actions[1].split()[:5] == ["action-2", "ops@example.com", "due",
                                                                  due2.isoformat(), "open"]

    out = tmp_path / "postmortem.md"
    exported = await invoke("postmortem", "export", key, "--out", str(out), env=cli_env)
    assert exported.code == 0, exported.err
    assert exported.out.strip() == str(out)
    md = out.read_text()
    assert md.startswith(f"# Post-mortem: incident-{key} — Your tent arrived nine days late.\n")
    assert "blameless" in md
    assert "**process** — labels are printed by hand, away from the order system" in md
    assert "- **capacity**: peak season doubled the parcels per packer" in md
    rows = [line for line in md.splitlines() if line.startswith("| action-")]
    assert rows[0].startswith(f"| action-1 | print labels from the order system | Ann Lee <ann.lee@example.com> | "
                              f"{due1.isoformat()} | done | {today().isoformat()}")
    assert rows[1] == (f"| action-2 | scan each label against its order at packing | ops@example.com "
                       f"| {due2.isoformat()} | open | — |")
    assert "- a replacement: a new tent by express" in md
    assert "Money refunded: 0.00 USD of 80.00 USD paid." in md
    assert "Kevin" not in md  # staff connected with the failure stay out of it
    timeline = [line.split(" | ")[1] for line in md.split("## Timeline (UTC)", 1)[1].splitlines() if line.startswith("| 2")]
    # The whole record crosses the continue-as-new, so the customer's needs are in the export too.
    assert timeline == ["detected", "apologise", "record_needs", "accept_remedy", "fulfil", "close",
                        "record_postmortem", "complete_action"]
    # To stdout by default, the same document (a real process: what `> file` would hold).
    printed = await amends("postmortem", "export", key, env=cli_env)
    assert printed.code == 0 and printed.out == md


async def test_a_postmortem_with_a_past_due_date_is_refused_by_the_validator(cli_env, dev_env, settings):
    client = Amends(dev_env.client, settings.task_queue)
    key = await closed_by_client(client)
    before = await client.snapshot(key)
    yesterday = today() - timedelta(days=1)
    options = ["--what", "a label mix-up", "--category", "tooling", "--root-cause", "no label scanner at packing",
               "--action", "buy scanners", "--owner", "ops@example.com"]
    refused = await invoke("incident", "postmortem", key, *options, "--due", yesterday.isoformat(), env=cli_env)
    assert refused.code == 1, refused.err
    assert refused.err.startswith(
        f"refused: preventive_actions[0].due: {yesterday.isoformat()} is in the past; "
        f"give a due date from {today().isoformat()} on")
    after = await client.snapshot(key)
    assert after.stage == Stage.CLOSED and after.timeline == before.timeline

    # Mistakes the CLI catches before sending anything (exit 2), naming the option.
    bad_date = await invoke("incident", "postmortem", key, *options, "--due", "2030-02-30", env=cli_env)
    assert bad_date.code == 2 and bad_date.err.startswith("invalid: preventive_actions.0.due (--due): ")
    unpaired = await invoke("incident", "postmortem", key, *options, env=cli_env)
    assert unpaired.code == 2
    assert "--action, --owner and --due go together, in order: got 1 --action, 1 --owner and 0 --due" in unpaired.err
    bad_factor = await invoke("incident", "postmortem", key, *options, "--due", "2030-01-01", "--factor", "luck:x",
                              env=cli_env)
    assert bad_factor.code == 2 and "KIND one of process, tooling" in bad_factor.err


async def test_report_counts_the_incidents_of_a_period(cli_env, dev_env, settings):
    client = Amends(dev_env.client, settings.task_queue)
    since = datetime.now(UTC)
    two_hours_ago = since - timedelta(hours=2)
    keys = []
    for category in ("late_delivery", "late_delivery", "damaged"):
        rep = report(None, category=category, detected_at=two_hours_ago)
        await client.open_incident(rep)
        keys.append(rep.incident_key)
    await client.apologise(keys[2], ApologyInput(by=AGENT))
    # One no worker serves: its snapshot query cannot be answered, and the report goes on without it.
    stray = await dev_env.client.start_workflow(
        "IncidentRecovery", report(None), id=f"incident-stray-{uuid.uuid4().hex[:6]}", task_queue="nobody-polls-this")
    try:
        for _ in range(100):  # visibility trails the starts by a moment
            ran = await invoke("report", "--since", since.isoformat(), "--json", "--timeout", "6", env=cli_env)
            assert ran.code == 0, ran.err
            summary = json.loads(ran.out)
            if summary["incidents"] >= 3 and summary["skipped"]:
                break
            await asyncio.sleep(0.1)
    finally:
        await stray.terminate("test over")
    assert ran.err.startswith(f"warning: skipped {stray.id}: "), ran.err
    assert sorted(row["workflow_id"] for row in summary["rows"]) == sorted(f"incident-{k}" for k in keys)
    assert summary["by_category"] == {"late_delivery": 2, "damaged": 1}
    assert summary["by_root_cause_category"] == {NO_ROOT_CAUSE: 3}
    assert summary["by_stage"] == {"detected": 2, "apologised": 1}
    assert summary["apologised"] == 1
    assert 2 * 3600 <= summary["median_time_to_apology_seconds"] < 2 * 3600 + 60
    assert summary["breached_deadlines"] == 0 and summary["skipped"] == 1

    table = await amends("report", "--since", since.isoformat(), env=cli_env)  # a real process
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0] == f"3 incidents since {since.isoformat()}"
    assert [line.split() for line in lines if line.startswith("  late")] == [["late", "delivery", "2"]]
    assert "median time to apology  2 h  (1 of 3 apologised)" in table.out

    bad = await invoke("report", "--since", "last tuesday", env=cli_env)
    assert bad.code == 2 and "is not a date" in bad.err


class CountQueries(Interceptor):
    """A worker interceptor: every query the worker's incidents answer (a query reaches the worker
    that runs the incident, whoever asks: the CLI's own client included)."""

    def __init__(self) -> None:
        self.answered: list[str] = []

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        answered = self.answered

        class Counting(WorkflowInboundInterceptor):
            async def handle_query(self, input: HandleQueryInput) -> Any:
                answered.append(input.query)
                return await super().handle_query(input)

        return Counting


REPORTED = ("incidents", "by_category", "by_root_cause_category", "by_stage", "apologised",
            "median_time_to_apology_seconds", "breached_deadlines", "rows")


async def test_report_reads_visibility_and_queries_no_incident(cli_env, dev_env, settings):
    """Incidents in different stages: the report's numbers are those of their snapshots (the old way), and
    no incident answers a query for it. One opened before --since and continued as new after is left out."""
    task_queue = f"amends-report-{uuid.uuid4().hex[:6]}"
    fast = settings.model_copy(update={"task_queue": task_queue, "sla_policy": SHORT_APOLOGY})
    counter = CountQueries()
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[IncidentRecovery],
                      activities=activities_for(fast), workflow_runner=WORKFLOW_RUNNER, interceptors=[counter]):
        client = Amends(dev_env.client, task_queue)
        before_since = await opened(client, severity="medium")  # its first run opens before --since
        await asyncio.sleep(0.05)
        since = datetime.now(UTC)
        await asyncio.sleep(0.05)
        await walk_to(client, before_since, Stage.POSTMORTEM_DONE)  # continues as new after --since
        done = await opened(client, severity="medium", category="damaged")
        await walk_to(client, done, Stage.POSTMORTEM_DONE)  # root cause "process"; its anniversary run
        apologised = await opened(client, severity="medium", category="billing_error")
        await walk_to(client, apologised, Stage.APOLOGISED)
        waiting = await opened(client, severity="medium")
        breached = await opened(client, severity="critical")  # apology due in 1 s
        await wait_for(client, breached, lambda s: s.escalation_level >= 1)
        await walk_to(client, breached, Stage.APOLOGISED)
        for key in (before_since, done):
            await wait_for(client, key, lambda s: s.phase == "anniversary")
        keys = [done, apologised, waiting, breached]

        queried_before = len(counter.answered)
        for _ in range(100):  # visibility trails the upserts by a moment
            ran = await invoke("report", "--since", since.isoformat(), "--json", env=cli_env)
            assert ran.code == 0, ran.err
            summary = json.loads(ran.out)
            if summary["by_stage"] == {"detected": 1, "apologised": 2, "postmortem_done": 1}:
                break
            await asyncio.sleep(0.2)
        assert len(counter.answered) == queried_before, counter.answered[queried_before:]
        assert summary["queried"] == 0 and summary["skipped"] == 0 and ran.err == ""

        # The same numbers as the snapshots give (the old report queried each one for them).
        snaps = [await client.snapshot(k) for k in keys]
        assert len(counter.answered) >= queried_before + len(keys)  # the counter does count queries
        expected = summarise(snaps)
        assert {k: summary[k] for k in REPORTED} == {k: expected[k] for k in REPORTED}
        assert sorted(row["workflow_id"] for row in summary["rows"]) == sorted(f"incident-{k}" for k in keys)
        assert summary["by_category"] == {"late_delivery": 2, "billing_error": 1, "damaged": 1}
        assert summary["by_root_cause_category"] == {"process": 1, NO_ROOT_CAUSE: 3}
        assert summary["apologised"] == 3 and summary["breached_deadlines"] == 1
        slow = next(r for r in summary["rows"] if r["workflow_id"] == f"incident-{breached}")
        assert slow["breached_deadlines"] == 1 and slow["time_to_apology_seconds"] >= 1
        assert next(r for r in summary["rows"] if r["workflow_id"] == f"incident-{done}")["phase"] == "anniversary"

        # An incident without the report's attributes (as opened before they existed, and no worker
        # has run it since): counted with what it says, or read by query.
        old = report(None)
        stray = await dev_env.client.start_workflow(
            "IncidentRecovery", old, id=f"incident-{old.incident_key}", task_queue=f"{task_queue}-nobody",
            search_attributes=TypedSearchAttributes([SearchAttributePair(k, v) for k, v in search.values(
                old, Stage.DETECTED) if k in search.FILTERS and v is not None]))
        try:
            for _ in range(100):
                ran = await invoke("report", "--since", since.isoformat(), "--json", "--visibility-only", env=cli_env)
                assert ran.code == 0, ran.err
                summary = json.loads(ran.out)
                if summary["incidents"] == 5:
                    break
                await asyncio.sleep(0.2)
            assert summary["by_stage"] == {"detected": 2, "apologised": 2, "postmortem_done": 1}
            assert summary["breaches_unknown"] == 1 and summary["breached_deadlines"] == 1
            assert summary["by_root_cause_category"] == {"process": 1, NO_ROOT_CAUSE: 4}  # still at detected
            assert summary["queried"] == 0 and summary["apologised"] == 3
            table = await invoke("report", "--since", since.isoformat(), "--visibility-only", env=cli_env)
            assert "breached deadlines      1  (not known for 1 incidents)" in table.out, table.out

            ran = await invoke("report", "--since", since.isoformat(), "--json", "--timeout", "6", env=cli_env)
            summary = json.loads(ran.out)
            assert summary["queried"] == 1 and summary["skipped"] == 1 and summary["incidents"] == 4
            assert ran.err.startswith(f"warning: skipped {stray.id}: "), ran.err
            assert "note: 1 incident without the report's search attributes" in ran.err
        finally:
            await stray.terminate("test over")
        assert len(counter.answered) == queried_before + len(keys)  # none of these reports queried either


# ---------------------------------------------------------------- the reporting functions alone


T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def entry(step: str, stage: str, minutes: float) -> dict:
    return {"at": T0 + timedelta(minutes=minutes), "step": step, "by": {"name": "clock", "role": "system"},
            "stage": stage, "detail": f"{step} detail"}


def snapshot(category: str = "late_delivery", stage: str = "detected", timeline: list[dict] = (),
             postmortem: dict | None = None, **fields) -> Snapshot:
    # Recorded before opens were refused for naming staff: the export still redacts it.
    rep = report(None, category=category, detected_at=T0, staff_involved=["Kevin Lomax"],
                 what_happened="Your tent arrived nine days late because Kevin Lomax mislabelled the parcel.")
    return Snapshot.model_validate(dict(
        workflow_id=f"incident-{rep.incident_key}", report=rep, stage=stage, allowed_steps=[],
        timeline=[entry("detected", "detected", 0), *timeline], needs=[], remedies=[], money_moved=[],
        refunded_total=0, refundable_left=8_000, postmortem=postmortem, **fields,
    ))


def test_time_to_apology_is_from_detection_to_the_first_apology():
    assert time_to_apology(snapshot()) is None
    apologised = snapshot(stage="apologised", timeline=[entry("apologise", "detected", 30),
                                                        entry("apologise", "apologised", 90)])
    assert time_to_apology(apologised) == timedelta(minutes=30)


def test_the_median_counts_only_the_incidents_apologised_for():
    snaps = [snapshot(stage="apologised", timeline=[entry("apologise", "detected", m)]) for m in (10, 40, 20, 90)]
    snaps.append(snapshot())  # still waiting: not a zero, not counted
    summary = summarise(snaps)
    assert summary["apologised"] == 4
    assert summary["median_time_to_apology_seconds"] == 30 * 60  # (20 + 40) / 2
    assert summarise(snaps[1:4])["median_time_to_apology_seconds"] == 40 * 60
    assert summarise([snapshot()])["median_time_to_apology_seconds"] is None


def test_a_breach_is_a_stage_that_missed_its_deadline_however_often_it_escalated():
    ladder = [entry("escalate", "detected", m) for m in (60, 90, 150)] + [entry("apologise", "detected", 160)]
    later = [entry("escalate", "needs_gathered", 600)]
    one = snapshot(stage="apologised", timeline=ladder)
    two = snapshot(stage="needs_gathered", timeline=ladder + later)
    assert [breached_deadlines(s) for s in (one, two, snapshot())] == [1, 2, 0]
    assert summarise([one, two, snapshot()])["breached_deadlines"] == 3


def test_counts_by_category_root_cause_and_stage():
    pm = {"by": {"name": "Marcus Webb", "role": "manager"}, "what_happened": "x", "root_cause_category": "tooling",
          "root_cause": "no scanner", "preventive_actions": [
              {"action": "buy scanners", "owner": {"name": "Ops", "email": "ops@example.com"}, "due": "2026-12-01"}]}
    summary = summarise([snapshot("damaged", "postmortem_done", postmortem=pm), snapshot(), snapshot(stage="closed")])
    assert summary["incidents"] == 3
    assert summary["by_category"] == {"late_delivery": 2, "damaged": 1}
    assert summary["by_root_cause_category"] == {"tooling": 1, NO_ROOT_CAUSE: 2}
    assert list(summary["by_stage"]) == ["detected", "closed", "postmortem_done"]  # in the playbook's order


def test_the_export_refuses_without_a_postmortem_and_names_no_staff():
    with pytest.raises(NoPostmortem, match="has no post-mortem yet"):
        postmortem_markdown(snapshot())
    pm = {"by": {"name": "Marcus Webb", "role": "manager"}, "what_happened": "a label | mix-up",
          "root_cause_category": "process", "root_cause": "labels by hand",
          "preventive_actions": [{"action": "print | labels", "owner": {"name": "Ops", "email": "ops@example.com"},
                                  "due": "2026-12-01"}]}
    snap = snapshot(stage="postmortem_done", postmortem=pm, closed_at=T0 + timedelta(days=1), actions=[
        {"action_id": "action-1", "action": "print | labels", "owner": {"name": "Ops", "email": "ops@example.com"},
         "due": "2026-12-01"}])
    md = postmortem_markdown(snap)
    assert "Kevin" not in md and "Lomax" not in md and "our team mislabelled" in md
    assert "| action-1 | print \\| labels | Ops <ops@example.com> | 2026-12-01 | open | — |" in md
    assert "| Closed | 2026-11-25 09:00 UTC |" in md and "| Apologised | — |" in md
    assert "None recorded." in md  # no contributing factors

"""SLA clocks on the real dev server: durable across worker restarts, and visible to ops."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.worker import Worker

from tests.support.factories import report
from tests.support.identity import Amends
from tests.support.policy import ALL_CALENDAR, policy
from tests.support.steps import wait_for
from tests.support.workers import start_worker
from worker.main import WORKFLOW_RUNNER, activities_for
from workflows import search
from workflows.incident import IncidentRecovery

REPO = Path(__file__).resolve().parents[2]

SHORT = policy(
    clocks=ALL_CALENDAR,
    deadlines__detected={"critical": "1s", "high": "2s", "medium": "1h", "low": "1h"},
)


async def test_a_restarted_worker_keeps_the_deadline(dev_env, settings, tmp_path):
    """kill -9 the worker while the incident waits for its apology; a new worker
    (even with another policy file) escalates at the original deadline."""
    first = tmp_path / "sla.json"
    first.write_text(policy(clocks=ALL_CALENDAR, deadlines__detected={
        "critical": "5s", "high": "6s", "medium": "1h", "low": "1h"}).model_dump_json())
    changed = tmp_path / "sla-changed.json"
    changed.write_text(policy(clocks=ALL_CALENDAR).model_dump_json())  # 1 h for a high apology
    task_queue = f"amends-restart-{uuid.uuid4().hex[:6]}"
    amends = Amends(dev_env.client, task_queue)

    worker = await start_worker(dev_env, settings, task_queue, None, extra_env={"AMENDS_SLA_POLICY": str(first)})
    rep = report(None, severity="high")
    await amends.open_incident(rep)
    snap = await wait_for(amends, rep.incident_key, lambda s: s.deadline is not None)
    due = snap.deadline.due_at
    worker.send_signal(signal.SIGKILL)
    await worker.wait()

    worker = await start_worker(dev_env, settings, task_queue, None, extra_env={"AMENDS_SLA_POLICY": str(changed)})
    try:
        after = await amends.snapshot(rep.incident_key)
        assert after.deadline.due_at == due
        desc = await amends.handle(rep.incident_key).describe()
        assert desc.typed_search_attributes.get(search.STAGE_DEADLINE) == due
        snap = await wait_for(amends, rep.incident_key, lambda s: s.escalation_level >= 1, tries=400)
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
    fired = next(e for e in snap.timeline if e.step == "escalate")
    # Not before the deadline; a little after it, because the first task after
    # a kill -9 waits out the dead worker's sticky queue (5 s) before moving on.
    assert due <= fired.at < due + timedelta(seconds=20)
    assert "apology overdue by" in fired.detail


async def test_amends_incidents_stalled_lists_exactly_the_overdue_ones(dev_env, settings):
    task_queue = f"amends-stalled-{uuid.uuid4().hex[:6]}"
    fast = settings.model_copy(update={"task_queue": task_queue, "sla_policy": SHORT})
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[IncidentRecovery],
                      activities=activities_for(fast), workflow_runner=WORKFLOW_RUNNER):
        amends = Amends(dev_env.client, task_queue)
        mixed = {}
        for severity in ("critical", "high", "medium", "critical", "medium"):
            rep = report(None, severity=severity)
            await amends.open_incident(rep)
            mixed[f"incident-{rep.incident_key}"] = severity
        overdue = [wid for wid, sev in mixed.items() if sev in ("critical", "high")]
        for wid in overdue:  # each has passed its deadline and escalated
            await wait_for(amends, wid.removeprefix("incident-"), lambda s: s.escalation_level >= 1)
        for _ in range(50):  # visibility trails the upserts by a moment
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker.cli", "incidents", "--address",
                dev_env.client.service_client.config.target_host, "stalled", "--json",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
            )
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            rows = [json.loads(line) for line in out.decode().splitlines()]
            listed = [r["workflow_id"] for r in rows if r["workflow_id"] in mixed]
            if set(listed) == set(overdue) and all(r["escalation_level"] >= 1 for r in rows if r["workflow_id"] in mixed):
                break
            await asyncio.sleep(0.2)
        assert set(listed) == set(overdue)
        deadlines = [r["deadline"] for r in rows if r["workflow_id"] in mixed]
        assert deadlines == sorted(deadlines)  # most overdue first
        assert all(r["escalation_level"] >= 1 and r["stage"] == "detected" for r in rows if r["workflow_id"] in mixed)

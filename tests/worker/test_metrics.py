"""The worker's Prometheus endpoint (worker/metrics.py), scraped after a real incident.

A worker of this module's own, on its own task queue and with its own SDK
runtime serving ``/metrics`` on a free port, runs an incident on the
session's dev server (open, then apologise); the scrape must show the SDK's
metrics for that task queue and workflow type. docs/metrics.md names them.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
import pytest_asyncio

from tests.support.factories import AGENT, paid_intent, report
from tests.support.identity import Amends
from tests.support.policy import ALL_CALENDAR, policy
from tests.support.steps import STEP_INPUTS, wait_for
from worker.config import connect
from worker.main import build_worker
from worker.metrics import MetricsBindError, prometheus_runtime
from worker.processes import free_port
from workflows.inputs import ApologyInput, RemedyProposal

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """Prometheus text format: sample name -> [(labels, value)]."""
    samples: Samples = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        name, labels, value = m.groups()
        samples.setdefault(name, []).append((dict(label_re.findall(labels or "")), float(value)))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items()))


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest_asyncio.fixture(scope="module")
async def metrics_worker(dev_env, settings, metrics_port):
    """A worker whose client reports through a runtime with a Prometheus endpoint."""
    runtime = prometheus_runtime(f"127.0.0.1:{metrics_port}")
    client = await connect(dev_env.client.service_client.config.target_host, dev_env.client.namespace,
                           runtime=runtime)
    # A critical apology is due within a second here, so that a breach is counted.
    fast = policy(clocks=ALL_CALENDAR, deadlines__detected={"critical": "1s", "high": "1h", "medium": "4h", "low": "8h"})
    own = settings.model_copy(update={"task_queue": f"amends-metrics-{uuid.uuid4().hex[:6]}", "sla_policy": fast})
    async with build_worker(client, own) as worker:
        yield worker


async def scrape(port: int) -> tuple[str, Samples]:
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text, parse(resp.text)


async def test_an_incident_shows_in_the_sdk_metrics(dev_env, metrics_worker, metrics_port):
    queue = metrics_worker.task_queue
    amends = Amends(dev_env.client, task_queue=queue)
    incident = report("pi_unused")
    await amends.open_incident(incident)
    snap = await amends.apologise(incident.incident_key, ApologyInput(by=AGENT))
    assert snap.stage == "apologised"

    mine = {"task_queue": queue, "namespace": dev_env.client.namespace}
    # The apology notice is an activity that runs after the update returns.
    for _ in range(100):
        text, samples = await scrape(metrics_port)
        if total(samples, "temporal_activity_execution_latency_count", **mine, activity_type="send_notice"):
            break
        await asyncio.sleep(0.1)

    # Workflow tasks: the start, the update, the activity's completion.
    assert total(samples, "temporal_workflow_task_execution_latency_count", **mine,
                 workflow_type="IncidentRecovery") >= 2, text
    assert total(samples, "temporal_workflow_task_queue_poll_succeed", **mine) >= 2, text
    # The apology notice went out as an activity that succeeded.
    assert total(samples, "temporal_activity_execution_latency_count", **mine, activity_type="send_notice") >= 1, text
    assert total(samples, "temporal_activity_execution_failed", **mine, activity_type="send_notice") == 0, text
    # The worker's own calls to the server (polls, completions) are counted.
    assert total(samples, "temporal_request", namespace=dev_env.client.namespace) > 0, text
    # Worker health: it is alive and has its slots.
    assert total(samples, "temporal_worker_task_slots_available", **mine) > 0, text
    # The incident is still open: nothing completed or failed on this queue.
    assert total(samples, "temporal_workflow_failed", **mine) == 0, text


async def test_amends_own_metrics_count_what_happened(dev_env, metrics_worker, metrics_port, stripe):
    queue = metrics_worker.task_queue
    amends = Amends(dev_env.client, task_queue=queue)
    incident = report(await paid_intent(stripe, 8_000), severity="critical")
    key = incident.incident_key
    await amends.open_incident(incident)
    await wait_for(amends, key, lambda s: s.escalation_level >= 1)  # the 1 s apology deadline passed
    await amends.apologise(key, ApologyInput(by=AGENT))
    await amends.record_needs(key, STEP_INPUTS["record_needs"])
    await amends.propose_remedy(key, RemedyProposal(
        by=AGENT, items=[{"kind": "refund", "amount": {"amount": 2_500, "currency": "USD"}}]))
    await amends.accept_remedy(key, STEP_INPUTS["accept_remedy"])
    await wait_for(amends, key, lambda s: s.stage == "fulfilled")
    await amends.close(key, STEP_INPUTS["close"])

    mine = {"task_queue": queue}
    crit = {**mine, "category": "late_delivery", "severity": "critical"}
    _, samples = await scrape(metrics_port)
    assert total(samples, "amends_incidents_opened", **crit) == 1
    assert total(samples, "amends_time_to_apology_seconds_count", **crit) == 1
    assert total(samples, "amends_time_to_apology_seconds_sum", **crit) >= 1.0  # at least the missed second
    assert total(samples, "amends_time_to_close_seconds_count", **crit) == 1
    assert total(samples, "amends_deadline_breaches", **mine, stage="detected", severity="critical", level="1") == 1
    assert total(samples, "amends_refunded_minor_units", **mine, currency="USD") == 2_500


async def test_a_port_in_use_is_a_clear_error(metrics_port, metrics_worker):
    with pytest.raises(MetricsBindError, match=f"127.0.0.1:{metrics_port}"):
        prometheus_runtime(f"127.0.0.1:{metrics_port}")

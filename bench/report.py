"""``amends report`` from one visibility listing, against the per-incident query it replaced.

    .venv/bin/python -m bench.report [--incidents 5000] [--live 1000] [--in-flight 40] [--repeat 3]

A dev server on a SQLite file (``journal_mode=wal``, ``synchronous=normal``:
only to make the incidents faster; both paths read the same server), amends'
search attributes registered, a worker with amends' engine and its
integrations replaced by no-ops (``bench.noop``), payloads sealed by the
codec as in production. Two kinds of incident, ``--incidents`` in all:

- ``--live`` of them opened through the typed client (update-with-start,
  as backends do) with the worker running: every fifth apologised for at
  opening, every fiftieth walked to its post-mortem (a root cause, then the
  continue-as-new into the anniversary run). These answer queries.
- the rest started as the typed client starts them (the same input, id,
  and search attributes at start: stage ``detected``, no breach) on a task
  queue no worker polls, because a worker runs about 7 incidents/s here and
  5,000 would take 12 minutes to open. Visibility lists them like any other
  (the listing reads the same attributes); they cannot answer a query.

It times:

- ``listing``: ``worker.cli.reports.incident_rows`` and ``summarise``, what
  ``amends report`` runs (one visibility listing, no query), over all of
  them, ``--repeat`` times;
- ``query``: the path it replaced, the same listing then the ``snapshot``
  query of each live incident (8 at a time, as the report did) and
  ``summarise`` of the snapshots; the time for all ``--incidents`` is
  EXTRAPOLATED from the live ones (per incident, and labelled so). With
  more incidents than the worker caches (1,000) more queries replay a
  history: the extrapolation flatters the query path, if anything.

The two summaries must agree on the live incidents. CPU is this process's
(client and worker) and the dev server's. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from activities.identity import IdentityConfig
from bench.factories import AGENT, CUSTOMER, MANAGER, postmortem, report, stage_of, until_fulfilled
from bench.noop import noop_activities
from worker.cli.reports import QUERY_CONCURRENCY, incident_rows, listed_incidents
from worker.config import Settings
from worker.issuer import Issuer, KeyRing, identity_toml
from worker.main import activities_for, build_worker
from worker.processes import free_port, wait_for_port
from worker.reporting import summarise
from workflows import search
from workflows.client import AmendsClient, workflow_id
from workflows.codec import KeyRing as CodecKeys
from workflows.converter import encrypted_converter
from workflows.incident import IncidentRecovery
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    CloseInput,
    FulfilmentConfirmation,
    IncidentReport,
    NeedsInput,
    RemedyProposal,
    Role,
)
from workflows.snapshot import Snapshot
from workflows.stages import Stage

BIN = Path(sys.executable).parent
PRAGMAS = ["journal_mode=wal", "synchronous=normal"]
TICK = os.sysconf("SC_CLK_TCK")
COMPARED = ("incidents", "by_category", "by_root_cause_category", "by_stage", "apologised",
            "median_time_to_apology_seconds", "breached_deadlines", "rows")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a child process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Cpu:
    """Wall time, this process's CPU and the dev server's, over a ``with`` block."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid

    def __enter__(self) -> Cpu:
        self.t0, self.c0, self.s0 = time.perf_counter(), time.process_time(), proc_cpu(self.pid)
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self.server = proc_cpu(self.pid) - self.s0


async def connect(address: str, ring: CodecKeys) -> Client:
    """A client, once the dev server's frontend says it is healthy (it listens before it is)."""
    for _ in range(120):
        try:
            return await Client.connect(address, data_converter=encrypted_converter(ring))
        except RuntimeError:
            await asyncio.sleep(0.5)
    return await Client.connect(address, data_converter=encrypted_converter(ring))


def incident_report(key: str, n: int) -> IncidentReport:
    return IncidentReport.model_validate({
        **report(f"pi_noop_{key}", key=key).model_dump(mode="json"),
        "category": ("late_delivery", "damaged", "wrong_item", "billing_error")[n % 4],
        "severity": "medium",
    })


async def walk(as_: dict[Role, AmendsClient], key: str, n: int) -> None:
    """Open incident ``n``; every 5th apologised for, every 50th taken to its post-mortem."""
    agent = as_[Role.AGENT]
    rep = incident_report(key, n)
    if n % 5:
        await agent.open_incident(rep)
        return
    await agent.open_incident(rep, then=ApologyInput())
    if n % 50:
        return
    await agent.record_needs(key, NeedsInput(needs="a tent before Friday"))
    await agent.propose_remedy(key, RemedyProposal(items=[{"kind": "replacement", "description": "a new tent"}]))
    await as_[Role.CUSTOMER].accept_remedy(key, AcceptInput(remedy=1))
    await agent.confirm_fulfilment(key, FulfilmentConfirmation(item_id="remedy-1/item-1"))
    await until_fulfilled(partial(stage_of, agent, key))
    await agent.close(key, CloseInput())
    await as_[Role.MANAGER].record_postmortem(key, postmortem(("process", "tooling", "supplier")[n // 50 % 3]))


async def query_path(client: Client, live: str) -> tuple[dict, int]:
    """The report as it was: the listing, then each incident's snapshot query (the ``live`` ones: ids with it)."""
    runs = await listed_incidents(client, None)
    ids = sorted(wid for wid in runs if live in wid)
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def one(wid: str) -> Snapshot:
        async with gate:
            snap: Snapshot = await client.get_workflow_handle(wid, result_type=Snapshot).query(
                IncidentRecovery.snapshot)
            return snap

    snaps = await asyncio.gather(*(one(wid) for wid in ids))
    return summarise(snaps), len(ids)


async def run(args: argparse.Namespace) -> dict:
    data = Path(tempfile.mkdtemp(prefix="amends-bench-report-"))
    port = free_port()
    cmd = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
           "--db-filename", str(data / "temporal.db"), "--log-level", "error", *search.cli_flags()]
    for p in PRAGMAS:
        cmd += ["--sqlite-pragma", p]
    server = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL,
                                                  stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_for_port(port, "the dev server", timeout=60.0)
        ring = CodecKeys({"bench": os.urandom(32)}, "bench")
        client = await connect(f"127.0.0.1:{port}", ring)
        keys = KeyRing(data / "issuer").ensure()
        issuer = Issuer("https://bench.amends.local", keys)
        (data / "identity.toml").write_text(identity_toml(issuer.issuer, keys.jwks))
        settings = Settings(task_queue="bench-report", stripe_api_key="sk_test_amends_bench",
                            identity=IdentityConfig.load(data / "identity.toml"))
        as_ = {a.role: AmendsClient(client, settings.task_queue, signer=issuer.signer(a))
               for a in (AGENT, CUSTOMER, MANAGER)}
        out: dict = {"incidents": args.incidents, "sqlite_pragmas": PRAGMAS}
        async with build_worker(client, settings, noop_activities(activities_for(settings))):
            gate = asyncio.Semaphore(args.in_flight)
            prefix = uuid.uuid4().hex[:6]
            live, dormant = f"live-{prefix}", f"dormant-{prefix}"

            async def one(n: int) -> None:
                async with gate:
                    await walk(as_, f"{live}-{n}", n)

            async def asleep(n: int) -> None:
                async with gate:
                    rep = incident_report(f"{dormant}-{n}", n)
                    await client.start_workflow(
                        IncidentRecovery.run, rep, id=workflow_id(rep.incident_key), task_queue="bench-report-nobody",
                        search_attributes=TypedSearchAttributes([SearchAttributePair(k, v) for k, v in search.values(
                            rep, Stage.DETECTED) if v is not None]))

            with Cpu(server.pid) as made:
                await asyncio.gather(*(one(n) for n in range(args.live)))
            print(f"opened {args.live} live incidents in {made.wall:.0f} s ({args.live / made.wall:.1f}/s, "
                  f"{args.in_flight} in flight; every 5th apologised for, every 50th to its post-mortem)", flush=True)
            with Cpu(server.pid) as started:
                await asyncio.gather(*(asleep(n) for n in range(args.incidents - args.live)))
            print(f"started {args.incidents - args.live} more as the client does, on a queue no worker polls, in "
                  f"{started.wall:.0f} s", flush=True)
            out["live"] = args.live
            out["open_live_seconds"] = round(made.wall, 1)
            out["start_rest_seconds"] = round(started.wall, 1)

            # Visibility trails the upserts: wait until the listing holds every incident, settled.
            expected_pm = len(range(0, args.live, 50))
            for _ in range(600):
                rows, _ = await incident_rows(client, None, query_older=False, per_query_timeout=10, warn=print)
                summary = summarise(rows)
                if (summary["incidents"] == args.incidents
                        and summary["by_stage"].get("postmortem_done", 0) == expected_pm):
                    break
                await asyncio.sleep(1)
            else:
                raise SystemExit(f"visibility never listed them all: {summary['incidents']} listed")

            warnings: list[str] = []
            listing = []
            for _ in range(args.repeat):
                with Cpu(server.pid) as t:
                    rows, queried = await incident_rows(client, None, query_older=True, per_query_timeout=10,
                                                        warn=warnings.append)
                    by_listing = summarise(rows)
                assert queried == 0 and not warnings, (queried, warnings[:3])
                listing.append(t)
            best = min(listing, key=lambda t: t.wall)
            print(f"listing: {statistics.median(t.wall for t in listing):.2f} s median of {args.repeat} "
                  f"(best {best.wall:.2f} s; client CPU {best.cpu:.2f} s, server CPU {best.server:.2f} s), "
                  f"0 queries", flush=True)
            out["listing_seconds"] = round(statistics.median(t.wall for t in listing), 3)
            out["listing_best_seconds"] = round(best.wall, 3)
            out["listing_client_cpu_seconds"] = round(best.cpu, 3)
            out["listing_server_cpu_seconds"] = round(best.server, 3)
            out["listing_queries"] = 0

            with Cpu(server.pid) as q:
                by_query, queried = await query_path(client, live)
            mine = summarise([r for r in rows if live in r.workflow_id])
            same = {k: by_query[k] for k in COMPARED} == {k: mine[k] for k in COMPARED}
            total = q.wall * args.incidents / queried
            how = "measured" if queried == args.incidents else f"EXTRAPOLATED from {queried} queried in {q.wall:.1f} s"
            print(f"query:   {total:.1f} s for {args.incidents}, {how} ({q.wall / queried * 1000:.1f} ms per "
                  f"incident; client CPU {q.cpu:.1f} s, server CPU {q.server:.1f} s)", flush=True)
            print(f"the two summaries {'agree' if same else 'DIFFER'} on the live incidents; the listing is "
                  f"{total / out['listing_seconds']:.0f}x faster", flush=True)
            out.update({
                "query_seconds_extrapolated": round(total, 1),
                "query_measured": queried, "query_measured_seconds": round(q.wall, 2),
                "query_client_cpu_seconds": round(q.cpu, 2), "query_server_cpu_seconds": round(q.server, 2),
                "summaries_agree": same, "speedup": round(total / out["listing_seconds"], 1),
                "summary": {k: by_listing[k] for k in COMPARED if k != "rows"},
            })
            return out
    finally:
        server.terminate()
        await server.wait()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=40, help="incidents opened at a time")
    parser.add_argument("--live", type=int, default=1000,
                        help="incidents opened through the worker (they answer queries); the rest are started")
    parser.add_argument("--repeat", type=int, default=3, help="listing runs to time")
    args = parser.parse_args()
    args.live = min(args.live, args.incidents)
    out = asyncio.run(run(args))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

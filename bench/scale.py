"""Scale on one machine: a worker's memory with many incidents open, and a burst of opens, amends against bare.

    .venv/bin/python -m bench.scale [--open 5000] [--burst 2000] [--in-flight 100] [--quick]
    .venv/bin/python -m bench.scale --tune [--open 1500] [--burst 1000]     # the tuning table

For each kind (``bare``: ``bench.bare.BareIncident``; ``amends``: the
``IncidentRecovery`` workflow with its integrations replaced by no-ops,
``bench.noop``) it starts a fresh dev server (SQLite in a file, as
``amends dev`` runs it) and a fresh worker **in a child process**, so that the
RSS read from ``/proc`` is the worker's alone and the two kinds never share a
sticky cache. This process is the client. With a fixed number of opens in
flight it then:

1. opens ``--burst`` incidents, timed: amends with ``AmendsClient.open_incident``
   (update-with-start; it answers once the incident is set up), bare with
   ``client.start_workflow`` followed by a query, which the worker answers once
   the workflow's first task has run. amends' incidents are of low severity: a
   business-hours clock, planned by a local activity after the open answers; the
   time until a visibility count of ``StageDeadline IS NOT NULL`` reaches every
   incident is measured too (``with deadline``);
2. opens the rest up to ``--open``, and reads the worker's memory once it is
   idle: VmRSS, and the Python heap (``sys.getallocatedblocks``), against the
   same figures read after a warm-up of a few incidents. Every incident is left
   waiting at ``detected``, as a real burst leaves them.

CPU is read from ``/proc`` for the worker and the dev server, and from
``time.process_time`` for this client. The last line is one JSON object.

The child is ``bench.scale_worker``: one worker, tuned as told, that writes
its figures to a file on ``SIGUSR1``; the bare one loads nothing of amends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.bare import BareIncident, BareReport
from bench.factories import report
from bench.yardstick import compile_bytecode, connect, proc_cpu
from worker.config import Settings
from worker.devserver import SQLITE_PRAGMAS
from worker.issuer import KeyRing as IssuerKeys
from worker.issuer import identity_toml
from worker.processes import free_port, wait_for_port
from worker.tuning import WorkerTuning
from workflows import search
from workflows.client import AmendsClient
from workflows.codec import KeyRing, new_key
from workflows.converter import encrypted_converter
from workflows.inputs import IncidentReport

BIN = Path(sys.executable).parent
KINDS = ("bare", "amends")
WARM = 20  # incidents opened before the baseline is read: caches, imports, the first of everything
MB = 1024 * 1024


# ---------------------------------------------------------------- the worker (a child process)


class WorkerProcess:
    """``python -m bench.scale_worker``, started and asked for its figures."""

    def __init__(self, kind: str, tuning: WorkerTuning, address: str, queue: str, data: Path) -> None:
        self.args = [sys.executable, "-m", "bench.scale_worker", "--kind", kind, "--address", address,
                     "--queue", queue, "--data", str(data), "--tuning", tuning.model_dump_json(),
                     "--stats", str(data / f"stats-{queue}.json")]
        self.stats_file = data / f"stats-{queue}.json"
        self.log = Path(tempfile.gettempdir()) / f"amends-scale-worker-{data.name}.log"  # kept after the run
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = await asyncio.create_subprocess_exec(*self.args, stdout=asyncio.subprocess.PIPE,
                                                             stderr=log, stdin=asyncio.subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=120)
        if line.strip() != b"ready":
            raise RuntimeError(f"the worker did not start ({self.proc.returncode}): {line!r}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def watching(self, work: Awaitable[Any]) -> Any:
        """``work``'s result; a worker that exits meanwhile stops the run rather than leaving opens to hang."""
        assert self.proc is not None
        job = asyncio.ensure_future(work)
        while not job.done():
            await asyncio.wait([job], timeout=1.0)
            if self.proc.returncode is not None or not Path(f"/proc/{self.proc.pid}").exists():
                job.cancel()
                raise RuntimeError(f"the worker exited ({self.proc.returncode}) while incidents were being opened; "
                                   f"its log: {self.log}")
        return job.result()

    async def figures(self) -> dict[str, float]:
        self.stats_file.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR1)
        for _ in range(600):
            if self.stats_file.exists():
                figures: dict[str, float] = json.loads(self.stats_file.read_text())
                return figures
            await asyncio.sleep(0.05)
        raise RuntimeError("the worker never wrote its figures")

    async def idle(self, quiet: float = 0.05, longest: float = 60.0) -> None:
        """Wait until the worker uses under ``quiet`` of a core over a second (its tails done)."""
        end = time.monotonic() + longest
        while time.monotonic() < end:
            before = proc_cpu(self.pid)
            await asyncio.sleep(1.0)
            if proc_cpu(self.pid) - before < quiet:
                return

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


# ---------------------------------------------------------------- the server


class DevServer:
    """A fresh dev server on its own SQLite file, set up as ``amends dev`` sets it up."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        cmd = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
               "--port", str(self.port), "--db-filename", str(self.data / "temporal.db"), "--log-level", "error",
               *search.cli_flags()]
        for pragma in SQLITE_PRAGMAS:
            cmd += ["--sqlite-pragma", pragma]
        self.proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
        await wait_for_port(self.port, "the dev server", timeout=60.0)

    def cpu(self) -> float:
        assert self.proc is not None
        return proc_cpu(self.proc.pid)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


# ---------------------------------------------------------------- opening


def low_report(key: str) -> IncidentReport:
    """bench's late tent, of low severity: its deadline on the business clock, as most of a burst's are."""
    return IncidentReport.model_validate(report(f"pi_noop_{key}", key=key).model_dump() | {"severity": "low"})


def opener(kind: str, client: Client, queue: str) -> tuple[Callable[[str], Any], Callable[[Any], Awaitable[None]]]:
    """What one open is made of (built before the clock starts) and the open itself."""
    if kind == "amends":
        amends = AmendsClient(client, queue)

        async def open_amends(r: IncidentReport) -> None:
            await amends.open_incident(r)

        return low_report, open_amends

    async def start_bare(r: BareReport) -> None:
        handle = await client.start_workflow(BareIncident.run, r, id=f"bare-{r.key}", task_queue=queue)
        await handle.query(BareIncident.snapshot)  # answered once its first workflow task has run

    return (lambda key: BareReport(key=key, customer=f"cus-{key}", what_happened="Your tent arrived late.")), \
        start_bare


@dataclass
class Outcome:
    failed: int = 0
    retries: int = 0


async def open_all(items: Sequence[Any], one: Callable[[Any], Awaitable[None]], in_flight: int,
                   outcome: Outcome) -> None:
    """Open every item, ``in_flight`` at a time, counting failures and retries in ``outcome``.

    An open the server refuses because the incident's first workflow task failed (under load it can outlast
    its timeout: ``Workflow Task in failed state``) is sent again, as a caller would: opens are idempotent.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def lane() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            for attempt in range(20):
                try:
                    await one(item)
                    break
                except Exception as err:  # counted and reported; the run goes on
                    if attempt < 19 and "failed state" in f"{err} {err.__cause__}":
                        outcome.retries += 1
                        await asyncio.sleep(0.5)
                        continue
                    outcome.failed += 1
                    if outcome.failed <= 3:
                        print(f"  an open failed: {type(err).__name__}: {err}", flush=True)
                    break

    await asyncio.gather(*(lane() for _ in range(in_flight)))


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def deadlines_visible(client: Client, expected: int, longest: float = 120.0) -> int:
    """Poll visibility until ``expected`` incidents show a deadline; the last count."""
    end = time.monotonic() + longest
    seen = 0
    while time.monotonic() < end:
        seen = await count(client, "StageDeadline IS NOT NULL")
        if seen >= expected:
            break
        await asyncio.sleep(0.25)
    return seen


# ---------------------------------------------------------------- one measurement


def step(text: str) -> None:
    print(f"    {time.strftime('%H:%M:%S')} {text}", flush=True)


@dataclass
class Case:
    kind: str
    tuning: WorkerTuning
    label: str = ""


async def measure(case: Case, opens: int, burst: int, in_flight: int, root: Path) -> dict[str, Any]:
    data = root / f"{case.kind}-{uuid.uuid4().hex[:6]}"
    data.mkdir()
    (data / "codec-keys.toml").write_text(f'bench = "{new_key()}"\n')
    ring = KeyRing.load(data / "codec-keys.toml")
    keys = IssuerKeys(data / "issuer").ensure()
    (data / "identity.toml").write_text(identity_toml("https://bench.amends.local", keys.jwks))
    server = DevServer(data)
    worker: WorkerProcess | None = None
    try:
        await server.start()
        step(f"{case.kind}: the dev server is up")
        client = await asyncio.wait_for(connect(server.address, encrypted_converter(ring)), timeout=120)
        queue = f"scale-{case.kind}"
        worker = WorkerProcess(case.kind, case.tuning, server.address, queue, data)
        await worker.start()
        step(f"{case.kind}: the worker polls")
        make, one = opener(case.kind, client, queue)
        run = uuid.uuid4().hex[:6]
        items = [make(f"{run}-{n}") for n in range(WARM + opens)]
        warm, burst_outcome, rest = Outcome(), Outcome(), Outcome()
        await worker.watching(open_all(items[:WARM], one, min(in_flight, WARM), warm))
        await worker.idle()
        base = await worker.figures()
        step(f"{case.kind}: warmed up with {WARM}; the burst of {burst}")

        burst_items, rest_items = items[WARM:WARM + burst], items[WARM + burst:]
        w0, s0, c0, t0 = proc_cpu(worker.pid), server.cpu(), time.process_time(), time.perf_counter()
        await worker.watching(open_all(burst_items, one, in_flight, burst_outcome))
        opened_s = time.perf_counter() - t0
        w1, s1, c1 = proc_cpu(worker.pid), server.cpu(), time.process_time()
        with_deadline_s = None
        if case.kind == "amends":
            await deadlines_visible(client, WARM + burst)
            with_deadline_s = time.perf_counter() - t0

        step(f"{case.kind}: the burst took {time.perf_counter() - t0:.1f}s; the other {len(rest_items)}")
        t1 = time.perf_counter()
        await worker.watching(open_all(rest_items, one, in_flight, rest))
        rest_s = time.perf_counter() - t1
        await worker.idle()
        after = await worker.figures()
        total = WARM + opens
        checks: dict[str, Any] = {"running": await count(client, "ExecutionStatus = 'Running'")}
        if case.kind == "amends":
            checks["with_deadline"] = await deadlines_visible(client, total, longest=60.0)
            checks["at_detected"] = await count(client, "RecoveryStage = 'detected'")
        held = after["cached"] - base["cached"]
        return {
            "kind": case.kind, "label": case.label, "tuning": case.tuning.model_dump(), "open": total,
            "failed": warm.failed + burst_outcome.failed + rest.failed, "burst_retries": burst_outcome.retries,
            "retries": warm.retries + burst_outcome.retries + rest.retries, "checks": checks,
            "burst": burst, "burst_per_s": round(burst / opened_s, 1),
            "burst_with_deadline_per_s": round(burst / with_deadline_s, 1) if with_deadline_s else None,
            "burst_worker_cpu_ms": round(1000 * (w1 - w0) / burst, 2),
            "burst_server_cpu_ms": round(1000 * (s1 - s0) / burst, 2),
            "burst_client_cpu_ms": round(1000 * (c1 - c0) / burst, 2),
            "rest_per_s": round(len(rest_items) / rest_s, 1) if rest_items else None,
            "rss_base_mb": round(base["rss_mb"], 1), "rss_mb": round(after["rss_mb"], 1),
            "hwm_mb": round(after["hwm_mb"], 1), "cached": after["cached"],
            "mb_per_cached": round((after["rss_mb"] - base["rss_mb"]) / held, 4) if held > 0 else None,
            "py_blocks_per_cached": round((after["py_blocks"] - base["py_blocks"]) / held) if held > 0 else None,
            "load": round(os.getloadavg()[0], 2),
        }
    finally:
        if worker is not None:
            await worker.stop()
        await server.stop()
        shutil.rmtree(data, ignore_errors=True)


# ---------------------------------------------------------------- the runs


def show(row: dict[str, Any]) -> None:
    deadline = f" ({row['burst_with_deadline_per_s']}/s with deadline)" if row["burst_with_deadline_per_s"] else ""
    print(f"  {row['kind']:6} {row['label']:26} burst {row['burst_per_s']:6.1f}/s{deadline}; worker "
          f"{row['burst_worker_cpu_ms']} ms, server {row['burst_server_cpu_ms']} ms, client "
          f"{row['burst_client_cpu_ms']} ms per open; RSS {row['rss_base_mb']} -> {row['rss_mb']} MB with "
          f"{row['open']} open ({row['cached']} cached, {row['mb_per_cached']} MB each); failed {row['failed']}, "
          f"retried {row['retries']} ({row['burst_retries']} in the burst); "
          f"{json.dumps(row['checks'])}; load {row['load']}", flush=True)


def tuned(base: WorkerTuning, **changes: int) -> WorkerTuning:
    return base.model_copy(update=changes)


def tuning_cases(opens: int) -> list[Case]:
    sdk = WorkerTuning(max_cached_workflows=1000, max_concurrent_workflow_tasks=100, max_concurrent_activities=100,
                       max_concurrent_local_activities=100, workflow_task_pollers=5, activity_task_pollers=5)
    return [
        Case("amends", sdk, "SDK defaults"),
        Case("amends", tuned(sdk, max_cached_workflows=max(opens, 1000) + WARM), "cache holds all"),
        Case("amends", tuned(sdk, max_cached_workflows=200), "cache 200"),
        Case("amends", tuned(sdk, max_concurrent_workflow_tasks=20, max_concurrent_local_activities=20),
             "20 tasks, 20 local act."),
        Case("amends", tuned(sdk, max_concurrent_workflow_tasks=250, max_concurrent_local_activities=250),
             "250 tasks, 250 local act."),
        Case("amends", tuned(sdk, workflow_task_pollers=2, activity_task_pollers=2), "2 pollers"),
        Case("amends", tuned(sdk, workflow_task_pollers=10, activity_task_pollers=10), "10 pollers"),
        Case("bare", sdk, "SDK defaults"),
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="amends-scale-"))
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        if args.tune:
            cases = tuning_cases(args.open)
        else:
            tuning = Settings().tuning  # amends worker's defaults (worker.settings), for both kinds
            if args.cache:
                tuning = tuned(tuning, max_cached_workflows=args.cache)
            cases = [Case(kind, tuning, "defaults") for kind in args.kinds.split(",")]
        print(f"{len(cases)} measurement(s): {args.open} open, a burst of {args.burst}, {args.in_flight} in flight, "
              f"{os.cpu_count()} CPUs", flush=True)
        for case in cases:
            row = await measure(case, args.open, args.burst, args.in_flight, root)
            show(row)
            rows.append(row)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary: dict[str, Any] = {"open": args.open, "burst": args.burst, "in_flight": args.in_flight,
                               "quick": args.quick, "tune": args.tune, "rows": rows}
    by_kind = {r["kind"]: r for r in rows if r["label"] in ("defaults", "SDK defaults")}
    if "bare" in by_kind and "amends" in by_kind:
        bare, amends = by_kind["bare"], by_kind["amends"]
        summary |= {
            "rss_ratio": round(amends["rss_mb"] / bare["rss_mb"], 3),
            "rss_growth_ratio": round((amends["rss_mb"] - amends["rss_base_mb"])
                                      / max(bare["rss_mb"] - bare["rss_base_mb"], 0.1), 3),
            "burst_ratio": round(amends["burst_per_s"] / bare["burst_per_s"], 3),
            "burst_with_deadline_ratio": round(amends["burst_with_deadline_per_s"] / bare["burst_per_s"], 3),
        }
    summary["seconds"] = round(time.perf_counter() - began)
    summary["nproc"] = os.cpu_count()
    return summary


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, help="incidents open when memory is read (default 5000; quick 800; "
                                                 "tune 1500)")
    parser.add_argument("--burst", type=int, help="the timed burst, the first of them (default 2000; quick 500; "
                                                  "tune 1000)")
    parser.add_argument("--in-flight", type=int, default=100, help="opens in flight at once (default 100)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="which of bare, amends (default both)")
    parser.add_argument("--cache", type=int, help="the workers' max_cached_workflows (default: amends' default)")
    parser.add_argument("--quick", action="store_true", help="a short run (about two minutes)")
    parser.add_argument("--tune", action="store_true", help="the tuning table: amends under several settings")
    args = parser.parse_args(argv)
    args.open = args.open or (800 if args.quick else 1500 if args.tune else 5000)
    args.burst = min(args.open, args.burst or (500 if args.quick else 1000 if args.tune else 2000))
    return args


def main(argv: list[str] | None = None) -> None:
    compile_bytecode()
    summary = asyncio.run(run(parse(argv)))
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()

"""Throughput with one and with three `amends worker` processes on one task queue, against one dev server.

    .venv/bin/python -m bench.scale_out [--incidents 60] [--in-flight 20] [--workers 1 3]

It starts one Temporal dev server (as `amends dev` does: SQLite in WAL mode),
localstripe, an SMTP sink, a webhook receiver and a credential issuer, then
for each worker count starts that many real `amends worker` processes on a
fresh task queue (configured from the environment, payloads sealed, as a
deployment's replicas are), drives incidents through the recovery with a
fixed number in flight (the same eight steps as ``bench/throughput.py``:
open, apologise, needs, a proposal with a refund and a replacement, accept,
confirm, close, post-mortem; every step signed by its actor's credential),
and reports incidents/s and the ratio to the first count.

What to read from it is the shape: on a machine with as many cores as the
server and the workers need, more workers raise the rate until the server
is the limit; on 2 cores the server, the workers and this driver share the
same CPU, so the curve flattens early. The load average is printed with the
numbers: other work on the machine moves them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.identity import IdentityConfig
from activities.payments import stripe_client
from activities.webhooks import TARGETS, local_urls
from bench.factories import AGENT, CUSTOMER, MANAGER
from bench.throughput import one_incident
from worker.issuer import Issuer, KeyRing, identity_toml
from worker.mailsink import start_sink
from worker.processes import free_port, wait_for_port
from worker.webhook_sink import start_webhook_sink
from workflows import search
from workflows.client import AmendsClient
from workflows.codec import CURRENT_ENV, KEYS_ENV, new_key
from workflows.codec import KeyRing as CodecKeys
from workflows.converter import encrypted_converter

BIN = Path(sys.executable).parent
SQLITE = ["--sqlite-pragma", "journal_mode=wal"]  # as amends dev runs it (worker/devserver.py)


class Stand:
    """Everything but the workers: the server, the stand-ins, the keys and the environment the workers get."""

    def __init__(self, data: Path) -> None:
        self.data = data
        keys = data / "codec-keys.toml"
        keys.write_text(f'bench = "{new_key()}"\n')
        self.codec = CodecKeys.load(keys)
        self.ring = KeyRing(data / "issuer").ensure()
        self.issuer = Issuer("https://bench.amends.local", self.ring)
        (data / "identity.toml").write_text(identity_toml(self.issuer.issuer, self.ring.jwks))
        self.identity = IdentityConfig.load(data / "identity.toml")
        self.secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        self.stripe_port, self.smtp_port, self.hooks_port = free_port(), free_port(), free_port()
        self.env_base = {KEYS_ENV: str(keys), CURRENT_ENV: "bench"}

    async def __aenter__(self) -> Stand:
        self.stripe_proc = await asyncio.create_subprocess_exec(
            str(BIN / "localstripe"), "--port", str(self.stripe_port), "--from-scratch",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        self.sink, _ = start_sink("127.0.0.1", self.smtp_port)
        self.hooks, _ = await start_webhook_sink("127.0.0.1", self.hooks_port, self.secret)
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN / "temporal"), data_converter=encrypted_converter(self.codec),
            search_attributes=search.ALL, dev_server_log_level="error",
            dev_server_extra_args=["--db-filename", str(self.data / "temporal.db"), *SQLITE],
        )
        await wait_for_port(self.stripe_port, "localstripe", timeout=30.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.env.shutdown()
        await self.hooks.cleanup()
        self.sink.stop()
        self.stripe_proc.terminate()
        await self.stripe_proc.wait()

    @property
    def client(self) -> Client:
        return self.env.client

    def worker_env(self, queue: str) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.hooks_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))}
        return env | self.env_base | {
            "TEMPORAL_ADDRESS": self.client.service_client.config.target_host, "AMENDS_TASK_QUEUE": queue,
            "AMENDS_IDENTITY": str(self.data / "identity.toml"), "AMENDS_CARE_EMAIL": "care@example.com",
            "AMENDS_WEBHOOK_SECRET": self.secret, "AMENDS_SMTP_HOST": "127.0.0.1",
            "AMENDS_SMTP_PORT": str(self.smtp_port), "AMENDS_SMTP_STARTTLS": "false",
            "AMENDS_STRIPE_API_KEY": "sk_test_amends_bench",
            "AMENDS_STRIPE_API_BASE": f"http://127.0.0.1:{self.stripe_port}",
            **{f"AMENDS_{t.upper()}_URL": url for t, url in local_urls(base).items() if t in TARGETS},
        }


async def start_workers(stand: Stand, queue: str, count: int) -> list[asyncio.subprocess.Process]:
    logs = [stand.data / f"{queue}-{n}.log" for n in range(count)]
    procs = []
    for log in logs:
        with open(log, "wb") as out:
            procs.append(await asyncio.create_subprocess_exec(
                str(BIN / "amends"), "worker", env=stand.worker_env(queue), stdout=out, stderr=out,
                stdin=asyncio.subprocess.DEVNULL))
    for proc, log in zip(procs, logs, strict=True):
        for _ in range(1200):
            if proc.returncode is not None:
                raise RuntimeError(f"amends worker exited ({proc.returncode}):\n{log.read_text()}")
            if "worker polling task queue" in log.read_text():
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"amends worker never polled:\n{log.read_text()}")
    return procs


async def measure(stand: Stand, workers: int, incidents: int, in_flight: int) -> float:
    queue = f"bench-{workers}w-{uuid.uuid4().hex[:6]}"
    procs = await start_workers(stand, queue, workers)
    try:
        stripe = stripe_client("sk_test_amends_bench", f"http://127.0.0.1:{stand.stripe_port}")
        amends = {a.role: AmendsClient(stand.client, queue, signer=stand.issuer.signer(a))
                  for a in (AGENT, CUSTOMER, MANAGER)}
        # Warm every worker's cache and the server's task queue before the clock starts.
        await asyncio.gather(*(one_incident(amends, stripe, f"warmup-{n}-{uuid.uuid4().hex[:6]}")
                               for n in range(workers)))
        gate = asyncio.Semaphore(in_flight)

        async def run(n: int) -> None:
            async with gate:
                await one_incident(amends, stripe, f"bench-{n}-{uuid.uuid4().hex[:6]}")

        start = time.perf_counter()
        await asyncio.gather(*(run(n) for n in range(incidents)))
        return incidents / (time.perf_counter() - start)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            await proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=60)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="amends-scale-"))
    try:
        async with Stand(data) as stand:
            results = {}
            for count in args.workers:
                load = os.getloadavg()[0]
                results[count] = await measure(stand, count, args.incidents, args.in_flight)
                print(f"{count} worker(s): {results[count]:.2f} incidents/s (load average {load:.1f} before)",
                      flush=True)
        base = results[args.workers[0]]
        print(f"\n{args.incidents} incidents, {args.in_flight} in flight, each through 8 steps to the post-mortem, "
              f"{os.cpu_count()} CPUs")
        for count, rate in results.items():
            print(f"  {rate:6.2f} incidents/s  ×{rate / base:.2f}  {count} amends worker process(es)")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

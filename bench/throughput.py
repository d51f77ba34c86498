"""How many incidents per second the embedded dev server sustains, per SQLite setting.

    .venv/bin/python -m bench.throughput [--incidents 60] [--in-flight 20]

For each setting it starts a fresh dev server on a SQLite file (as `amends dev`
does), a worker, localstripe and an SMTP sink, then drives incidents through
the recovery (open, apologise, needs, a proposal with a refund and a
replacement, accept, confirm, close, post-mortem) with a fixed number in
flight, and reports incidents/s and the ratio to the first setting. Ratios
are what to compare: absolute numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.identity import IdentityConfig
from activities.notices import MailSettings
from activities.payments import stripe_client
from bench.factories import AGENT, CUSTOMER, MANAGER, paid_intent, postmortem, report, stage_of, until_fulfilled
from worker.config import Settings
from worker.issuer import Issuer, KeyRing, identity_toml
from worker.mailsink import start_sink
from worker.main import build_worker
from worker.processes import free_port, wait_for_port
from workflows import search
from workflows.client import AmendsClient
from workflows.converter import data_converter
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    CloseInput,
    FulfilmentConfirmation,
    NeedsInput,
    RemedyProposal,
    Role,
)

BIN = Path(sys.executable).parent
SETTINGS = {
    "default (rollback journal, synchronous=full)": [],
    "journal_mode=wal": ["journal_mode=wal"],
    "journal_mode=wal, synchronous=normal": ["journal_mode=wal", "synchronous=normal"],
}


async def one_incident(as_: dict[Role, AmendsClient], stripe, key: str) -> None:
    """One incident, each step signed by its actor's credential (``as_[role]`` is that actor's client)."""
    pi = await paid_intent(stripe, 8_000)
    rep = report(pi, key=key)
    agent = as_[Role.AGENT]
    await agent.open_incident(rep)
    await agent.apologise(key, ApologyInput())
    await agent.record_needs(key, NeedsInput(needs="money back and a tent"))
    await agent.propose_remedy(key, RemedyProposal(items=[
        {"kind": "refund", "amount": {"amount": 2_000, "currency": "USD"}},
        {"kind": "replacement", "description": "a new tent"}]))
    await as_[Role.CUSTOMER].accept_remedy(key, AcceptInput(remedy=1))
    await agent.confirm_fulfilment(key, FulfilmentConfirmation(item_id="remedy-1/item-2"))
    await until_fulfilled(partial(stage_of, agent, key))
    await agent.close(key, CloseInput())
    await as_[Role.MANAGER].record_postmortem(key, postmortem())


async def measure(pragmas: list[str], incidents: int, in_flight: int, stripe_url: str, smtp_port: int) -> float:
    data = Path(tempfile.mkdtemp(prefix="amends-bench-"))
    args = ["--db-filename", str(data / "temporal.db")]
    for p in pragmas:
        args += ["--sqlite-pragma", p]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=data_converter,
        search_attributes=search.ALL, dev_server_extra_args=args, dev_server_log_level="error",
    )
    try:
        # A local issuer, as amends dev runs one: every step carries a credential, as in production.
        ring = KeyRing(data / "issuer").ensure()
        issuer = Issuer("https://bench.amends.local", ring)
        (data / "identity.toml").write_text(identity_toml(issuer.issuer, ring.jwks))
        settings = Settings(task_queue="bench", stripe_api_key="sk_test_amends_bench", stripe_api_base=stripe_url,
                            mail=MailSettings(host="127.0.0.1", port=smtp_port),
                            identity=IdentityConfig.load(data / "identity.toml"))
        stripe = stripe_client(settings.stripe_api_key, stripe_url)
        async with build_worker(env.client, settings):
            amends = {a.role: AmendsClient(env.client, "bench", signer=issuer.signer(a))
                      for a in (AGENT, CUSTOMER, MANAGER)}
            await one_incident(amends, stripe, f"warmup-{uuid.uuid4().hex[:6]}")
            gate = asyncio.Semaphore(in_flight)

            async def run(n: int) -> None:
                async with gate:
                    await one_incident(amends, stripe, f"bench-{n}-{uuid.uuid4().hex[:6]}")

            start = time.perf_counter()
            await asyncio.gather(*(run(n) for n in range(incidents)))
            return incidents / (time.perf_counter() - start)
    finally:
        await env.shutdown()
        shutil.rmtree(data, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=60)
    parser.add_argument("--in-flight", type=int, default=20)
    args = parser.parse_args()
    stripe_port, smtp_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(str(BIN / "localstripe"), "--port", str(stripe_port), "--from-scratch",
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    controller, _ = start_sink("127.0.0.1", smtp_port)
    try:
        await wait_for_port(stripe_port, "localstripe", timeout=30.0)
        results = {}
        for name, pragmas in SETTINGS.items():
            results[name] = await measure(pragmas, args.incidents, args.in_flight, f"http://127.0.0.1:{stripe_port}",
                                          smtp_port)
            print(f"{name}: {results[name]:.2f} incidents/s", flush=True)
        base = next(iter(results.values()))
        print(f"\n{args.incidents} incidents, {args.in_flight} in flight, each through 8 steps to the post-mortem")
        for name, rate in results.items():
            print(f"  {rate:6.2f} incidents/s  ×{rate / base:.2f}  {name}")
    finally:
        controller.stop()
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    asyncio.run(main())

"""The Temporal server dies (kill -9) with incidents at every stage, and comes back on the same file.

Every incident carries on where it was; every notice it owed goes out, and a notice sent twice is
sent under the same Message-ID (its idempotency key), never as a second, different message.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from tests.support.codec import data_converter
from tests.support.factories import report
from tests.support.identity import Amends
from tests.support.steps import WALK, take
from worker.main import build_worker
from worker.processes import free_port, spawn, wait_for_port
from workflows import search

BIN = Path(sys.executable).parent
# The notice each step of the walk owes the customer.
NOTICE = {"apologise": "apology", "propose_remedy": "proposal", "accept_remedy": "confirmation", "close": "closing"}


def dev_server(data: Path, port: int, ui: int):
    cmd = [str(BIN / "temporal"), "server", "start-dev", "--db-filename", str(data / "temporal.db"),
           "--port", str(port), "--ui-port", str(ui), "--ip", "127.0.0.1", "--log-level", "error",
           *search.cli_flags()]
    return spawn("temporal", cmd, data / "temporal.log", data)


async def persist(call, tries: int = 200):
    """``call()``, again while the server is coming back."""
    for _ in range(tries):
        try:
            return await call()
        except RPCError:
            await asyncio.sleep(0.1)
    return await call()


async def test_a_server_killed_mid_flight_loses_no_notice_and_sends_none_twice(tmp_path, settings, mail_sink):
    port, ui = free_port(), free_port()
    server = dev_server(tmp_path, port, ui)
    try:
        await wait_for_port(port, "the Temporal dev server", server)
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter)
        queue = f"amends-crash-{uuid.uuid4().hex[:6]}"
        async with build_worker(client, settings.model_copy(update={"task_queue": queue})):
            amends = Amends(client, queue)
            walked: dict[str, int] = {}
            for n in range(20):  # 0 to 5 steps of the walk: detected ... closed
                rep = report(None, key=f"crash-{n}-{uuid.uuid4().hex[:6]}")
                await amends.open_incident(rep)
                for step in WALK[: n % 6]:
                    await take(amends, rep.incident_key, step)
                walked[rep.incident_key] = n % 6

            os.killpg(server.proc.pid, signal.SIGKILL)  # notices, work orders and timers in flight
            server.proc.wait()
            server = dev_server(tmp_path, port, ui)
            await wait_for_port(port, "the Temporal dev server, again", server)

            # Every incident carries on: the next step of its walk is taken.
            for key, done in walked.items():
                await persist(lambda key=key, done=done: take(amends, key, WALK[done]))
                walked[key] = done + 1
            for key, done in walked.items():
                owed = sorted(NOTICE[s] for s in WALK[:done] if s in NOTICE)
                email = f"alex.{key}@example.com"
                for _ in range(600):
                    got = [m for m in mail_sink.to(email)]
                    if sorted({m["X-Amends-Notice"] for m in got}) == owed:
                        break
                    await asyncio.sleep(0.1)
                ids = Counter((m["X-Amends-Notice"], m["Message-ID"]) for m in got)
                assert sorted(kind for kind, _ in ids) == owed, (key, ids)
    finally:
        server.stop()

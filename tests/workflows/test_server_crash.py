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
from tests.support.policy import policy
from tests.support.steps import WALK, take, wait_for
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


async def test_a_server_killed_mid_flight_loses_no_notice_and_sends_none_twice(
        tmp_path, settings, mail_sink, webhook_sink):
    port, ui = free_port(), free_port()
    # Critical incidents breach in seconds here: the apology is due in 8 s, the team lead (Slack) paged 3 s later.
    quick = policy(
        deadlines__detected__critical="8s", warn_at=[],
        targets={"team_lead": {"name": "Team lead", "webhook_url": f"{webhook_sink.url}/slack-crash",
                               "format": "slack"}},
        ladder={"repeats": 0, "repeat_after": "1h", "levels": [
            {"level": 1, "target": "owner", "after": "0s"}, {"level": 2, "target": "team_lead", "after": "3s"}]},
    )
    server = dev_server(tmp_path, port, ui)
    try:
        await wait_for_port(port, "the Temporal dev server", server)
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter)
        queue = f"amends-crash-{uuid.uuid4().hex[:6]}"
        async with build_worker(client, settings.model_copy(update={"task_queue": queue, "sla_policy": quick})):
            amends = Amends(client, queue)
            walked: dict[str, int] = {}
            for n in range(20):  # 0 to 5 steps of the walk: detected ... closed
                rep = report(None, key=f"crash-{n}-{uuid.uuid4().hex[:6]}",
                             severity="critical" if n % 6 == 0 else "high")
                await amends.open_incident(rep)
                for step in WALK[: n % 6]:
                    await take(amends, rep.incident_key, step)
                walked[rep.incident_key] = n % 6

            first = next(iter(walked))
            await wait_for(amends, first, lambda s: s.escalation_level >= 1, tries=400)
            os.killpg(server.proc.pid, signal.SIGKILL)  # notices, pages, work orders and timers in flight
            server.proc.wait()
            server = dev_server(tmp_path, port, ui)
            await wait_for_port(port, "the Temporal dev server, again", server)

            await asyncio.sleep(6)  # the ladder goes on meanwhile
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
            # Every page the timelines record reached Slack, under its own key (a resend keeps the key).
            paged = 0
            for key in walked:
                snap = await amends.snapshot(key)
                for entry in snap.timeline:
                    if entry.step == "escalate" and "level 2" in entry.detail:
                        page = f"incident-{key}/detected/level-2-repeat-0"
                        for _ in range(300):
                            if any(r.headers.get("webhook-id") == page for r in webhook_sink.at("/slack-crash")):
                                break
                            await asyncio.sleep(0.1)
                        assert any(r.headers.get("webhook-id") == page for r in webhook_sink.at("/slack-crash"))
                        paged += 1
            # No page beyond those recorded; each paged stage hears it was resolved once its step was taken.
            for _ in range(300):
                received = {r.headers.get("webhook-id") for r in webhook_sink.at("/slack-crash")}
                pages = {i for i in received if not i.endswith("/resolved")}
                if {i.replace("/level-2-repeat-0", "/resolved") for i in pages} <= received:
                    break
                await asyncio.sleep(0.1)
            assert paged >= 1 and len(pages) == paged
            assert {i.replace("/level-2-repeat-0", "/resolved") for i in pages} <= received
    finally:
        server.stop()

"""The `temporal` CLI, as a backend in another language would run it against a test server.

Each step's credential comes from ``amends token --incident --step --input``,
signing with the test issuer's key ring (which the tests' workers trust), as
a backend would get one from its identity provider: in this process (click's
CliRunner, ``tests.support.cli.invoke_now``), or as a real process with
``process=True``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

TEMPORAL = str(Path(sys.executable).parent / "temporal")


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def cli(env, *args: str, check: bool = True) -> Ran:
    # Asynchronous: the worker shares this event loop and must keep polling
    # while the CLI waits for an update's result.
    address = env.client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, "--address", address, "--namespace", "default",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    ran = Ran(proc.returncode or 0, out.decode(), err.decode())
    if check and ran.returncode != 0:
        raise AssertionError(f"temporal {' '.join(args)} failed:\n{ran.stdout}\n{ran.stderr}")
    return ran


async def update(env, wid: str, name: str, payload: dict, check: bool = True) -> Ran:
    return await cli(env, "workflow", "update", "execute", "--workflow-id", wid, "--name", name,
                     "--input", json.dumps(payload), check=check)


async def credential(wid: str, step: str, payload: dict, actor: dict, process: bool = False) -> str:
    """A credential for ``actor`` bound to this incident, step and exactly ``payload``'s fields, printed by
    ``amends token`` (run as a process of its own if ``process``)."""
    from tests.support.cli import amends, invoke_now
    from tests.support.identity import ISSUER, RING

    args = ("token", "--keys", str(RING.directory), "--issuer", ISSUER, "--name", actor["name"], "--role",
            actor["role"], "--incident", wid.removeprefix("incident-"), "--step", step, "--input", json.dumps(payload))
    # Signing only, nothing connects: in-process it needs no thread.
    ran = await amends(*args, env=dict(os.environ)) if process else invoke_now(*args, env=dict(os.environ))
    if ran.code != 0:
        raise AssertionError(f"amends token for {step} failed: {ran.err}")
    return ran.out.strip()


async def signed_update(env, wid: str, name: str, payload: dict, actor: dict, check: bool = True) -> Ran:
    """``update`` with ``payload`` and a fresh credential for ``actor`` bound to it."""
    cred = await credential(wid, name, payload, actor)
    return await update(env, wid, name, payload | {"credential": cred}, check=check)


async def listed(env, query: str) -> list[str]:
    out = (await cli(env, "workflow", "list", "--query", query, "--output", "json")).stdout
    rows = json.loads(out) if out.strip() else []
    return [r["execution"]["workflowId"] for r in rows]

"""The `temporal` CLI, as a backend in another language would run it against a test server."""

from __future__ import annotations

import asyncio
import json
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


async def listed(env, query: str) -> list[str]:
    out = (await cli(env, "workflow", "list", "--query", query, "--output", "json")).stdout
    rows = json.loads(out) if out.strip() else []
    return [r["execution"]["workflowId"] for r in rows]

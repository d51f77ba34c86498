"""Running the ``amends`` command line (and other commands) as real processes, awaited with asyncio.

The step commands act as whoever ``AMENDS_TOKEN`` names: ``signed_in``
gives an environment a session token of the test issuer, whose keys the
tests' workers trust (``tests.support.identity``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.codec import ENV as CODEC_ENV
from tests.support.identity import TEST_ISSUER
from workflows.inputs import Actor, Role

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def run(*args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 60) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    return Ran(proc.returncode, out.decode(), err.decode())


async def amends(*args: str, env: dict[str, str], stdin: str | None = None) -> Ran:
    return await run(sys.executable, "-m", "worker.cli", *args, env=env, stdin=stdin)


def base_env(address: str, task_queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))}
    env.update(TEMPORAL_ADDRESS=address, AMENDS_TASK_QUEUE=task_queue, USER="priya", **CODEC_ENV)
    return env


def signed_in(env: dict[str, str], name: str, role: str = "agent") -> dict[str, str]:
    """``env`` with a session token for ``name`` acting as ``role``."""
    return env | {"AMENDS_TOKEN": TEST_ISSUER.session_token(Actor(name=name, role=Role(role)))}


def open_options(key: str, payment_ref: str) -> list[str]:
    return [
        "--key", key,
        "--customer-id", f"cus-{key}",
        "--customer-name", "Alex Rivera",
        "--email", f"alex.{key}@example.com",
        "--order-id", f"ord-{key}",
        "--amount", "80.00",
        "--currency", "USD",
        "--payment-ref", payment_ref,
        "--category", "late_delivery",
        "--severity", "high",
        "--what", "Your tent arrived nine days late.",
        "--impact", "You left for your trip without it.",
        "--owner-name", "Olga Brandt",
        "--owner-email", "olga@example.com",
        "--staff", "Kevin Lomax",
    ]

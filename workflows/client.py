"""A thin typed client for backends and agents written in Python.

Backends in other languages call the same workflow, updates and query by
name with JSON (see the README); this module only adds types and the
opening rules: one incident per key, and a closed incident is never
started again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from workflows import search
from workflows.incident import IncidentRecovery
from workflows.inputs import IncidentReport, StepInput
from workflows.snapshot import Snapshot
from workflows.stages import AFTER_CLOSURE, Stage
from workflows.steps import REGISTRY, StepSpec

DEFAULT_TASK_QUEUE = "amends"


class IncidentClosed(Exception):
    """The key belongs to an incident that is closed: open a new one with a new key."""


class StepRefused(Exception):
    """A guard refused the step; nothing was written. ``str()`` says why."""


class InvalidInput(StepRefused):
    """The input broke a contract rule (named with its field); nothing was written."""


def workflow_id(incident_key: str) -> str:
    return f"incident-{incident_key}"


def summary(report: IncidentReport) -> str:
    return (
        f"{report.severity} {report.category.replace('_', ' ')} · {report.customer.customer_id} · "
        f"order {report.order.order_id}"
    )


def details(report: IncidentReport) -> str:
    return (
        f"**Customer:** {report.customer.customer_id}\n\n**Order:** {report.order.order_id} "
        f"({report.order.amount_paid})\n\n**Severity:** {report.severity}\n\n"
        f"**What happened:** {report.what_happened}\n\n**Impact:** {report.impact}"
    )


class AmendsClient:
    """Open incidents and take their steps: ``await amends.apologise(key, ApologyInput(...))``.

    There is a method for every step of the registry (``workflows/steps.py``),
    named after its update; ``step(key, name, input)`` is the same by name.
    """

    def __init__(self, client: Client, task_queue: str = DEFAULT_TASK_QUEUE,
                 steps: Mapping[str, StepSpec[Any]] = REGISTRY) -> None:
        self.client = client
        self.task_queue = task_queue
        self.steps = steps

    def handle(self, incident_key: str) -> WorkflowHandle[Any, Snapshot]:
        return self.client.get_workflow_handle(workflow_id(incident_key), result_type=Snapshot)

    async def open_incident(self, report: IncidentReport) -> Snapshot:
        """Open the incident, or return it if this key is already open.

        ``USE_EXISTING`` makes a second open of a running incident return it;
        ``ALLOW_DUPLICATE_FAILED_ONLY`` stops a finished incident's id from
        silently starting a new run (the default policy would allow that),
        while an open whose input was refused (its run failed at once, having
        done nothing) can be sent again, corrected, under the same key.
        """
        try:
            handle = await self.client.start_workflow(
                IncidentRecovery.run,
                report,
                id=workflow_id(report.incident_key),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(k, v) for k, v in search.values(report, Stage.DETECTED) if v is not None]
                ),
                static_summary=summary(report),
                static_details=details(report),
                task_timeout=timedelta(seconds=10),
            )
        except WorkflowAlreadyStartedError:  # only a finished incident's id gets here
            raise IncidentClosed(
                f"incident {report.incident_key} is closed and finished; open a new incident with a new key"
            ) from None
        snap = await handle.query(IncidentRecovery.snapshot)
        # The first workflow task loads the SLA policy (a local activity); wait
        # for it briefly so that the answer already carries the deadline.
        for _ in range(50):
            if snap.sla_ready:
                break
            await asyncio.sleep(0.1)
            snap = await handle.query(IncidentRecovery.snapshot)
        if snap.stage in AFTER_CLOSURE:
            closed = snap.closed_at.date().isoformat() if snap.closed_at else "an earlier date"
            raise IncidentClosed(
                f"incident {report.incident_key} was closed on {closed}; open a new incident with a new key"
            )
        return snap

    async def snapshot(self, incident_key: str) -> Snapshot:
        return await self.handle(incident_key).query(IncidentRecovery.snapshot)

    async def step(self, incident_key: str, name: str, step: StepInput, update_id: str | None = None) -> Snapshot:
        """Take step ``name`` with ``step`` as its input; a refusal raises ``StepRefused`` (nothing written)."""
        spec = self.steps.get(name)
        if spec is None:
            raise AttributeError(f"no step {name!r}; steps: {', '.join(self.steps)}")
        if not isinstance(step, spec.input):
            raise TypeError(f"{name} takes {spec.input.__name__}, not {type(step).__name__}")
        try:
            result: Snapshot = await self.handle(incident_key).execute_update(
                name, step, id=update_id, result_type=Snapshot
            )
            return result
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "StepRefused":
                raise StepRefused(cause.message) from None
            if isinstance(cause, ApplicationError) and cause.type == "InvalidInput":
                raise InvalidInput(cause.message) from None
            raise

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Snapshot]]:
        # Only called for names the class does not have: the registry's steps.
        if name.startswith("_") or name not in self.__dict__.get("steps", REGISTRY):
            raise AttributeError(name)

        async def take(incident_key: str, step: StepInput, update_id: str | None = None) -> Snapshot:
            return await self.step(incident_key, name, step, update_id)

        take.__name__ = name
        return take

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
from workflows.signing import Signer, bind
from workflows.snapshot import Snapshot, StepResult
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
                 steps: Mapping[str, StepSpec[Any]] = REGISTRY, signer: Signer | None = None) -> None:
        self.client = client
        self.task_queue = task_queue
        self.steps = steps
        # Signs each step's credential; without one, steps must arrive with theirs.
        self.signer = signer

    def handle(self, incident_key: str) -> WorkflowHandle[Any, Snapshot]:
        return self.client.get_workflow_handle(workflow_id(incident_key), result_type=Snapshot)

    async def open_incident(self, report: IncidentReport) -> Snapshot:
        """Open the incident, or return it if this key is already open.

        ``USE_EXISTING`` makes a second open of a running incident return it;
        ``ALLOW_DUPLICATE_FAILED_ONLY`` stops a finished incident's id from
        silently starting a new run (the default policy would allow that),
        while an open whose input was refused (its run failed at once, having
        done nothing) can be sent again, corrected, under the same key.

        A report whose customer-facing text names someone in
        ``staff_involved`` is refused here, before anything is sent
        (``InvalidInput``, naming the field); the workflow itself cannot
        refuse it without failing the replay of incidents opened before.
        """
        refusal = report.staff_named_to_customer()
        if refusal:
            raise InvalidInput(refusal)
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

    async def step(self, incident_key: str, name: str, step: StepInput, update_id: str | None = None) -> StepResult:
        """Take step ``name`` with ``step`` as its input; a refusal raises ``StepRefused`` (nothing written).

        The answer is small (``StepResult``: stage, the steps allowed next, the
        deadline, the timeline entry made); ``snapshot()`` reads the whole incident.

        The step's credential comes from the client's signer unless ``step``
        carries one. A credential signed with a key the incident has not
        recorded yet (the issuer rotated its keys) makes the incident record
        the issuers' keys again (``refresh_trust``), and the step is sent once
        more with a fresh credential.
        """
        spec = self.steps.get(name)
        if spec is None:
            raise AttributeError(f"no step {name!r}; steps: {', '.join(self.steps)}")
        if not isinstance(step, spec.input):
            raise TypeError(f"{name} takes {spec.input.__name__}, not {type(step).__name__}")
        try:
            return await self._send(incident_key, name, step, update_id)
        except WorkflowUpdateFailedError as err:
            if _refusal_type(err) != "UnknownSigningKey":
                raise _refusal(err) from None
        await self.refresh_trust(incident_key)
        try:
            return await self._send(incident_key, name, step, update_id)
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from None

    async def _send(self, incident_key: str, name: str, step: StepInput, update_id: str | None) -> StepResult:
        if step.credential is None:
            step = await self.credentialed(incident_key, name, step)
        result: StepResult = await self.handle(incident_key).execute_update(name, step, id=update_id,
                                                                            result_type=StepResult)
        return result

    async def credentialed(self, incident_key: str, name: str, step: StepInput) -> StepInput:
        """``step`` with a credential from the signer, bound to this incident, step and input."""
        if self.signer is None:
            return step  # the workflow refuses it, saying a credential is needed
        return await bind(self.signer, workflow_id(incident_key), name, step)

    async def refresh_trust(self, incident_key: str) -> str | None:
        """Make the incident record its trusted issuers' keys again; None when it did so within the minute."""
        try:
            result: str = await self.handle(incident_key).execute_update("refresh_trust", result_type=str)
            return result
        except WorkflowUpdateFailedError as err:
            if _refusal_type(err) == "StepRefused":
                return None
            raise

    def __getattr__(self, name: str) -> Callable[..., Awaitable[StepResult]]:
        # Only called for names the class does not have: the registry's steps.
        if name.startswith("_") or name not in self.__dict__.get("steps", REGISTRY):
            raise AttributeError(name)

        async def take(incident_key: str, step: StepInput, update_id: str | None = None) -> StepResult:
            return await self.step(incident_key, name, step, update_id)

        take.__name__ = name
        return take


def _refusal_type(err: WorkflowUpdateFailedError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def _refusal(err: WorkflowUpdateFailedError) -> Exception:
    """The caller's exception for a failed update: refused steps and invalid input by their types."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in ("StepRefused", "UnknownSigningKey"):
        return StepRefused(cause.message)
    if isinstance(cause, ApplicationError) and cause.type == "InvalidInput":
        return InvalidInput(cause.message)
    return err

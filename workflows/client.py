"""A thin typed client for backends and agents written in Python.

Backends in other languages call the same workflow, updates and query by
name with JSON (see the README); this module only adds types and the
opening rules: one incident per key, and a closed incident is never
started again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows import search
from workflows.incident import IncidentRecovery
from workflows.inputs import IncidentReport, Opening, StepInput
from workflows.signing import Signer, bind
from workflows.snapshot import Snapshot, StepResult
from workflows.stages import Stage
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

    async def open_incident(self, report: IncidentReport, then: StepInput | None = None,
                            update_id: str | None = None) -> Snapshot:
        """Open the incident, or return it if this key is already open; with ``then``, take that first step too.

        One update-with-start call: the workflow is started if no incident
        runs under the key, and its ``opened`` update answers once the
        incident is set up (its issuers' keys and SLA policy recorded, so
        the answer carries the deadline and the next step is accepted), with
        the snapshot. ``then`` (for example ``ApologyInput(channel="backend")``)
        is taken in the same call, as its own update would take it (the step
        is named by its input's type); its refusal raises ``StepRefused`` or
        ``InvalidInput``, and the incident is open either way. ``update_id``
        makes a retried call answer as the first did.

        ``USE_EXISTING`` makes a second open of a running incident return it;
        ``ALLOW_DUPLICATE_FAILED_ONLY`` stops a finished incident's id from
        silently starting a new run (the default policy would allow that),
        while an open whose input was refused (its run failed at once, having
        done nothing) can be sent again, corrected, under the same key. A
        key whose incident is closed raises ``IncidentClosed``, whether it
        still runs (``opened`` refuses it, writing nothing) or has finished.

        A report whose customer-facing text names someone in
        ``staff_involved`` is refused here, before anything is sent
        (``InvalidInput``, naming the field); the workflow itself cannot
        refuse it without failing the replay of incidents opened before.
        """
        refusal = report.staff_named_to_customer()
        if refusal:
            raise InvalidInput(refusal)
        opening, name = Opening(), None
        if then is not None:
            name = self._step_for(then)
            sent = then if then.credential is not None else await self.credentialed(report.incident_key, name, then)
            opening = Opening(step=name, input=sent.model_dump(mode="json"))
        start = WithStartWorkflowOperation(
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
        try:
            snap: Snapshot = await self.client.execute_update_with_start_workflow(
                "opened", opening, start_workflow_operation=start, id=update_id, result_type=Snapshot,
            )
            return snap
        except (WorkflowAlreadyStartedError, RPCError) as err:
            # Under USE_EXISTING only a finished incident's id is refused a start (some servers say so
            # without the details the SDK turns into WorkflowAlreadyStartedError).
            if isinstance(err, RPCError) and err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
            raise IncidentClosed(
                f"incident {report.incident_key} is closed and finished; open a new incident with a new key"
            ) from None
        except WorkflowUpdateFailedError as err:
            kind = _refusal_type(err)
            if kind == "IncidentClosed":
                raise IncidentClosed(str(_message(err))) from None
            if kind != "UnknownSigningKey" or then is None or name is None:
                raise _refusal(err) from None
        # The incident is open; its recorded keys predate the credential's: the step alone, as step() sends it.
        await self.step(report.incident_key, name, then)
        return await self.snapshot(report.incident_key)

    def _step_for(self, step: StepInput) -> str:
        names = [name for name, spec in self.steps.items() if type(step) is spec.input]
        if len(names) != 1:
            raise TypeError(f"no single step takes {type(step).__name__}; steps: {', '.join(self.steps)}")
        return names[0]

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


def _message(err: WorkflowUpdateFailedError) -> str | None:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else None


def _refusal(err: WorkflowUpdateFailedError) -> Exception:
    """The caller's exception for a failed update: refused steps and invalid input by their types."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in ("StepRefused", "UnknownSigningKey"):
        return StepRefused(cause.message)
    if isinstance(cause, ApplicationError) and cause.type == "InvalidInput":
        return InvalidInput(cause.message)
    return err

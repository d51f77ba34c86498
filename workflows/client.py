"""A thin typed client for backends and agents written in Python.

Backends in other languages call the same workflow, updates and query by
name with JSON (see the README); this module only adds types and the
opening rules: one incident per key, and a closed incident is never
started again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from workflows import search
from workflows.contracts import (
    AcceptInput,
    ApologyInput,
    ApprovalInput,
    CloseInput,
    CompleteActionInput,
    DeclineInput,
    FlagInput,
    FulfilmentConfirmation,
    IncidentReport,
    NeedsInput,
    PostmortemInput,
    RemedyProposal,
    RenegotiateInput,
    Snapshot,
)
from workflows.incident import IncidentRecovery
from workflows.stages import AFTER_CLOSURE, Stage

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
    def __init__(self, client: Client, task_queue: str = DEFAULT_TASK_QUEUE) -> None:
        self.client = client
        self.task_queue = task_queue

    def handle(self, incident_key: str) -> WorkflowHandle:
        return self.client.get_workflow_handle(workflow_id(incident_key), result_type=Snapshot)

    async def open_incident(self, report: IncidentReport) -> Snapshot:
        """Open the incident, or return it if this key is already open.

        ``USE_EXISTING`` makes a second open of a running incident return it;
        ``REJECT_DUPLICATE`` stops a finished incident's id from silently
        starting a new run (the default policy would allow that).
        """
        try:
            handle = await self.client.start_workflow(
                IncidentRecovery.run,
                report,
                id=workflow_id(report.incident_key),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
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

    async def _step(self, incident_key: str, update, arg, update_id: str | None) -> Snapshot:
        try:
            return await self.handle(incident_key).execute_update(update, arg, id=update_id)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "StepRefused":
                raise StepRefused(cause.message) from None
            if isinstance(cause, ApplicationError) and cause.type == "InvalidInput":
                raise InvalidInput(cause.message) from None
            raise

    async def apologise(self, key: str, step: ApologyInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.apologise, step, update_id)

    async def record_needs(self, key: str, step: NeedsInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.record_needs, step, update_id)

    async def propose_remedy(self, key: str, step: RemedyProposal, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.propose_remedy, step, update_id)

    async def approve_remedy(self, key: str, step: ApprovalInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.approve_remedy, step, update_id)

    async def accept_remedy(self, key: str, step: AcceptInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.accept_remedy, step, update_id)

    async def decline_remedy(self, key: str, step: DeclineInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.decline_remedy, step, update_id)

    async def confirm_fulfilment(
        self, key: str, step: FulfilmentConfirmation, update_id: str | None = None
    ) -> Snapshot:
        return await self._step(key, IncidentRecovery.confirm_fulfilment, step, update_id)

    async def renegotiate(self, key: str, step: RenegotiateInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.renegotiate, step, update_id)

    async def close(self, key: str, step: CloseInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.close, step, update_id)

    async def record_postmortem(self, key: str, step: PostmortemInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.record_postmortem, step, update_id)

    async def complete_action(self, key: str, step: CompleteActionInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.complete_action, step, update_id)

    async def flag_account(self, key: str, step: FlagInput, update_id: str | None = None) -> Snapshot:
        return await self._step(key, IncidentRecovery.flag_account, step, update_id)

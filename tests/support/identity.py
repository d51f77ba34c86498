"""Credentials in tests: a test issuer the tests' workers trust, and a client that signs as each step's ``by``.

The issuer's keys are made afresh for every test session, in a temporary
directory: no signing key is ever committed. Tests still write who acts as
``by=`` on an input; ``Amends`` moves it into a credential signed by the
test issuer (the workflow refuses a ``by`` that arrives in the input).
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.service import RPCError

from activities.identity import IdentityConfig
from worker.issuer import Issuer, KeyRing, identity_toml
from workflows.client import AmendsClient, workflow_id
from workflows.inputs import StepInput
from workflows.snapshot import Snapshot
from workflows.stages import Stage

ISSUER = "https://login.amends.test"
DIRECTORY = Path(tempfile.mkdtemp(prefix="amends-test-issuer-"))
atexit.register(shutil.rmtree, DIRECTORY, ignore_errors=True)
RING = KeyRing(DIRECTORY / "issuer").ensure()
TEST_ISSUER = Issuer(ISSUER, RING)
# A backend's own service key: its entry lets it speak as a backend or for the customer, never as staff.
SERVICE = "orders-service"
SERVICE_RING = KeyRing(DIRECTORY / "service").ensure()
SERVICE_ISSUER = Issuer(SERVICE, SERVICE_RING)
IDENTITY_FILE = DIRECTORY / "identity.toml"
IDENTITY_FILE.write_text(
    identity_toml(ISSUER, RING.jwks)
    + f'\n[[issuers]]\nissuer = "{SERVICE}"\njwks = "{SERVICE_RING.jwks}"\nroles = ["backend", "customer"]\n'
)
IDENTITY = IdentityConfig.load(IDENTITY_FILE)


class Amends(AmendsClient):
    """The typed client, signing every step as the actor its input names in ``by``.

    On a time-skipping server (``env``), credentials are issued at the
    server's time, which runs days or a year ahead of the wall clock.
    """

    def __init__(self, *args, env=None, read_back: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.env = env
        # False: a step answers with its own StepResult, for tests whose incident cannot answer a query
        # meanwhile (a failing workflow task, a build being switched).
        self.read_back = read_back
        # Runs seen in the anniversary phase: the last run of their incident, which continues as new no more.
        self.anniversary_runs: set[str] = set()

    async def step(self, incident_key: str, name: str, step: StepInput,  # type: ignore[override]
                   update_id: str | None = None) -> Snapshot:
        """The step, then the whole incident as it stands after it: tests read the state a step left. The
        step's own small answer (``StepResult``) is what ``AmendsClient.step`` returns, and is checked in
        tests/workflows/test_step_results.py."""
        handle = self.handle(incident_key)
        run = await current_run(handle)
        result = await super().step(incident_key, name, step, update_id)
        if not self.read_back:
            return result  # type: ignore[return-value]
        if result.stage == Stage.POSTMORTEM_DONE and result.entry is not None and run not in self.anniversary_runs:
            # The incident continues as new into the anniversary run once what it sends has gone: read the
            # state there. A query that lands on the run as it closes hangs on the time-skipping server and
            # holds its time still for good. (A step taken in the anniversary run, such as completing an
            # action, is followed by no new run: waiting for one would only run out, ten seconds later.)
            for _ in range(200):
                if await current_run(handle) != run:
                    break
                await asyncio.sleep(0.05)
        snap = await self._snapshot_after_step(incident_key)
        if snap.phase == "anniversary":
            self.anniversary_runs.add(await current_run(handle))
        return snap

    async def _snapshot_after_step(self, incident_key: str) -> Snapshot:
        for _ in range(20):
            try:
                # Short: a query that lands just as the incident continues as new can hang on the
                # time-skipping server; the next one is answered.
                return await self.handle(incident_key).query("snapshot", result_type=Snapshot,
                                                             rpc_timeout=timedelta(seconds=5))
            except RPCError:
                continue
        return await self.snapshot(incident_key)

    async def credentialed(self, incident_key: str, name: str, step: StepInput) -> StepInput:
        if self.signer is not None:
            return await super().credentialed(incident_key, name, step)
        at = (await self.env.get_current_time()).timestamp() if self.env is not None else None
        return signed(incident_key, name, step, at=at)


async def current_run(handle) -> str:
    """The run id the workflow id points at now (raw: ``describe()`` decodes search attributes too)."""
    request = DescribeWorkflowExecutionRequest(namespace=handle._client.namespace,
                                               execution=WorkflowExecution(workflow_id=handle.id))
    described = await handle._client.workflow_service.describe_workflow_execution(request)
    return str(described.workflow_execution_info.execution.run_id)


def signed(incident_key: str, name: str, step: StepInput, issuer: Issuer = TEST_ISSUER,
           at: float | None = None) -> StepInput:
    """``step`` as its ``by`` would send it: ``by`` left out, a credential from ``issuer`` put in."""
    from workflows.credentials import checksum

    assert step.by is not None, "say who takes the step: by=…"
    bare = step.model_copy(update={"by": None})
    credential = issuer.step_credential(step.by, workflow_id(incident_key), name, checksum(bare, as_sent=True), at)
    return bare.model_copy(update={"credential": credential})

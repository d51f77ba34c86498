"""A test-only workflow: ``IncidentRecovery`` with one more step in its registry ("thank").

Its own module, importing only what workflow code may, because the workflow
sandbox imports the module that defines a workflow.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import Field

    from workflows.inputs import IncidentReport, StepInput
    from workflows.snapshot import Snapshot
    from workflows.state import ContinuedIncident
    from workflows.steps import REGISTRY, Cli, StepSpec

from workflows.incident import IncidentRecovery, with_steps
from workflows.playbook import Playbook


class ThankInput(StepInput):
    note: str = Field(min_length=1, max_length=200, description="What we thank the customer for.")


def _thank(pb: Playbook, step: ThankInput) -> None:
    pb.recorded(step, f"thanked: {step.note}")


THANK = StepSpec("thank", ThankInput, "Thank the customer for their patience.", _thank, cli=Cli("thank"))
THANKFUL = {**REGISTRY, "thank": THANK}


@workflow.defn(name="IncidentRecovery")
@with_steps(THANKFUL)
class ThankfulRecovery(IncidentRecovery):
    @workflow.init
    def __init__(self, incident: IncidentReport | ContinuedIncident) -> None:
        super().__init__(incident)

    @workflow.run
    async def run(self, incident: IncidentReport | ContinuedIncident) -> Snapshot:
        return await super().run(incident)

"""One step, one place: a step declared in the table and the registry gets its update, validator,
client method and JSON Schema without any other file changing."""

from __future__ import annotations

import json
import uuid

import pytest
from temporalio import workflow
from temporalio.worker import Worker

from tests.support.factories import AGENT, report
from tests.support.history import history_kinds
from tests.support.identity import Amends
from tests.support.steps import last_entry
from tests.support.thankful import THANK, THANKFUL, ThankfulRecovery, ThankInput
from worker.main import WORKFLOW_RUNNER, activities_for
from workflows import stages
from workflows.client import StepRefused
from workflows.incident import IncidentRecovery
from workflows.inputs import ApologyInput
from workflows.schema import schema_files
from workflows.stages import HUMAN_STEPS, STEPS, Stage, Step
from workflows.steps import REGISTRY


def test_every_human_step_of_the_table_has_its_registry_entry_and_back():
    assert set(REGISTRY) == set(HUMAN_STEPS)
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.description and spec.cli is not None
    updates = dict(workflow._Definition.must_from_class(IncidentRecovery).updates)
    # The updates that are not steps of the playbook: one records the issuers' keys again, the other
    # answers an open once the incident is set up (and may take a first step).
    assert updates.pop("refresh_trust").arg_types == []
    assert updates.pop("opened").validator is not None
    assert set(updates) == set(REGISTRY)
    for name, update in updates.items():
        assert update.arg_types == [REGISTRY[name].input] and update.description == REGISTRY[name].description
        assert update.validator is not None


async def test_a_step_added_to_the_table_and_the_registry_is_a_whole_update(ts_env, settings, monkeypatch):
    monkeypatch.setattr(stages, "STEPS", STEPS + (Step("thank", (Stage.APOLOGISED,), None, "human", THANK.description),))
    task_queue = f"amends-thank-{uuid.uuid4().hex[:6]}"
    amends = Amends(ts_env.client, task_queue, steps=THANKFUL)
    async with Worker(ts_env.client, task_queue=task_queue, workflows=[ThankfulRecovery], activities=activities_for(settings),
                      workflow_runner=WORKFLOW_RUNNER):
        rep = report(None)
        key = rep.incident_key
        await amends.open_incident(rep)
        # The validator: the table does not allow it before the apology, and nothing is written.
        before = await history_kinds(amends.handle(key))
        with pytest.raises(StepRefused, match="thank refused: the incident is at stage 'detected'"):
            await amends.thank(key, ThankInput(by=AGENT, note="waiting"))
        after = await history_kinds(amends.handle(key))
        assert set(after[len(before):]) <= {"workflow_task_scheduled", "workflow_task_started", "workflow_task_completed"}
        await amends.apologise(key, ApologyInput(by=AGENT))
        # The handler and the client method: the step is taken and recorded by its effect.
        snap = await amends.thank(key, ThankInput(by=AGENT, note="your patience"))
        thanked = last_entry(snap)
        assert thanked.step == "thank" and thanked.detail == "thanked: your patience"
        assert "thank" in snap.allowed_steps
    # The schema, for backends in other languages.
    schema = json.loads(schema_files(THANKFUL)["thank.schema.json"])
    assert schema["properties"]["note"]["description"] == "What we thank the customer for."
    assert "thank.schema.json" not in schema_files()

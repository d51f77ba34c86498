"""The transition table is the one source of truth: docs, machine and workflow agree with it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from transitions import MachineError

from tests.support.factories import report
from tests.support.identity import Amends
from tests.support.steps import STEP_INPUTS, wait_for
from workflows.client import StepRefused
from workflows.stages import HUMAN_STEPS, STEPS, Stage, build_machine, lifecycle_markdown, mermaid_diagram, step_for

ROOT = Path(__file__).resolve().parents[2]


def test_committed_lifecycle_doc_matches_the_table():
    committed = (ROOT / "docs" / "lifecycle.md").read_text()
    assert committed == lifecycle_markdown(), "docs/lifecycle.md is stale: run `python -m workflows.stages`"


def test_readme_diagram_matches_the_table():
    assert mermaid_diagram() in (ROOT / "README.md").read_text(), "README's diagram differs from the table"


def test_machine_has_no_shortcut_triggers():
    class Model:
        pass

    m = Model()
    build_machine(m)
    assert not [name for name in dir(m) if name.startswith("to_")]
    with pytest.raises(MachineError):
        m.close()  # type: ignore[attr-defined]  # not allowed from detected


def test_every_stage_but_the_last_can_be_left():
    for stage in list(Stage)[:-1]:
        assert any(s.dest not in (None, stage) for s in STEPS if stage in (s.source if s.source != "*" else ())), stage


class ReferenceModel:
    """What the table says should happen, with the table's conditions read
    literally for remedies made of one manual item (no money, no approval)."""

    def __init__(self) -> None:
        self.stage = Stage.DETECTED
        self.proposal = False
        self.undelivered = False
        self.flagged = False
        self.remedies = 0
        self.open_actions = False

    def condition(self, name: str) -> bool:
        return {
            "has_proposal": self.proposal,
            "is_approved": self.proposal,
            "has_undelivered_items": self.undelivered,
            "is_delivered": not self.undelivered,
            "has_items_to_confirm": self.undelivered,
            "has_open_actions": self.open_actions,
        }[name]

    def allows(self, trigger: str) -> bool:
        step = step_for(self.stage, trigger)
        if step is None or not all(self.condition(c) for c in step.conditions):
            return False
        return not (trigger == "flag_account" and self.flagged)

    def take(self, trigger: str) -> None:
        step = step_for(self.stage, trigger)
        assert step is not None
        if step.dest is not None:
            self.stage = step.dest
        if trigger == "propose_remedy":
            self.proposal = True
            self.remedies += 1
        elif trigger in ("accept_remedy", "decline_remedy"):
            self.proposal = False
            self.undelivered = trigger == "accept_remedy"
        elif trigger == "renegotiate":
            self.undelivered = False
        elif trigger == "flag_account":
            self.flagged = True
        elif trigger == "record_postmortem":
            self.open_actions = True
        elif trigger == "complete_action":
            self.open_actions = False
        elif trigger == "confirm_fulfilment":
            self.undelivered = False
            self.stage = Stage.FULFILLED  # the engine's `fulfil` follows at once


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_workflow_follows_the_reference_model(ts_env, ts_worker, settings, seed):
    """Random steps, most of them out of order: the workflow accepts exactly what the table allows."""
    rng = random.Random(seed)
    amends = Amends(ts_env.client, settings.task_queue)
    rep = report("pi_unused", key=f"model-{seed}-{rng.randrange(10**6)}")
    await amends.open_incident(rep)
    model = ReferenceModel()
    accepted = refused = 0
    for _ in range(45):
        allowed = [t for t in HUMAN_STEPS if model.allows(t)]
        # Bias towards progress so that later stages get exercised too.
        trigger = rng.choice(allowed) if allowed and rng.random() < 0.5 else rng.choice(HUMAN_STEPS)
        expected = model.allows(trigger)
        try:
            arg = STEP_INPUTS[trigger]
            if trigger == "confirm_fulfilment":
                arg = arg.model_copy(update={"item_id": f"remedy-{model.remedies}/item-1"})
            if trigger in ("approve_remedy", "accept_remedy", "decline_remedy"):
                arg = arg.model_copy(update={"remedy": max(model.remedies, 1)})  # a decision names its remedy
            snap = await getattr(amends, trigger)(rep.incident_key, arg)
        except StepRefused:
            assert not expected, f"{trigger} refused at {model.stage}, the table allows it"
            refused += 1
            continue
        assert expected, f"{trigger} accepted at {model.stage}, the table forbids it"
        accepted += 1
        model.take(trigger)
        if trigger == "confirm_fulfilment":
            snap = await wait_for(amends, rep.incident_key, lambda s: s.stage == Stage.FULFILLED)
        if trigger == "accept_remedy":
            # The work order goes out at once; while it is in flight, the remedy cannot be renegotiated.
            snap = await wait_for(amends, rep.incident_key,
                                  lambda s: s.agreed_remedy.items[0].status == "awaiting_confirmation")
        assert snap.stage == model.stage
    assert accepted >= 5 and refused >= 5

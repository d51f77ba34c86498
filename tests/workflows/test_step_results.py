"""A step answers its caller in a few hundred bytes, however long the incident has run: what stage it is
in, what may happen next, by when, and the entry the step made. The whole incident is the snapshot query's."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.support.factories import AGENT, CUSTOMER, DIRECTOR, EVERY_STAFF_NAME, report
from tests.support.history import keep_history, raw_text
from tests.support.identity import Amends
from tests.support.steps import STEP_INPUTS, assert_refused, wait_for
from worker.main import build_worker
from workflows.client import AmendsClient
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    CloseInput,
    DeclineInput,
    FulfilmentConfirmation,
    NeedsInput,
    RemedyProposal,
)
from workflows.snapshot import StepResult
from workflows.stages import Stage

REDO = {"kind": "redo", "description": "we pitch a new tent for you on site"}


async def step(amends: Amends, key: str, name: str, arg) -> StepResult:
    """The step's own answer, as a backend using the typed client gets it."""
    return await AmendsClient.step(amends, key, name, arg)


async def test_a_step_answers_with_its_stage_next_steps_deadline_and_entry(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    key = rep.incident_key
    await amends.open_incident(rep)
    result = await step(amends, key, "apologise", ApologyInput(by=AGENT, channel="phone"))
    assert result.workflow_id == f"incident-{key}" and result.stage == Stage.APOLOGISED
    assert result.allowed_steps == (await amends.snapshot(key)).allowed_steps
    assert "record_needs" in result.allowed_steps and "apologise" not in result.allowed_steps
    assert result.deadline is not None and result.deadline.waiting_for
    assert result.entry is not None and result.entry.step == "apologise" and result.entry.by.name == AGENT.name
    assert result.entry.channel == "phone"
    # Nothing of the customer's, nor anyone else's name: the caller learns what it needs, no more.
    text = result.model_dump_json()
    for secret in (rep.customer.name, rep.customer.email, rep.what_happened, *EVERY_STAFF_NAME[:-1]):
        if secret != AGENT.name:
            assert secret not in text, secret

    await step(amends, key, "record_needs", NeedsInput(by=AGENT, needs="a tent that works"))
    proposed = await step(amends, key, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO]))
    assert proposed.remedy == 1 and {"accept_remedy", "decline_remedy"} <= set(proposed.allowed_steps)


async def test_update_results_stay_the_same_size_however_many_cycles(ts_env, ts_worker, settings):
    """History grew as the square of the steps while every answer carried the whole timeline."""
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    key = rep.incident_key
    await amends.open_incident(rep)
    await step(amends, key, "apologise", ApologyInput(by=AGENT))
    await step(amends, key, "record_needs", NeedsInput(by=AGENT, needs="a tent that works"))
    for n in range(1, 13):
        await step(amends, key, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO]))
        declined = await step(amends, key, "decline_remedy", DeclineInput(by=CUSTOMER, remedy=n, reason="not yet"))
        assert declined.remedy == n and declined.entry is not None and declined.entry.step == "decline_remedy"
    history = (await amends.handle(key).fetch_history()).to_json()
    sizes = [len(str(event["workflowExecutionUpdateCompletedEventAttributes"]["outcome"]))
             for event in json.loads(history)["events"]
             if "workflowExecutionUpdateCompletedEventAttributes" in event]
    # The opener's answer is the incident it made; then each step's.
    steps = sizes[1:]
    assert len(steps) == 2 + 2 * 12
    # The twelfth decline's answer is no larger than the first's (give or take a digit), and small.
    assert steps[-1] <= steps[3] + 64 and max(steps) < 2_000, sizes
    assert rep.customer.email not in raw_text(history)


async def test_what_can_go_round_in_circles_is_capped_by_the_policy(ts_env, settings):
    remedies = settings.sla_policy.remedies.model_copy(update={"max_proposals": 3})
    capped = settings.model_copy(update={
        "sla_policy": settings.sla_policy.model_copy(update={"remedies": remedies}),
        "task_queue": f"amends-capped-{uuid.uuid4().hex[:6]}"})
    async with build_worker(ts_env.client, capped):
        amends = Amends(ts_env.client, capped.task_queue, env=ts_env)
        amends.speculative_tasks = False  # type: ignore[attr-defined]  # the time-skipping server writes tasks
        rep = report("pi_unused")
        key = rep.incident_key
        await amends.open_incident(rep)
        await step(amends, key, "apologise", ApologyInput(by=AGENT))
        await step(amends, key, "record_needs", NeedsInput(by=AGENT, needs="a tent that works"))
        for n in range(1, 4):
            await step(amends, key, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO]))
            await step(amends, key, "decline_remedy", DeclineInput(by=CUSTOMER, remedy=n, reason="not yet"))
        refusal = await assert_refused(amends, key, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO]),
                                       match="propose_remedy refused: taken 3 times in this incident, the most "
                                             "the policy allows (remedies.max_proposals)")
        assert "beyond it only a director may" in refusal
        # The cap stops the circle, not the incident: a director may propose once more.
        fourth = await step(amends, key, "propose_remedy", RemedyProposal(by=DIRECTOR, items=[REDO]))
        assert fourth.remedy == 4 and fourth.stage == Stage.NEEDS_GATHERED


async def test_a_long_run_continues_as_new_mid_recovery_carrying_everything(ts_env, settings):
    short = settings.model_copy(update={
        "sla_policy": settings.sla_policy.model_copy(update={"continue_after_events": 100}),
        "task_queue": f"amends-short-{uuid.uuid4().hex[:6]}"})
    async with build_worker(ts_env.client, short):
        amends = Amends(ts_env.client, short.task_queue, env=ts_env)
        rep = report("pi_unused")
        key = rep.incident_key
        handle = amends.handle(key)
        await amends.open_incident(rep)
        first_run = (await handle.describe()).run_id
        await step(amends, key, "apologise", ApologyInput(by=AGENT))
        await step(amends, key, "record_needs", NeedsInput(by=AGENT, needs="a tent that works"))
        for n in range(1, 11):
            await step(amends, key, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO]))
            await step(amends, key, "decline_remedy", DeclineInput(by=CUSTOMER, remedy=n, reason="not yet"))
        # Once what is being sent has gone, a fresh run (or more) carried the whole state: every step of every run is on its timeline.
        for _ in range(100):
            runs = await run_chain(handle)
            if len(runs) >= 2:
                break
            await asyncio.sleep(0.1)
        assert len(runs) >= 2 and runs[-1] == first_run
        snap = await amends.snapshot(key)
        assert [e.step for e in snap.timeline].count("decline_remedy") == 10 and snap.phase == "recovery"
        assert snap.stage == Stage.NEEDS_GATHERED and snap.deadline is not None
        # And it walks on to the end.
        await step(amends, key, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO]))
        await step(amends, key, "accept_remedy", AcceptInput(by=CUSTOMER, channel="email", remedy=11))
        await step(amends, key, "confirm_fulfilment", FulfilmentConfirmation(by=AGENT, item_id="remedy-11/item-1"))
        await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
        await step(amends, key, "close", CloseInput(by=AGENT, summary="a new tent, pitched"))
        await step(amends, key, "record_postmortem", STEP_INPUTS["record_postmortem"])
        snap = await wait_for(amends, key, lambda s: s.phase == "anniversary")
        assert [e.step for e in snap.timeline].count("propose_remedy") == 11
        chain = await run_chain(handle)
        await keep_history(ts_env.client.get_workflow_handle(handle.id, run_id=chain[-1]), "continued_mid_recovery")
        await keep_history(ts_env.client.get_workflow_handle(handle.id, run_id=chain[-1]), "release_continued_mid_recovery")
        await keep_history(ts_env.client.get_workflow_handle(handle.id, run_id=chain[-2]), "continued_recovery_run")
        await keep_history(ts_env.client.get_workflow_handle(handle.id, run_id=chain[-2]), "release_continued_recovery_run")
        # The runs after it start short (the first went on until what it was sending had gone: the steps
        # here come back to back).
        for run_id in (await run_chain(handle))[:-1]:
            events = [e async for e in ts_env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history_events()]
            assert len(events) < 200, (run_id, len(events))


async def run_chain(handle) -> list[str]:
    """The incident's runs, newest first, followed back through each continue-as-new."""
    runs = [(await handle.describe()).run_id]
    while True:
        first = [e async for e in handle._client.get_workflow_handle(handle.id, run_id=runs[-1])
                 .fetch_history_events()][0]
        previous = first.workflow_execution_started_event_attributes.continued_execution_run_id
        if not previous:
            return runs
        runs.append(previous)

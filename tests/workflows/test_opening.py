"""Opening is idempotent, answers once the incident is set up without polling, may take the first step in the
same call, and a closed incident is never started again."""

from __future__ import annotations

import pytest
from temporalio.client import Client, Interceptor, OutboundInterceptor, QueryWorkflowInput

from tests.support.factories import AGENT, report
from tests.support.history import commands_by_activation, history_kinds, keep_history, settled
from tests.support.identity import Amends
from tests.support.servers import skip_a_year
from tests.support.steps import WALK, take
from workflows.client import AmendsClient, IncidentClosed, StepRefused, workflow_id
from workflows.inputs import ApologyInput, FlagInput
from workflows.stages import Stage

NOT_A_TOKEN = "credential: not a signed token"


class CountingQueries(Interceptor):
    """Counts the queries a client sends."""

    def __init__(self) -> None:
        self.queries = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Counting(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput):
                counter.queries += 1
                return await super().query_workflow(input)

        return Counting(next)


def updates_taken(kinds: list[str]) -> int:
    return kinds.count("workflow_execution_update_completed")


def nothing_but_tasks(after: list[str], before: list[str]) -> bool:
    """Nothing was written between ``before`` and ``after`` but workflow tasks (a refused update's)."""
    return after[:len(before)] == before and set(after[len(before):]) <= {
        "workflow_task_scheduled", "workflow_task_started", "workflow_task_completed"}


async def test_opening_answers_once_the_incident_is_set_up_without_a_query(ts_env, ts_worker, settings):
    counting = CountingQueries()
    config = ts_env.client.config()
    config["interceptors"] = [counting]
    amends = Amends(Client(**config), settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    snap = await amends.open_incident(rep)
    # The one answer already carries the deadline, and the next step is accepted at once.
    assert snap.stage == Stage.DETECTED and snap.sla_ready and snap.deadline is not None
    # (The typed client's step itself: the tests' Amends reads the whole state after a step with a query.)
    assert (await AmendsClient.step(amends, rep.incident_key, "apologise", ApologyInput(by=AGENT))).stage == \
        Stage.APOLOGISED
    again = await amends.open_incident(rep)
    assert again.stage == Stage.APOLOGISED
    assert counting.queries == 0


async def test_open_and_apologise_in_one_call(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    snap = await amends.open_incident(rep, then=ApologyInput(by=AGENT, channel="backend"))
    assert snap.stage == Stage.APOLOGISED and snap.sla_ready
    assert [(e.step, e.by.name) for e in snap.timeline if e.step == "apologise"] == [("apologise", AGENT.name)]
    handle = amends.handle(rep.incident_key)
    kinds = await settled(handle)
    assert kinds.count("workflow_execution_started") == 1 and updates_taken(kinds) == 1
    await keep_history(handle, "opened_with_apology")
    await keep_history(handle, "release_opened_with_apology")
    # At most one upsert of search attributes per activation, though the set-up, the credential's verdict and
    # the apology each change them (the SDK's own TemporalChangeVersion, beside the release's marker, aside).
    for task in commands_by_activation(await handle.fetch_history()):
        ours = [c for c in task if c.startswith("UPSERT") and "TemporalChangeVersion" not in c]
        assert len(ours) <= 1, task
    # Opened again with the same first step: the incident is returned, the step refused, nothing written.
    with pytest.raises(StepRefused, match="apologise refused: the incident is at stage 'apologised'"):
        await amends.open_incident(rep, then=ApologyInput(by=AGENT, channel="backend"))
    assert nothing_but_tasks(await history_kinds(handle), kinds)


async def test_a_retried_open_and_apologise_answers_as_the_first_did(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    first = await amends.open_incident(rep, then=ApologyInput(by=AGENT), update_id="open-and-apologise")
    again = await amends.open_incident(rep, then=ApologyInput(by=AGENT), update_id="open-and-apologise")
    assert first.stage == again.stage == Stage.APOLOGISED
    assert [e.step for e in again.timeline].count("apologise") == 1
    kinds = await history_kinds(amends.handle(rep.incident_key))
    assert kinds.count("workflow_execution_started") == 1 and updates_taken(kinds) == 1


async def test_a_refused_first_step_leaves_the_incident_open(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    with pytest.raises(StepRefused, match=NOT_A_TOKEN):
        await amends.open_incident(rep, then=ApologyInput(credential="not-a-token"))
    snap = await amends.snapshot(rep.incident_key)
    assert snap.stage == Stage.DETECTED and "apologise" in snap.allowed_steps
    # Any step the table allows first may come with the open; the incident is the same one.
    flagged = await amends.open_incident(rep, then=FlagInput(by=AGENT, reason="abusive to the courier"))
    assert flagged.red_flagged and flagged.stage == Stage.DETECTED
    # (The typed client's step itself: the tests' Amends reads the whole state after a step with a query.)
    assert (await AmendsClient.step(amends, rep.incident_key, "apologise", ApologyInput(by=AGENT))).stage == \
        Stage.APOLOGISED
    kinds = await settled(amends.handle(rep.incident_key))
    assert kinds.count("workflow_execution_started") == 1
    await keep_history(amends.handle(rep.incident_key), "opened_with_refused_step")
    await keep_history(amends.handle(rep.incident_key), "release_opened_with_refused_step")


async def test_opening_the_same_key_twice_yields_one_incident(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    first = await amends.open_incident(rep)
    await take(amends, rep.incident_key, "apologise")
    # A retrying backend opens it again, even with a changed description.
    again = await amends.open_incident(rep.model_copy(update={"what_happened": "late, again"}))
    assert again.workflow_id == first.workflow_id == workflow_id(rep.incident_key)
    assert again.stage == Stage.APOLOGISED  # the same incident, not a fresh one
    assert again.report.what_happened == rep.what_happened
    kinds = await history_kinds(amends.handle(rep.incident_key))
    assert kinds.count("workflow_execution_started") == 1


async def test_a_closed_incident_is_refused(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    rep = report("pi_unused")
    await amends.open_incident(rep)
    for step in WALK[:6]:  # up to and including close
        await take(amends, rep.incident_key, step)
    with pytest.raises(IncidentClosed, match=r"was closed on \d{4}-\d\d-\d\d; open a new incident with a new key"):
        await amends.open_incident(rep)
    before = await settled(amends.handle(rep.incident_key))
    with pytest.raises(IncidentClosed, match="open a new incident with a new key"):
        await amends.open_incident(rep, then=FlagInput(by=AGENT, reason="abusive to the courier"))
    assert nothing_but_tasks(await history_kinds(amends.handle(rep.incident_key)), before)  # refused, unwritten


async def test_a_finished_incident_is_never_started_again(clock_env, settings):
    amends = Amends(clock_env.client, settings.task_queue, env=clock_env)
    rep = report("pi_unused")
    await amends.open_incident(rep)
    for step in WALK:
        await take(amends, rep.incident_key, step)
    handle = amends.handle(rep.incident_key)
    await skip_a_year(clock_env, handle)
    final = await handle.result()
    assert final.stage == Stage.ANNIVERSARY
    with pytest.raises(IncidentClosed, match="is closed and finished; open a new incident with a new key"):
        await amends.open_incident(rep)
    # The latest run under the id is still the finished one: the refused open
    # started no new run (the default reuse policy would have).
    assert (await history_kinds(amends.handle(rep.incident_key)))[-1] == "workflow_execution_completed"

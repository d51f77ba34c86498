"""Opening is idempotent, and a closed incident is never started again."""

from __future__ import annotations

import pytest

from tests.support.factories import report
from tests.support.history import history_kinds
from tests.support.identity import Amends
from tests.support.servers import skip_a_year
from tests.support.steps import WALK, take
from workflows.client import IncidentClosed, workflow_id
from workflows.stages import Stage


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

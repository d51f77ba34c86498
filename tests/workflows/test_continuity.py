"""The run after the continue-as-new (the year of waiting) still knows the whole incident."""

from __future__ import annotations

import pytest

from tests.support.factories import DIRECTOR
from tests.support.identity import Amends
from tests.support.steps import opened, take, wait_for, walk_to
from workflows.client import StepRefused
from workflows.inputs import FlagInput
from workflows.stages import Stage


async def test_a_step_retried_with_its_update_id_after_the_continue_as_new_gets_an_answer(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    key = await opened(amends)
    flag = FlagInput(by=DIRECTOR, reason="threatened staff")
    await amends.flag_account(key, flag, update_id="flag-once")
    await walk_to(amends, key, Stage.POSTMORTEM_DONE)
    # Now in the run after the continue-as-new (phase anniversary: the year of waiting).
    snap = await wait_for(amends, key, lambda s: s.phase == "anniversary")
    # The same update id, retried (say, by a client that never heard the first answer): an answer, no change.
    again = await amends.flag_account(key, flag, update_id="flag-once")
    assert again.red_flagged and again.flags == ["threatened staff"]
    # The record crossed whole: needs, every proposal, who accepted it, the timeline from the start.
    assert again.needs == snap.needs and again.remedies == snap.remedies
    # (What the engine did meanwhile, telling the CRM, sending notices, lands when it is done.)
    assert [e.step for e in again.timeline if e.step not in ("crm", "notice")][:3] == [
        "detected", "flag_account", "apologise"]
    # A new flag under a new id is refused as before.
    with pytest.raises(StepRefused, match="already red-flagged"):
        await take(amends, key, "flag_account")

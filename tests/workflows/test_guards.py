"""Guards: a refused step names the reason and writes nothing to history."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.support.factories import AGENT, DIRECTOR, MANAGER, REDO, refund
from tests.support.history import history_kinds, keep_history, settled
from tests.support.identity import Amends
from tests.support.steps import (
    STEP_INPUTS,
    assert_refused,
    opened,
    take,
    wait_for,
    walk_to,
)
from workflows.inputs import ApprovalInput, RemedyProposal
from workflows.stages import Stage


@pytest.fixture(params=["time-skipping", "dev-server"])
def amends(request, settings):
    """Every guard runs on both servers.

    The dev server is the real thing: a rejected update leaves the history
    exactly as it was. The Java time-skipping server has no speculative
    workflow tasks, so there a rejection leaves three workflow-task events
    (scheduled, started, completed) and nothing else.
    """
    env = request.getfixturevalue("ts_env" if request.param == "time-skipping" else "dev_env")
    request.getfixturevalue("ts_worker" if request.param == "time-skipping" else "dev_worker")
    client = Amends(env.client, settings.task_queue)
    client.speculative_tasks = request.param == "dev-server"  # type: ignore[attr-defined]
    return client


async def test_skipped_step_names_the_stage_and_the_steps_allowed_now(amends):
    key = await opened(amends)
    reason = await assert_refused(amends, key, "close", match="at stage 'detected'")
    assert reason == "close refused: the incident is at stage 'detected'; allowed now: apologise, flag_account"


async def test_no_needs_before_an_apology(amends):
    key = await opened(amends)
    await assert_refused(amends, key, "record_needs", match="allowed now: apologise")


async def test_no_proposal_before_needs(amends):
    key = await opened(amends)
    await walk_to(amends, key, Stage.APOLOGISED)
    await assert_refused(amends, key, "propose_remedy", match="at stage 'apologised'; allowed now: record_needs")


async def test_no_acceptance_before_a_proposal(amends):
    key = await opened(amends)
    await walk_to(amends, key, Stage.NEEDS_GATHERED)
    await assert_refused(
        amends, key, "accept_remedy", match="accept_remedy refused: no remedy has been proposed yet; propose_remedy first"
    )


async def test_no_closing_before_fulfilment(amends):
    key = await opened(amends)
    await walk_to(amends, key, Stage.REMEDY_AGREED)
    await assert_refused(amends, key, "close", match="at stage 'remedy_agreed'; allowed now: confirm_fulfilment")


async def test_closed_incident_refuses_every_outcome_change(amends):
    key = await opened(amends)
    await walk_to(amends, key, Stage.CLOSED)
    closed_on = (await amends.snapshot(key)).closed_at.date().isoformat()
    for step in ["apologise", "record_needs", "propose_remedy", "approve_remedy", "accept_remedy",
                 "decline_remedy", "confirm_fulfilment", "renegotiate", "close"]:
        reason = await assert_refused(amends, key, step, match=f"closed on {closed_on}")
        assert reason.endswith("open a new incident with a new key")
    # Learning and flagging stay open after closure.
    await take(amends, key, "record_postmortem")
    for step in ["record_needs", "close"]:
        await assert_refused(amends, key, step, match=f"closed on {closed_on}")


async def test_refund_in_another_currency_is_refused(amends, stripe):
    key = await opened(amends, stripe)
    await walk_to(amends, key, Stage.NEEDS_GATHERED)
    await assert_refused(
        amends, key, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO, refund(1_000, "EUR")]),
        match="items[1].amount.currency: must be the order's currency USD, not EUR",
    )


async def test_refunds_never_add_up_to_more_than_was_paid(amends, stripe, mail_sink):
    key = await opened(amends, stripe, amount=8_000)
    await walk_to(amends, key, Stage.NEEDS_GATHERED)
    await assert_refused(
        amends, key, "propose_remedy", RemedyProposal(by=MANAGER, items=[refund(5_000), refund(3_001)]),
        match="refunds would total 80.01 USD, more than the 80.00 USD paid",
    )
    # 30.00 refunded, then the rest of the remedy cannot be delivered: renegotiate.
    await amends.propose_remedy(key, RemedyProposal(by=AGENT, items=[refund(3_000), REDO]))
    await amends.accept_remedy(key, STEP_INPUTS["accept_remedy"])
    await wait_for(amends, key, lambda s: s.agreed_remedy.items[1].status == "awaiting_confirmation")
    assert (await amends.snapshot(key)).refunded_total == 3_000
    await amends.renegotiate(key, STEP_INPUTS["renegotiate"])
    await assert_refused(
        amends, key, "propose_remedy", RemedyProposal(by=MANAGER, items=[refund(5_001)]),
        match="more than the 80.00 USD paid (30.00 USD already refunded or agreed; at most 50.00 USD more)",
    )
    snap = await amends.propose_remedy(key, RemedyProposal(by=MANAGER, items=[refund(5_000)]))
    assert snap.refundable_left == 5_000
    snap = await amends.accept_remedy(key, STEP_INPUTS["accept_remedy"].model_copy(update={"remedy": 2}))
    snap = await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    assert snap.refunded_total == 8_000 and snap.refundable_left == 0
    refunds = await stripe.v1.refunds.list_async(params={"payment_intent": snap.report.order.payment_reference})
    assert sorted(r.amount for r in refunds.data) == [3_000, 5_000]


async def test_approval_is_needed_above_the_proposers_limit(amends, stripe):
    key = await opened(amends, stripe, amount=100_000)
    await walk_to(amends, key, Stage.NEEDS_GATHERED)
    # An agent may promise up to 50.00; 600.00 needs a director (a manager's limit is 500.00).
    await amends.propose_remedy(key, RemedyProposal(by=AGENT, items=[refund(60_000)]))
    await assert_refused(amends, key, "accept_remedy", match="needs approve_remedy by a director or above")
    await assert_refused(
        amends, key, "approve_remedy", ApprovalInput(by=MANAGER, remedy=1, total=60_000),
        match="a manager may approve up to 500.00 USD; remedy #1 is worth 600.00 USD and needs a director",
    )
    await amends.approve_remedy(key, ApprovalInput(by=DIRECTOR, remedy=1, total=60_000))
    snap = await amends.accept_remedy(key, STEP_INPUTS["accept_remedy"])
    assert snap.stage == Stage.REMEDY_AGREED
    approval = next(e for e in snap.timeline if e.step == "approve_remedy")
    assert approval.by == DIRECTOR and "limit 100000.00 USD" in approval.detail
    await settled(amends.handle(key))
    await keep_history(amends.handle(key), "approval_and_refund")
    await keep_history(amends.handle(key), "verified_approval_and_refund")
    await keep_history(amends.handle(key), "release_approval_and_refund")


async def test_declined_proposal_returns_to_listening_and_is_kept(amends):
    key = await opened(amends)
    await walk_to(amends, key, Stage.NEEDS_GATHERED)
    await take(amends, key, "propose_remedy")
    snap = await take(amends, key, "decline_remedy")
    assert snap.stage == Stage.NEEDS_GATHERED and snap.proposal is None
    assert [r.status for r in snap.remedies] == ["declined"]
    steps = [e for e in snap.timeline if e.step != "notice"]  # a notice's e-mail may land in between
    assert "declined: not enough" in steps[-2].detail
    assert steps[-1].step == "clock_resumed"  # the customer answered
    await assert_refused(amends, key, "accept_remedy", match="no remedy has been proposed yet")


async def test_bad_json_from_a_backend_names_the_field(amends):
    """A backend sending raw JSON (not the typed client) gets pydantic's reason, and nothing is written."""
    key = await opened(amends)
    handle = amends.client.get_workflow_handle(f"incident-{key}")
    before = await history_kinds(handle)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update("apologise", {"by": {"name": "Priya", "role": "intern"}})
    assert err.value.cause.type == "InvalidInput"
    assert err.value.cause.message.startswith("by.role: Input should be 'agent', 'manager', 'director'")
    after = await history_kinds(handle)
    assert "workflow_execution_update_accepted" not in after[len(before):]

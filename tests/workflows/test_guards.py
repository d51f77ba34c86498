"""Guards: a refused step names the reason and writes nothing to history."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.helpers import AGENT, CUSTOMER, DIRECTOR, MANAGER, history_kinds, keep_history, paid_intent, report, settled
from workflows.client import AmendsClient, StepRefused
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    ApprovalInput,
    CloseInput,
    CompleteActionInput,
    DeclineInput,
    FlagInput,
    FulfilmentConfirmation,
    NeedsInput,
    PostmortemInput,
    RemedyProposal,
    RenegotiateInput,
)
from workflows.stages import Stage

REDO = {"kind": "redo", "description": "we pitch the tent for you on site"}


def refund(cents: int, currency: str = "USD") -> dict:
    return {"kind": "refund", "amount": {"amount": cents, "currency": currency}}


STEP_INPUTS = {
    "apologise": ApologyInput(by=AGENT),
    "record_needs": NeedsInput(by=AGENT, needs="a working tent"),
    "propose_remedy": RemedyProposal(by=AGENT, items=[REDO]),
    "approve_remedy": ApprovalInput(by=MANAGER),
    "accept_remedy": AcceptInput(by=CUSTOMER, channel="email"),
    "decline_remedy": DeclineInput(by=CUSTOMER, reason="not enough"),
    "confirm_fulfilment": FulfilmentConfirmation(by=AGENT, item_id="remedy-1/item-1"),
    "renegotiate": RenegotiateInput(by=AGENT, reason="the redo cannot be scheduled"),
    "close": CloseInput(by=AGENT),
    "record_postmortem": PostmortemInput(
        by=MANAGER, what_happened="a parcel left with the wrong label", root_cause_category="process",
        root_cause="labels are not checked against the order", preventive_actions=[
            {"action": "scan every label against its order", "owner": {"name": "Ops lead", "email": "ops@example.com"},
             "due": date.today() + timedelta(days=30)}],
    ),
    "complete_action": CompleteActionInput(by=MANAGER, action_id="action-1"),
    "flag_account": FlagInput(by=MANAGER, reason="threatened staff"),
}


async def take(amends: AmendsClient, key: str, step: str):
    return await getattr(amends, step)(key, STEP_INPUTS[step])


# The shortest walk to each stage (manual items only, so no money moves).
WALK = ["apologise", "record_needs", "propose_remedy", "accept_remedy", "confirm_fulfilment", "close", "record_postmortem"]
REACHES = {
    Stage.DETECTED: 0, Stage.APOLOGISED: 1, Stage.NEEDS_GATHERED: 2, Stage.REMEDY_AGREED: 4,
    Stage.FULFILLED: 5, Stage.CLOSED: 6, Stage.POSTMORTEM_DONE: 7,
}


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
    client = AmendsClient(env.client, settings.task_queue)
    client.speculative_tasks = request.param == "dev-server"  # type: ignore[attr-defined]
    return client


async def opened(amends, stripe=None, **kw) -> str:
    amount = kw.pop("amount", 8_000)
    pi = await paid_intent(stripe, amount) if stripe else "pi_unused"
    rep = report(pi, amount=amount, **kw)
    await amends.open_incident(rep)
    return rep.incident_key


async def walk_to(amends, key: str, stage: Stage) -> None:
    for step in WALK[: REACHES[stage]]:
        await take(amends, key, step)
    snap = await amends.snapshot(key)
    assert snap.stage == stage


async def assert_refused(amends, key: str, step: str, arg=None, *, match: str) -> str:
    """The step is refused with ``match`` in its reason, and history is untouched."""
    handle = amends.handle(key)
    before = await settled(handle)
    snap_before = await amends.snapshot(key)
    with pytest.raises(StepRefused) as refused:
        await getattr(amends, step)(key, arg if arg is not None else STEP_INPUTS[step])
    assert match in str(refused.value)
    after = await history_kinds(handle)
    assert after[: len(before)] == before
    added = after[len(before):]
    if amends.speculative_tasks:
        assert added == []
    else:
        assert set(added) <= {"workflow_task_scheduled", "workflow_task_started", "workflow_task_completed"}
    assert (await amends.snapshot(key)).model_dump() == snap_before.model_dump()
    return str(refused.value)


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
    snap = await amends.accept_remedy(key, STEP_INPUTS["accept_remedy"])
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
        amends, key, "approve_remedy", ApprovalInput(by=MANAGER),
        match="a manager may approve up to 500.00 USD; remedy #1 is worth 600.00 USD and needs a director",
    )
    await amends.approve_remedy(key, ApprovalInput(by=DIRECTOR))
    snap = await amends.accept_remedy(key, STEP_INPUTS["accept_remedy"])
    assert snap.stage == Stage.REMEDY_AGREED
    approval = next(e for e in snap.timeline if e.step == "approve_remedy")
    assert approval.by == DIRECTOR and "limit 100000.00 USD" in approval.detail
    await settled(amends.handle(key))
    await keep_history(amends.handle(key), "approval_and_refund")


async def test_declined_proposal_returns_to_listening_and_is_kept(amends):
    key = await opened(amends)
    await walk_to(amends, key, Stage.NEEDS_GATHERED)
    await take(amends, key, "propose_remedy")
    snap = await take(amends, key, "decline_remedy")
    assert snap.stage == Stage.NEEDS_GATHERED and snap.proposal is None
    assert [r.status for r in snap.remedies] == ["declined"]
    assert "declined: not enough" in snap.timeline[-2].detail
    assert snap.timeline[-1].step == "clock_resumed"  # the customer answered
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


async def wait_for(amends, key, predicate, tries: int = 200):
    import asyncio
    from datetime import timedelta

    from temporalio.service import RPCError

    from workflows.incident import IncidentRecovery

    snap = None
    for _ in range(tries):
        try:
            # Short: a query that lands just as the incident continues as new
            # can hang on the time-skipping server; the next one is answered.
            snap = await amends.handle(key).query(IncidentRecovery.snapshot, rpc_timeout=timedelta(seconds=5))
        except RPCError:
            continue
        if predicate(snap):
            return snap
        await asyncio.sleep(0.05)
    assert snap is not None, "the incident never answered its snapshot query"
    raise AssertionError(f"condition not reached; stage {snap.stage}, timeline {[e.step for e in snap.timeline]}")

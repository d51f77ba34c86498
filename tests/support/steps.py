"""Taking steps in tests: an input for every step, walks to each stage, refusals and waiting for a snapshot."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from temporalio.service import RPCError

from tests.support.factories import AGENT, CUSTOMER, MANAGER, REDO, paid_intent, report
from tests.support.history import history_kinds, settled, unwritten
from workflows.client import AmendsClient, StepRefused
from workflows.incident import IncidentRecovery
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    ApprovalInput,
    CloseInput,
    CompleteActionInput,
    DeclineInput,
    FlagInput,
    FulfilmentConfirmation,
    IncidentReport,
    NeedsInput,
    PostmortemInput,
    RemedyProposal,
    RenegotiateInput,
)
from workflows.stages import Stage

STEP_INPUTS = {
    "apologise": ApologyInput(by=AGENT),
    "record_needs": NeedsInput(by=AGENT, needs="a working tent"),
    "propose_remedy": RemedyProposal(by=AGENT, items=[REDO]),
    "approve_remedy": ApprovalInput(by=MANAGER, remedy=1, total=0),
    "accept_remedy": AcceptInput(by=CUSTOMER, channel="email", remedy=1),
    "decline_remedy": DeclineInput(by=CUSTOMER, reason="not enough", remedy=1),
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
WALK = [
    "apologise", "record_needs", "propose_remedy", "accept_remedy", "confirm_fulfilment", "close", "record_postmortem",
]
REACHES = {
    Stage.DETECTED: 0, Stage.APOLOGISED: 1, Stage.NEEDS_GATHERED: 2, Stage.REMEDY_AGREED: 4,
    Stage.FULFILLED: 5, Stage.CLOSED: 6, Stage.POSTMORTEM_DONE: 7,
}


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
        # The dev server rejects on a speculative task that leaves no trace, except for the first update
        # after an update-with-start open, which it rejects on a workflow task of its own: nothing of the
        # update is written either way.
        assert unwritten(before, after), added
    else:
        assert set(added) <= {"workflow_task_scheduled", "workflow_task_started", "workflow_task_completed"}
    assert (await amends.snapshot(key)).model_dump() == snap_before.model_dump()
    return str(refused.value)


def last_entry(snap):
    """The timeline's last entry, leaving out the records of notices going out (they land when the mail does)."""
    return next(e for e in reversed(snap.timeline) if e.step != "notice")


async def wait_for(amends, key, predicate, tries: int = 200):
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


async def agreed_refund(amends: AmendsClient, rep: IncidentReport, cents: int) -> None:
    """Open ``rep`` and walk it to an agreed remedy of one refund of ``cents`` (in the order's currency)."""
    key = rep.incident_key
    await amends.open_incident(rep)
    for step in ("apologise", "record_needs"):
        await take(amends, key, step)
    currency = rep.order.amount_paid.currency
    await amends.propose_remedy(key, RemedyProposal(
        by=AGENT, items=[{"kind": "refund", "amount": {"amount": cents, "currency": currency}}]))
    await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))

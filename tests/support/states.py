"""Incidents in memory for the fast tier: a ``Recovery`` over a ``RecoveryState``, no server and no workflow.

The builders below change the state the way the steps' effects do
(``workflows/steps.py``) without the workflow around them, so that a guard
can be asked about any situation; ``validate`` asks the same two questions
as the update validator (``IncidentRecovery.validate``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.factories import AGENT, report
from tests.support.steps import STEP_INPUTS
from workflows.guards import Refused, check_table
from workflows.inputs import Actor, Role
from workflows.money import Money
from workflows.recovery import Recovery
from workflows.snapshot import ActionState, MoneyMovement, Remedy, RemedyItemState
from workflows.stages import Stage, build_machine
from workflows.state import RecoveryState
from workflows.steps import REGISTRY

NOW = datetime.now(UTC)


def recovery(stage: Stage = Stage.DETECTED, payment_reference: str | None = "pi_unit", **report_kw: Any) -> Recovery:
    """A fresh incident at ``stage``, its machine built over it as the workflow builds it."""
    rep = report(payment_reference, **report_kw)
    r = Recovery(RecoveryState(workflow_id=f"incident-{rep.incident_key}", report=rep))
    build_machine(r, initial=stage)
    assert r.s.stage == stage
    return r


def validate(r: Recovery, name: str, step: Any = None, now: datetime = NOW) -> None:
    """The update validator: the transition table (stage and conditions), then the step's own guard."""
    check_table(r, name)
    guard = REGISTRY[name].guard if name in REGISTRY else None
    if guard is not None:
        guard(r, step if step is not None else STEP_INPUTS[name], now)


def refusal(r: Recovery, name: str, step: Any = None, now: datetime = NOW) -> str:
    """The reason ``name`` is refused; the state is left exactly as it was."""
    before = r.s.model_dump()
    with pytest.raises(Refused) as refused:
        validate(r, name, step, now)
    assert r.s.model_dump() == before, "a guard changed the state"
    return str(refused.value)


# ---------------------------------------------------------------- what the effects do to the state


def propose(r: Recovery, items: list, by: Actor = AGENT) -> Remedy:
    """As ``propose_remedy``: supersede an unanswered proposal, number the items, ask for approval above the limit."""
    for old in r.s.remedies:
        if old.status == "proposed":
            old.status = "declined"
    number = len(r.s.remedies) + 1
    remedy = Remedy(
        number=number, proposed_by=by, proposed_at=NOW,
        items=[RemedyItemState(item_id=f"remedy-{number}/item-{n}", item=item) for n, item in enumerate(items, 1)],
    )
    total = r.remedy_value(remedy)
    if total > r.limit(by.role):
        remedy.needs_approval_from = r.approver_for(total)
    if by.role != Role.DIRECTOR and r.beyond_goodwill(remedy):
        remedy.needs_approval_from = Role.DIRECTOR
    r.s.remedies.append(remedy)
    return remedy


def approve(r: Recovery, by: Actor) -> None:
    p = r.proposal
    assert p is not None
    p.approved_by = by


def accept(r: Recovery, by: Actor) -> Remedy:
    """As ``accept_remedy``: the proposal is agreed and the incident moves to ``remedy_agreed``."""
    p = r.proposal
    assert p is not None
    p.accepted_by, p.accepted_at, p.status = by, NOW, "agreed"
    r.state = Stage.REMEDY_AGREED
    return p


def decline(r: Recovery) -> None:
    p = r.proposal
    assert p is not None
    p.status = "declined"


def item(r: Recovery, item_id: str) -> RemedyItemState:
    return next(i for remedy in r.s.remedies for i in remedy.items if i.item_id == item_id)


def delivered(r: Recovery, item_id: str) -> None:
    """As delivery does when an item is done: a refund's money moved, the item delivered."""
    it = item(r, item_id)
    if it.item.refund_amount():
        r.s.money_moved.append(MoneyMovement(
            item_id=item_id, kind="refund", amount=Money(amount=it.item.refund_amount(), currency=r.currency),
            reference=f"re_{len(r.s.money_moved) + 1}", at=NOW,
        ))
    it.status = "delivered"


def failed(r: Recovery, item_id: str, failure: str | None = None) -> None:
    it = item(r, item_id)
    it.status, it.failure = "failed", failure


def renegotiate(r: Recovery) -> None:
    """As ``renegotiate``: what is not delivered or failed is cancelled; back to listening."""
    agreed = r.agreed
    assert agreed is not None
    agreed.status = "renegotiated"
    for it in agreed.items:
        if it.status not in ("delivered", "failed"):
            it.status = "cancelled"
    r.state = Stage.NEEDS_GATHERED


def closed(r: Recovery, stage: Stage = Stage.CLOSED, at: datetime | None = NOW) -> Recovery:
    r.state = stage
    r.s.closed_at = at
    return r


def with_actions(r: Recovery, *statuses: str) -> Recovery:
    """Preventive actions ``action-1``… with these statuses, as ``record_postmortem`` and ``complete_action``
    leave them."""
    r.s.actions = [
        ActionState(
            action_id=f"action-{n}", action=f"action {n}", owner={"name": "Ops lead", "email": "ops@example.com"},
            due=NOW.date(), status=status, completed_at=NOW if status == "done" else None,
        )
        for n, status in enumerate(statuses, 1)
    ]
    return r

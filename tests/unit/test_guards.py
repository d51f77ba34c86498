"""Every refusal of the transition table and of each step's guard, on incidents in memory (no server).

The same messages reach callers through the update validators; the server
tests (tests/workflows/test_guards.py) check that a refusal there also
leaves the history untouched.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from transitions import MachineError

from tests.support.factories import AGENT, CUSTOMER, DIRECTOR, MANAGER, REDO, refund
from tests.support.states import (
    NOW,
    accept,
    approve,
    closed,
    delivered,
    failed,
    item,
    propose,
    recovery,
    refusal,
    renegotiate,
    validate,
    with_actions,
)
from tests.support.steps import STEP_INPUTS
from workflows.guards import Refused, check_money, check_table
from workflows.inputs import (
    AcceptInput,
    Actor,
    ApprovalInput,
    CompleteActionInput,
    FulfilmentConfirmation,
    PostmortemInput,
    RemedyProposal,
    Role,
)
from workflows.money import Money
from workflows.snapshot import MoneyMovement
from workflows.stages import AFTER_CLOSURE, HUMAN_STEPS, STEPS, Stage, step_for

REPLACEMENT = {"kind": "replacement", "description": "a new tent, sent today"}


def agreed(r, items, by=AGENT):
    """``items`` proposed by ``by`` and accepted by the customer."""
    r.state = Stage.NEEDS_GATHERED
    propose(r, items, by)
    return accept(r, CUSTOMER)


# ---------------------------------------------------------------- the table: stage


@pytest.mark.parametrize("stage", [s for s in Stage if s not in AFTER_CLOSURE])
def test_a_step_the_stage_does_not_allow_names_the_stage_and_the_steps_allowed_now(stage):
    for trigger in HUMAN_STEPS:
        if step_for(stage, trigger) is not None:
            continue
        r = recovery(stage)
        allowed = ", ".join(r.allowed_now())
        assert refusal(r, trigger) == f"{trigger} refused: the incident is at stage '{stage}'; allowed now: {allowed}"


def test_the_first_refusal_names_apologise_and_flag_account():
    assert refusal(recovery(), "close") == (
        "close refused: the incident is at stage 'detected'; allowed now: apologise, flag_account"
    )
    assert refusal(recovery(Stage.APOLOGISED), "propose_remedy") == (
        "propose_remedy refused: the incident is at stage 'apologised'; allowed now: record_needs, flag_account"
    )


@pytest.mark.parametrize("stage", sorted(AFTER_CLOSURE))
def test_after_closure_every_outcome_change_is_refused_with_the_closing_date(stage):
    r = closed(recovery(), stage, at=NOW - timedelta(days=3))
    day = (NOW - timedelta(days=3)).date().isoformat()
    refused = [t for t in HUMAN_STEPS if step_for(stage, t) is None]
    assert {"apologise", "record_needs", "propose_remedy", "accept_remedy", "close"} <= set(refused)
    for trigger in refused:
        assert refusal(r, trigger) == (
            f"{trigger} refused: this incident was closed on {day} and cannot be reopened; "
            f"open a new incident with a new key"
        )


def test_a_closed_incident_without_a_closing_time_says_an_earlier_date():
    r = closed(recovery(), Stage.POSTMORTEM_DONE, at=None)
    assert refusal(r, "record_needs") == (
        "record_needs refused: this incident was closed on an earlier date and cannot be reopened; "
        "open a new incident with a new key"
    )


def test_learning_and_flagging_stay_open_after_closure():
    r = closed(recovery())
    validate(r, "record_postmortem")
    validate(r, "flag_account")


# ---------------------------------------------------------------- the table: conditions


@pytest.mark.parametrize("trigger", ["approve_remedy", "accept_remedy", "decline_remedy"])
def test_no_answer_to_a_proposal_before_there_is_one(trigger):
    r = recovery(Stage.NEEDS_GATHERED)
    assert refusal(r, trigger) == f"{trigger} refused: no remedy has been proposed yet; propose_remedy first"


def test_a_declined_proposal_cannot_be_accepted():
    r = recovery(Stage.NEEDS_GATHERED)
    propose(r, [REDO])
    validate(r, "accept_remedy")
    r.proposal.status = "declined"
    assert "no remedy has been proposed yet" in refusal(r, "accept_remedy")


def test_acceptance_above_the_proposers_limit_waits_for_approval():
    r = recovery(Stage.NEEDS_GATHERED, amount=100_000)
    remedy = propose(r, [refund(60_000)], by=AGENT)
    assert remedy.needs_approval_from == Role.DIRECTOR
    assert refusal(r, "accept_remedy") == (
        "accept_remedy refused: remedy #1 is worth 600.00 USD, above what an agent may promise; "
        "it needs approve_remedy by a director or above before the customer's acceptance counts"
    )
    approve(r, DIRECTOR)
    validate(r, "accept_remedy")


def test_renegotiation_needs_an_undelivered_item_not_in_progress():
    r = recovery()
    agreed(r, [REDO, refund(1_000)])
    validate(r, "renegotiate")
    item(r, "remedy-1/item-2").status = "in_progress"  # the refund is on its way to Stripe
    reason = "renegotiate refused: the agreed remedy has no undelivered item that is not already in progress"
    assert refusal(r, "renegotiate") == reason
    item(r, "remedy-1/item-2").status = "pending"
    for n in (1, 2):
        delivered(r, f"remedy-1/item-{n}")
    assert refusal(r, "renegotiate") == reason


def test_confirmation_needs_a_work_order_waiting():
    r = recovery()
    agreed(r, [refund(1_000)])
    assert refusal(r, "confirm_fulfilment") == (
        "confirm_fulfilment refused: the agreed remedy has no work order waiting for confirmation"
    )


def test_the_engine_fulfils_only_a_remedy_delivered_in_full():
    r = recovery()
    agreed(r, [REDO, refund(1_000)])
    delivered(r, "remedy-1/item-2")
    with pytest.raises(Refused, match="^fulfil refused: the agreed remedy is not fully delivered yet$"):
        check_table(r, "fulfil")
    delivered(r, "remedy-1/item-1")
    check_table(r, "fulfil")


def test_completing_an_action_needs_an_open_one():
    # The condition has no sentence of its own in guards.condition_reason: its name is the reason.
    r = with_actions(recovery(Stage.POSTMORTEM_DONE), "done", "done")
    assert refusal(r, "complete_action") == "complete_action refused: every preventive action of the post-mortem is done already"


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(("bad", "field"), [
    (refund(1_000, "EUR"), "amount"),
    ({"kind": "coupon", "amount_off": {"amount": 500, "currency": "EUR"}}, "amount_off"),
    ({"kind": "waive_balance", "amount": {"amount": 500, "currency": "EUR"}, "invoice_reference": "inv-1"}, "amount"),
    ({"kind": "split_cost", "cost": {"amount": 500, "currency": "EUR"}, "our_share_percent": 50,
      "description": "the campsite"}, "cost"),
    ({"kind": "gift", "coupon_amount": {"amount": 500, "currency": "EUR"}}, "coupon_amount"),
])
def test_an_amount_in_another_currency_is_refused_naming_the_field(bad, field):
    r = recovery(Stage.NEEDS_GATHERED)
    proposal = RemedyProposal(by=AGENT, items=[REDO, bad])
    assert refusal(r, "propose_remedy", proposal) == (
        f"items[1].{field}.currency: must be the order's currency USD, not EUR"
    )


def test_a_refund_needs_a_payment_to_go_back_to():
    r = recovery(Stage.NEEDS_GATHERED, payment_reference=None)
    validate(r, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO]))  # no money back: no payment needed
    assert refusal(r, "propose_remedy", RemedyProposal(by=AGENT, items=[REDO, refund(1_000)])) == (
        "order.payment_reference: a refund needs the payment it goes back to; none was given"
    )


def test_refunds_never_add_up_to_more_than_was_paid():
    r = recovery(Stage.NEEDS_GATHERED, amount=8_000)
    assert refusal(r, "propose_remedy", RemedyProposal(by=MANAGER, items=[refund(5_000), refund(3_001)])) == (
        "items: refunds would total 80.01 USD, more than the 80.00 USD paid "
        "(0.00 USD already refunded or agreed; at most 80.00 USD more)"
    )
    validate(r, "propose_remedy", RemedyProposal(by=MANAGER, items=[refund(5_000), refund(3_000)]))


def test_the_ceiling_counts_what_went_back_before_a_renegotiation():
    r = recovery(amount=8_000)
    agreed(r, [refund(3_000), refund(2_000), REDO])
    delivered(r, "remedy-1/item-1")  # 30.00 back
    failed(r, "remedy-1/item-2", "card expired")  # a failed refund does not count
    renegotiate(r)  # the redo is cancelled
    assert refusal(r, "propose_remedy", RemedyProposal(by=MANAGER, items=[refund(5_001)])) == (
        "items: refunds would total 80.01 USD, more than the 80.00 USD paid "
        "(30.00 USD already refunded or agreed; at most 50.00 USD more)"
    )
    validate(r, "propose_remedy", RemedyProposal(by=MANAGER, items=[refund(5_000)]))


def test_the_ceiling_counts_refunds_agreed_and_not_yet_made():
    r = recovery(amount=8_000)
    agreed(r, [refund(3_000), refund(2_000)])
    delivered(r, "remedy-1/item-1")
    item(r, "remedy-1/item-2").status = "in_progress"
    assert r.committed_refunds() == 5_000
    with pytest.raises(Refused, match=r"\(50.00 USD already refunded or agreed; at most 30.00 USD more\)$"):
        check_money(r, RemedyProposal(by=MANAGER, items=[refund(3_001)]).items, "items")
    check_money(r, RemedyProposal(by=MANAGER, items=[refund(3_000)]).items, "items")


def test_the_ceiling_in_yen_shows_yen():
    r = recovery(Stage.NEEDS_GATHERED, amount=8_000, currency="JPY")
    assert refusal(r, "propose_remedy", RemedyProposal(by=DIRECTOR, items=[refund(8_001, "JPY")])) == (
        "items: refunds would total 8001 JPY, more than the 8000 JPY paid "
        "(0 JPY already refunded or agreed; at most 8000 JPY more)"
    )


def test_acceptance_checks_the_ceiling_again():
    r = recovery(Stage.NEEDS_GATHERED, amount=8_000)
    validate(r, "propose_remedy", RemedyProposal(by=MANAGER, items=[refund(6_000)]))
    propose(r, [refund(6_000)], by=MANAGER)
    # The ceiling moved since the proposal: 30.00 went back in the meantime.
    r.s.money_moved.append(MoneyMovement(item_id="elsewhere", kind="refund", reference="re_1", at=NOW,
                                         amount=Money(amount=3_000, currency="USD")))
    assert refusal(r, "accept_remedy", AcceptInput(by=CUSTOMER, remedy=1)) == (
        "items: refunds would total 90.00 USD, more than the 80.00 USD paid "
        "(30.00 USD already refunded or agreed; at most 50.00 USD more)"
    )


# ---------------------------------------------------------------- approval


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.BACKEND, Role.SYSTEM])
def test_only_staff_approve(role):
    r = recovery(Stage.NEEDS_GATHERED, amount=100_000)
    propose(r, [refund(60_000)], by=AGENT)
    article = "an" if str(role)[0] in "aeiou" else "a"
    assert refusal(r, "approve_remedy", ApprovalInput(by=Actor(name="someone", role=role), remedy=1, total=60_000)) == (
        f"role: {article} {role} cannot approve a remedy; an agent, manager or director can"
    )


def test_an_approver_above_their_limit_is_sent_higher():
    r = recovery(Stage.NEEDS_GATHERED, amount=100_000)
    propose(r, [refund(60_000)], by=AGENT)
    assert refusal(r, "approve_remedy", ApprovalInput(by=MANAGER, remedy=1, total=60_000)) == (
        "role: a manager may approve up to 500.00 USD; remedy #1 is worth 600.00 USD and needs a director"
    )
    validate(r, "approve_remedy", ApprovalInput(by=DIRECTOR, remedy=1, total=60_000))


def test_approval_limits_in_yen_show_yen():
    r = recovery(Stage.NEEDS_GATHERED, amount=100_000, currency="JPY")
    propose(r, [refund(60_000, "JPY")], by=AGENT)
    assert refusal(r, "approve_remedy", ApprovalInput(by=MANAGER, remedy=1, total=60_000)) == (
        "role: a manager may approve up to 50000 JPY; remedy #1 is worth 60000 JPY and needs a director"
    )


# ---------------------------------------------------------------- confirming an item


def confirm(item_id: str) -> FulfilmentConfirmation:
    return FulfilmentConfirmation(by=AGENT, item_id=item_id)


def test_confirming_an_item_not_in_the_remedy_lists_those_waiting():
    r = recovery()
    agreed(r, [REDO, refund(1_000), REPLACEMENT])
    assert refusal(r, "confirm_fulfilment", confirm("remedy-1/item-9")) == (
        "item_id: no item 'remedy-1/item-9' in the agreed remedy; items to confirm: remedy-1/item-1, remedy-1/item-3"
    )


def test_the_engine_delivers_money_and_nobody_confirms_it():
    r = recovery()
    agreed(r, [REDO, refund(1_000)])
    assert refusal(r, "confirm_fulfilment", confirm("remedy-1/item-2")) == (
        "item_id: 'remedy-1/item-2' is a refund; the engine delivers it, nobody confirms it"
    )


def test_an_item_is_confirmed_once():
    r = recovery()
    agreed(r, [REDO, REPLACEMENT])
    validate(r, "confirm_fulfilment", confirm("remedy-1/item-1"))
    delivered(r, "remedy-1/item-1")
    assert refusal(r, "confirm_fulfilment", confirm("remedy-1/item-1")) == (
        "item_id: 'remedy-1/item-1' was already confirmed as delivered"
    )


def test_a_failed_item_cannot_be_confirmed():
    r = recovery()
    agreed(r, [REDO, REPLACEMENT, {"kind": "upgrade", "description": "the four-season model"}, REDO])
    failed(r, "remedy-1/item-1", "the fitter could not reach the site")
    assert refusal(r, "confirm_fulfilment", confirm("remedy-1/item-1")) == (
        "item_id: 'remedy-1/item-1' failed: the fitter could not reach the site"
    )
    failed(r, "remedy-1/item-2")
    assert refusal(r, "confirm_fulfilment", confirm("remedy-1/item-2")) == (
        "item_id: 'remedy-1/item-2' failed: renegotiate the remedy"
    )
    item(r, "remedy-1/item-3").status = "cancelled"
    assert refusal(r, "confirm_fulfilment", confirm("remedy-1/item-3")) == (
        "item_id: 'remedy-1/item-3' cancelled: renegotiate the remedy"
    )


# ---------------------------------------------------------------- the post-mortem


def postmortem(**changes) -> PostmortemInput:
    data = STEP_INPUTS["record_postmortem"].model_dump()
    data.update(changes)
    return PostmortemInput.model_validate(data)


def test_a_preventive_action_is_not_due_in_the_past():
    r = closed(recovery())
    today = NOW.date()
    action = {"action": "check labels", "owner": {"name": "Ops lead", "email": "ops@example.com"}}
    pm = postmortem(preventive_actions=[{**action, "due": today}, {**action, "due": today - timedelta(days=1)}])
    assert refusal(r, "record_postmortem", pm) == (
        f"preventive_actions[1].due: {(today - timedelta(days=1)).isoformat()} is in the past; "
        f"give a due date from {today.isoformat()} on"
    )


@pytest.mark.parametrize(("changes", "named"), [
    ({"what_happened": "Kevin Lomax printed the wrong label"}, "Kevin Lomax"),
    ({"root_cause": "lomax did not check the label"}, "Kevin Lomax"),
    ({"contributing_factors": [{"condition": "Rita was alone on the shift", "kind": "capacity"}]}, "Rita Moreno"),
])
def test_a_blameless_postmortem_names_no_one(changes, named):
    r = closed(recovery())
    assert refusal(r, "record_postmortem", postmortem(**changes)) == (
        f"root_cause: a blameless post-mortem names no one ('{named}' appears); describe the "
        f"condition of the system that let it happen"
    )


def test_a_postmortem_about_the_system_is_taken():
    validate(closed(recovery()), "record_postmortem", postmortem(
        contributing_factors=[{"condition": "labels are printed by hand", "kind": "tooling"}]))


# ---------------------------------------------------------------- actions and flags


def test_completing_an_unknown_action_lists_the_open_ones():
    r = with_actions(recovery(Stage.POSTMORTEM_DONE), "open", "done", "open")
    assert refusal(r, "complete_action", CompleteActionInput(by=MANAGER, action_id="action-9")) == (
        "action_id: no action 'action-9'; open actions: action-1, action-3"
    )


def test_an_action_is_completed_once():
    r = with_actions(recovery(Stage.POSTMORTEM_DONE), "open", "done")
    validate(r, "complete_action", CompleteActionInput(by=MANAGER, action_id="action-1"))
    assert refusal(r, "complete_action", CompleteActionInput(by=MANAGER, action_id="action-2")) == (
        f"action_id: 'action-2' was completed on {NOW:%Y-%m-%d}"
    )


@pytest.mark.parametrize("stage", list(Stage))
def test_an_account_is_red_flagged_once(stage):
    r = recovery(stage)
    validate(r, "flag_account")
    r.s.red_flagged = True
    assert refusal(r, "flag_account") == "flag_account refused: the account is already red-flagged"


# ---------------------------------------------------------------- the table and the machine agree


@pytest.mark.parametrize("stage", list(Stage))
def test_the_validator_allows_exactly_what_the_machine_takes(stage):
    """On a fresh incident at each stage, check_table passes a trigger exactly when the machine takes it."""
    for trigger in dict.fromkeys(s.trigger for s in STEPS):
        r = recovery(stage)
        try:
            check_table(r, trigger)
            allowed = True
        except Refused:
            allowed = False
        try:
            taken = getattr(r, trigger)()
        except MachineError:
            taken = False
        assert allowed == taken, f"{trigger} at {stage}: validator {allowed}, machine {taken}"

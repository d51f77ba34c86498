"""Bound decisions and server-side limits: an approval or an answer names the remedy it decides,
only the customer's yes counts, goodwill has a ceiling, and the limits are the worker's, not the report's."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.support.factories import AGENT, CUSTOMER, DIRECTOR, MANAGER, refund, report
from tests.support.states import propose, recovery, refusal, validate
from workflows.inputs import AcceptInput, Actor, ApprovalInput, DeclineInput, Role
from workflows.sla import RemedyPolicy
from workflows.stages import Stage

USD = "USD"


def coupon(cents: int) -> dict:
    return {"kind": "coupon", "amount_off": {"amount": cents, "currency": USD}}


def two_proposals():
    r = recovery(Stage.NEEDS_GATHERED, amount=100_000)
    propose(r, [refund(10_000)], by=AGENT)  # #1: 100.00, superseded by
    propose(r, [refund(90_000)], by=DIRECTOR)  # #2: 900.00, pending
    return r


def test_an_approval_naming_an_earlier_remedy_is_refused():
    r = two_proposals()
    assert refusal(r, "approve_remedy", ApprovalInput(by=DIRECTOR, remedy=1, total=10_000)) == (
        "remedy: #1 is not the pending proposal; #2 is"
    )
    validate(r, "approve_remedy", ApprovalInput(by=DIRECTOR, remedy=2, total=90_000))


def test_an_approval_states_the_total_it_approves():
    r = two_proposals()
    assert refusal(r, "approve_remedy", ApprovalInput(by=DIRECTOR, remedy=2, total=10_000)) == (
        "total: remedy #2 is worth 900.00 USD, not 100.00 USD; approve what is proposed"
    )
    assert refusal(r, "approve_remedy", ApprovalInput(by=DIRECTOR, remedy=2)) == (
        "total: state the total you approve; remedy #2 is worth 900.00 USD (90000 in minor units)"
    )


@pytest.mark.parametrize(("step", "name"), [
    (ApprovalInput(by=DIRECTOR, total=90_000), "approve_remedy"),
    (AcceptInput(by=CUSTOMER, channel="email"), "accept_remedy"),
    (DeclineInput(by=CUSTOMER, reason="no"), "decline_remedy"),
])
def test_every_decision_names_its_remedy(step, name):
    r = two_proposals()
    assert refusal(r, name, step) == "remedy: name the remedy this decides; the pending proposal is #2"


def test_an_answer_to_an_earlier_remedy_is_refused():
    r = two_proposals()
    assert refusal(r, "decline_remedy", DeclineInput(by=CUSTOMER, reason="no", remedy=1)) == (
        "remedy: #1 is not the pending proposal; #2 is"
    )


@pytest.mark.parametrize("role", [Role.AGENT, Role.MANAGER, Role.DIRECTOR])
def test_staff_cannot_accept_for_themselves(role):
    r = recovery(Stage.NEEDS_GATHERED)
    propose(r, [refund(1_000)], by=AGENT)
    staff = Actor(name="someone", role=role)
    reason = refusal(r, "accept_remedy", AcceptInput(by=staff, channel="phone", remedy=1))
    assert reason.startswith(f"role: a{'n' if role == Role.AGENT else ''} {role}'s own acceptance does not count")
    # Not without saying on which channel the customer said yes, either.
    assert "own acceptance does not count" in refusal(
        r, "accept_remedy", AcceptInput(by=staff, on_behalf_of_customer=True, remedy=1))
    validate(r, "accept_remedy", AcceptInput(by=staff, on_behalf_of_customer=True, channel="phone", remedy=1))


def test_the_customer_or_a_backend_acting_for_them_accepts():
    r = recovery(Stage.NEEDS_GATHERED)
    propose(r, [refund(1_000)], by=AGENT)
    validate(r, "accept_remedy", AcceptInput(by=CUSTOMER, channel="email", remedy=1))
    validate(r, "accept_remedy", AcceptInput(by=Actor(name="shop backend", role=Role.BACKEND), remedy=1))
    assert "own acceptance does not count" in refusal(
        r, "accept_remedy", AcceptInput(by=Actor(name="amends", role=Role.SYSTEM), remedy=1))


def test_a_coupon_beyond_the_goodwill_ceiling_waits_for_a_director():
    r = recovery(Stage.NEEDS_GATHERED, amount=2_000)  # 20.00 paid: goodwill up to 20.00 by default
    propose(r, [coupon(3_000)], by=MANAGER)  # within a manager's 500.00, beyond the ceiling
    assert refusal(r, "accept_remedy", AcceptInput(by=CUSTOMER, channel="email", remedy=1)) == (
        "accept_remedy refused: remedy #1 gives 30.00 USD in coupons, waivers and gifts, beyond this incident's "
        "goodwill ceiling of 20.00 USD; it needs approve_remedy by a director before the customer's acceptance counts"
    )
    assert refusal(r, "approve_remedy", ApprovalInput(by=MANAGER, remedy=1, total=3_000)) == (
        "role: remedy #1 gives 30.00 USD in coupons, waivers and gifts, beyond this incident's goodwill ceiling "
        "of 20.00 USD (0.00 USD already agreed); only a director can approve it"
    )
    validate(r, "approve_remedy", ApprovalInput(by=DIRECTOR, remedy=1, total=3_000))


def test_a_coupon_beyond_the_proposers_limit_waits_for_approval():
    r = recovery(Stage.NEEDS_GATHERED, amount=100_000)
    propose(r, [coupon(6_000)], by=AGENT)  # an agent may promise 50.00
    assert "needs approve_remedy by a manager or above" in refusal(
        r, "accept_remedy", AcceptInput(by=CUSTOMER, channel="email", remedy=1))


def test_the_limits_are_the_policys_and_a_report_cannot_raise_them():
    with pytest.raises(ValidationError, match="approval_limits\n.*set by the worker's policy, not by the report"):
        report(None, approval_limits={"agent": 10_000_000, "manager": 10_000_000, "director": 10_000_000})
    # Reports recorded before carried the defaults; those still read.
    assert report(None, approval_limits={"agent": 5_000, "manager": 50_000, "director": 10_000_000})
    assert RemedyPolicy().approval_limits.agent == 5_000 and RemedyPolicy().goodwill_multiple == 1.0

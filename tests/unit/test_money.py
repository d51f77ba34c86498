"""Money rules without a server: how amounts are written, the refund ceiling, and its message in the activity."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from activities.payments import ceiling_message
from tests.support.factories import CUSTOMER, DIRECTOR, REDO, refund
from tests.support.states import (
    accept,
    delivered,
    failed,
    propose,
    recovery,
    renegotiate,
    validate,
)
from workflows.guards import Refused
from workflows.inputs import AcceptInput, RemedyProposal
from workflows.money import MAX_MINOR_UNITS, THREE_DECIMAL, ZERO_DECIMAL, Money, exponent, format_money
from workflows.sla import RemedyPolicy
from workflows.stages import Stage

CURRENCIES = sorted(ZERO_DECIMAL | THREE_DECIMAL | {"USD", "EUR", "GBP", "CHF", "SEK"})


# ---------------------------------------------------------------- format_money


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    (8_000, "USD", "80.00 USD"),
    (8_000, "JPY", "8000 JPY"),
    (8_000, "KWD", "8.000 KWD"),
    (5, "EUR", "0.05 EUR"),
    (0, "USD", "0.00 USD"),
])
def test_amounts_are_written_in_the_currencys_own_decimals(amount, currency, shown):
    assert format_money(amount, currency) == shown


@given(amount=st.integers(min_value=-10**15, max_value=10**15), currency=st.sampled_from(CURRENCIES))
def test_format_money_round_trips_with_the_currencys_exponent(amount, currency):
    number, code = format_money(amount, currency).split(" ")
    assert code == currency
    places = exponent(currency)
    assert len(number.partition(".")[2]) == places
    assert ("." in number) == (places > 0)
    assert Decimal(number).scaleb(places) == amount
    if 0 < amount <= MAX_MINOR_UNITS:
        assert str(Money(amount=amount, currency=currency)) == f"{number} {currency}"


# ---------------------------------------------------------------- the activity's own ceiling


def test_the_refund_ceiling_message_shows_yen_as_yen():
    message = ceiling_message(Money(amount=1_000, currency="JPY"), 8_000, Money(amount=8_000, currency="JPY"))
    assert message == "refund of 1000 JPY refused: the incident has refunded 8000 JPY of 8000 JPY paid"


@pytest.mark.parametrize(("currency", "refunded", "paid"), [
    ("USD", "60.00 USD", "80.00 USD"),
    ("KWD", "6.000 KWD", "8.000 KWD"),
])
def test_the_refund_ceiling_message_in_other_currencies(currency, refunded, paid):
    message = ceiling_message(Money(amount=3_000, currency=currency), 6_000, Money(amount=8_000, currency=currency))
    assert message == (
        f"refund of {format_money(3_000, currency)} refused: the incident has refunded {refunded} of {paid} paid"
    )


# ---------------------------------------------------------------- the ceiling over any sequence of remedies

# One round of a recovery: refunds proposed with a redo, accepted, some refunds made, the rest
# failed or left pending, and the remedy renegotiated (the redo cannot be done) for the next round.
ROUNDS = st.lists(
    st.tuples(
        st.lists(st.integers(min_value=1, max_value=8_000), min_size=1, max_size=3),  # the refunds proposed
        st.integers(min_value=0, max_value=3),  # how many of them are made before the renegotiation
        st.booleans(),  # the others fail (or stay pending and are cancelled)
    ),
    min_size=1,
    max_size=RemedyPolicy().max_renegotiations,  # each round ends renegotiated: as many as the policy allows
)


def allowed(r, name, step=None) -> bool:
    try:
        validate(r, name, step)
    except Refused:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(paid=st.integers(min_value=1, max_value=20_000), currency=st.sampled_from(["USD", "JPY", "KWD"]),
       rounds=ROUNDS)
@example(paid=8_000, currency="USD", rounds=[([5_000, 3_000], 2, False), ([1], 0, False)])  # all back; then not a cent
@example(paid=8_000, currency="JPY", rounds=[([3_000, 2_000], 1, True), ([5_001], 0, False), ([5_000], 1, False)])
def test_no_sequence_of_remedies_commits_more_refunds_than_were_paid(paid, currency, rounds):
    r = recovery(Stage.NEEDS_GATHERED, amount=paid, currency=currency)

    def within_the_ceiling() -> None:
        assert r.refunded_total <= paid
        assert r.committed_refunds() <= paid
        assert r.snapshot().refundable_left == paid - r.committed_refunds() >= 0

    for amounts, made, fail_the_rest in rounds:
        items = [refund(a, currency) for a in amounts] + [REDO]
        fits = r.committed_refunds() + sum(amounts) <= paid
        assert allowed(r, "propose_remedy", RemedyProposal(by=DIRECTOR, items=items)) == fits
        if not fits:
            event("a proposal over the ceiling was refused")
            continue
        proposed = propose(r, items, by=DIRECTOR)
        assert allowed(r, "accept_remedy", AcceptInput(by=CUSTOMER, remedy=proposed.number))
        accept(r, CUSTOMER)
        within_the_ceiling()
        for n, it in enumerate(r.agreed.items[: len(amounts)]):
            if n < made:
                delivered(r, it.item_id)
            elif fail_the_rest:
                failed(r, it.item_id, "declined by the bank")
            within_the_ceiling()
        assert allowed(r, "renegotiate")  # the redo is still to do
        renegotiate(r)
        within_the_ceiling()
    if r.refunded_total == paid:
        event("everything paid went back")
    elif r.refunded_total:
        event("some of it went back")

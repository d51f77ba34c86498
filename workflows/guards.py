"""Why a step is refused: the table's rule, its conditions, and the money rules, as messages for the caller.

Pure functions of the recovery state: update validators call them and must
not change anything. Each step's own guard is declared with the step in
``workflows/steps.py``; the rules shared by several steps live here.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflows.formatting import a, money
from workflows.recovery import Recovery
from workflows.remedies import RemedyItemBase
from workflows.stages import AFTER_CLOSURE, step_for


class Refused(Exception):
    """A step the playbook does not allow now; the message is for the caller."""


def check_table(r: Recovery, trigger: str) -> None:
    """Refuse a step the transition table does not allow now, or whose conditions do not hold."""
    stage = r.stage
    step = step_for(stage, trigger)
    if step is None:
        if stage in AFTER_CLOSURE:
            closed = r.s.closed_at.date().isoformat() if r.s.closed_at else "an earlier date"
            raise Refused(
                f"{trigger} refused: this incident was closed on {closed} and cannot be reopened; "
                f"open a new incident with a new key"
            )
        allowed = ", ".join(r.allowed_now()) or "none (the clock takes the next step)"
        raise Refused(f"{trigger} refused: the incident is at stage '{stage}'; allowed now: {allowed}")
    for condition in step.conditions:
        if not r.holds(condition):
            raise Refused(f"{trigger} refused: {condition_reason(r, condition)}")


def condition_reason(r: Recovery, condition: str) -> str:
    p = r.proposal
    if condition == "has_proposal":
        return "no remedy has been proposed yet; propose_remedy first"
    if condition == "is_approved" and p is not None and r.remedy_value(p) <= r.limit(p.proposed_by.role):
        return (
            f"remedy #{p.number} gives {money(r.goodwill(p), r.currency)} in coupons, waivers and gifts, beyond "
            f"this incident's goodwill ceiling of {money(r.goodwill_ceiling, r.currency)}; it needs "
            f"approve_remedy by a director before the customer's acceptance counts"
        )
    if condition == "is_approved" and p is not None:
        return (
            f"remedy #{p.number} is worth {money(r.remedy_value(p), r.currency)}, above what "
            f"{a(p.proposed_by.role)} may promise; it needs approve_remedy by {a(p.needs_approval_from)} "
            f"or above before the customer's acceptance counts"
        )
    if condition == "has_undelivered_items":
        if r.agreed and any(i.status == "unknown" for i in r.agreed.items):
            return ("a refund's outcome is unknown (Stripe has not answered); it counts as paid until a look-up "
                    "settles it, and the remedy can be renegotiated after that")
        return "the agreed remedy has no undelivered item that is not already in progress"
    if condition == "has_items_to_confirm":
        return "the agreed remedy has no work order waiting for confirmation"
    if condition == "is_delivered":
        return "the agreed remedy is not fully delivered yet"
    if condition == "has_open_actions":
        return "every preventive action of the post-mortem is done already"
    return condition


def check_money(r: Recovery, items: Sequence[RemedyItemBase], field: str) -> None:
    """Amounts in the order's currency, a payment to refund to, and never more back than was paid."""
    currency = r.currency
    paid = r.paid.amount
    total = 0
    for n, item in enumerate(items):
        for name, amount in item.moneys():
            if amount.currency != currency:
                raise Refused(
                    f"{field}[{n}].{name}.currency: must be the order's currency {currency}, not {amount.currency}"
                )
        total += item.refund_amount()
    if total and not r.s.report.order.payment_reference:
        raise Refused("order.payment_reference: a refund needs the payment it goes back to; none was given")
    committed = r.committed_refunds()
    if committed + total > paid:
        raise Refused(
            f"{field}: refunds would total {money(committed + total, currency)}, more than the "
            f"{money(paid, currency)} paid ({money(committed, currency)} already refunded or agreed; "
            f"at most {money(paid - committed, currency)} more)"
        )



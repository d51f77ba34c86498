"""A corpus of raw JSON a careless backend might send, with the field each refusal must name."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

BY = {"name": "Priya Shah", "role": "agent"}


def _refund(amount: Any, currency: Any = "USD", **extra: Any) -> dict[str, Any]:
    return {"by": BY, "items": [{"kind": "refund", "amount": {"amount": amount, "currency": currency}, **extra}]}


def _item(**item: Any) -> dict[str, Any]:
    return {"by": BY, "items": [item]}


def _postmortem(**change: Any) -> dict[str, Any]:
    action = {"action": "scan labels", "owner": {"name": "Ops", "email": "ops@example.com"},
              "due": (date.today() + timedelta(days=30)).isoformat()}
    doc: dict[str, Any] = {"by": BY, "what_happened": "a label was swapped", "root_cause_category": "process",
                           "root_cause": "labels printed by hand", "preventive_actions": [action]}
    for key, value in change.items():
        if key == "action":
            action.update(value)
        elif value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


USD_5 = {"amount": 500, "currency": "USD"}

# (step, raw JSON input, what the refusal must name)
CORPUS: list[tuple[str, Any, str]] = [
    ("record_needs", {"by": BY}, "needs: Field required"),
    ("record_needs", {"by": BY, "needs": "   "}, "needs: must not be blank"),
    ("record_needs", {"by": BY, "needs": "x" * 5000}, "needs: String should have at most 4000"),
    ("record_needs", {"by": BY, "needs": 42}, "needs: Input should be a valid string"),
    ("record_needs", {"by": BY, "needs": None}, "needs: Input should be a valid string"),
    ("record_needs", {"by": BY, "needs": "a tent", "urgent": True}, "urgent: Extra inputs are not permitted"),
    ("record_needs", {"by": "Priya", "needs": "a tent"}, "by: Input should be an object"),
    ("record_needs", {"by": {"name": "Priya\r\nBcc: all@example.com", "role": "agent"}, "needs": "a tent"},
     "by.name: must be a single line"),
    ("record_needs", {"by": {"name": "", "role": "agent"}, "needs": "a tent"}, "by.name: String should have at least 1"),
    ("record_needs", {"by": {"name": "P", "role": "ceo"}, "needs": "a tent"}, "by.role: Input should be"),
    ("record_needs", {"by": BY, "needs": "a tent", "channel": "email\nsms"}, "channel: must be a single line"),
    ("record_needs", {"by": BY, "needs": "a tent", "channel": "x" * 60}, "channel: String should have at most 50"),
    ("record_needs", {"by": {"name": "x" * 201, "role": "agent"}, "needs": "a tent"}, "by.name: String should have at most 200"),
    ("propose_remedy", _refund(50.0), "amount.amount: Input should be a valid integer"),
    ("propose_remedy", _refund("50.00"), "amount.amount: Input should be a valid integer"),
    ("propose_remedy", _refund("5000"), "amount.amount: Input should be a valid integer"),
    ("propose_remedy", _refund(True), "amount.amount: Input should be a valid integer"),
    ("propose_remedy", _refund(0), "amount.amount: Input should be greater than 0"),
    ("propose_remedy", _refund(-500), "amount.amount: Input should be greater than 0"),
    ("propose_remedy", _refund(10**13), "amount.amount: Input should be less than or equal to"),
    ("propose_remedy", _refund(500, "XYZ"), "amount.currency: 'XYZ' is not an ISO 4217 currency code"),
    ("propose_remedy", _refund(500, "usd"), "amount.currency: String should match pattern"),
    ("propose_remedy", _refund(500, 840), "amount.currency: Input should be a valid string"),
    ("propose_remedy", _refund(500, reason="late\r\nBcc: x"), "reason: must be a single line"),
    ("propose_remedy", {"by": BY, "items": []}, "items: List should have at least 1 item"),
    ("propose_remedy", {"by": BY, "items": [{"kind": "redo", "description": "again"}] * 21},
     "items: List should have at most 20 items"),
    ("propose_remedy", _item(kind="teleport"), "items.0: Input tag 'teleport'"),
    ("propose_remedy", {"by": BY, "items": {"kind": "redo", "description": "again"}}, "items: Input should be a valid array"),
    ("propose_remedy", _item(kind="coupon", amount_off=USD_5, percent_off=10), "give exactly one of amount_off or percent_off"),
    ("propose_remedy", _item(kind="coupon", percent_off=150), "percent_off: Input should be less than or equal to 100"),
    ("propose_remedy", _item(kind="coupon", percent_off="15"), "percent_off: Input should be a valid integer"),
    ("propose_remedy", _item(kind="coupon", percent_off=10, valid_for_days=2.5), "valid_for_days: Input should be a valid integer"),
    ("propose_remedy", _item(kind="waive_balance", amount=USD_5), "invoice_reference: Field required"),
    ("propose_remedy", _item(kind="waive_balance", amount=USD_5, invoice_reference="INV-1\n2"),
     "invoice_reference: must be a single line"),
    ("propose_remedy", _item(kind="redo", description="   "), "description: must not be blank"),
    ("propose_remedy", _item(kind="replacement"), "description: Field required"),
    ("propose_remedy", _item(kind="split_cost", cost=USD_5, our_share_percent=0, description="the redo"),
     "our_share_percent: Input should be greater than or equal to 1"),
    ("propose_remedy", _item(kind="split_cost", cost=USD_5, our_share_percent=50, paid_as="cash", description="x"),
     "paid_as: Input should be 'refund' or 'coupon'"),
    ("propose_remedy", _item(kind="gift"), "a gift needs a coupon_amount, a note, or both"),
    ("propose_remedy", _item(kind="gift", note=""), "note: String should have at least 1"),
    ("propose_remedy", {"by": BY, "items": [{"kind": "redo", "description": "again"}], "note": "  "}, "note: must not be blank"),
    ("approve_remedy", {"by": BY, "note": 5}, "note: Input should be a valid string"),
    ("approve_remedy", {"by": BY, "note": "x" * 2001}, "note: String should have at most 2000"),
    ("accept_remedy", {"by": BY, "on_behalf_of_customer": "yes"}, "on_behalf_of_customer: Input should be a valid boolean"),
    ("accept_remedy", {"by": BY, "on_behalf_of_customer": 1}, "on_behalf_of_customer: Input should be a valid boolean"),
    ("decline_remedy", {"by": BY}, "reason: Field required"),
    ("decline_remedy", {"by": BY, "reason": "\t  "}, "reason: must not be blank"),
    ("confirm_fulfilment", {"by": BY, "item_id": 123}, "item_id: Input should be a valid string"),
    ("confirm_fulfilment", {"by": BY, "item_id": "remedy-1/\nitem-1"}, "item_id: must be a single line"),
    ("confirm_fulfilment", {"by": BY, "item_id": ""}, "item_id: String should have at least 1"),
    ("renegotiate", {"by": BY, "reason": "x" * 4001}, "reason: String should have at most 4000"),
    ("close", {"by": BY, "summary": ""}, "summary: String should have at least 1"),
    ("close", {"by": BY, "summary": []}, "summary: Input should be a valid string"),
    ("record_postmortem", _postmortem(preventive_actions=[]), "preventive_actions: List should have at least 1"),
    ("record_postmortem", _postmortem(preventive_actions=[{"action": "x"}] * 51), "preventive_actions: List should have at most 50"),
    ("record_postmortem", _postmortem(root_cause_category="person"), "root_cause_category: Input should be"),
    ("record_postmortem", _postmortem(action={"due": "next week"}), "preventive_actions.0.due: Input should be a valid date"),
    ("record_postmortem", _postmortem(action={"owner": {"name": "Ops", "email": "nope"}}),
     "preventive_actions.0.owner.email: value is not a valid email address"),
    ("record_postmortem", _postmortem(contributing_factors=[{"condition": "x", "kind": "blame"}]),
     "contributing_factors.0.kind: Input should be"),
    ("record_postmortem", _postmortem(what_happened=None), "what_happened: Field required"),
    ("complete_action", {"by": BY, "action_id": "action-1\r\n"}, "action_id: must be a single line"),
    ("complete_action", {"by": BY, "action_id": None}, "action_id: Input should be a valid string"),
    ("flag_account", {"by": BY, "reason": ""}, "reason: String should have at least 1"),
    ("flag_account", {"reason": "abusive", "credential": 42}, "credential: Input should be a valid string"),
    ("apologise", {"by": BY, "channel": 12}, "channel: Input should be a valid string"),
    ("apologise", [], "input: Input should be an object"),
    ("apologise", "apologise", "input: Input should be an object"),
]

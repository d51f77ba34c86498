"""The preset dictionary of the codec's compression (``compression: deflate-d1``): frozen, never edited.

Each payload is compressed on its own, and most are a few hundred bytes of
JSON: too short for DEFLATE to find its repetitions within itself. A preset
dictionary gives it, up front, the field names amends' payloads are made of,
and the bytes that begin every serialised JSON ``Payload``; that took a
sample incident's payloads from 23.9 KB (DEFLATE alone) to 18.4 KB.

A payload compressed with this dictionary can only be opened with the very
same bytes, for as long as any history holds one: ``DEFLATE_D1`` must never
change (a test pins its SHA-256). A better dictionary is a new entry
(``deflate-d2``) beside this one. For a codec in another language: the
dictionary is the bytes of ``DEFLATE_D1`` as built below (the fields in this
order, each written as ``"name":``, after the 24-byte prefix).
"""

from __future__ import annotations

# The start of every serialised JSON Payload: field 1 (metadata), the entry "encoding" -> "json/plain".
PREFIX = b"\n\x16\n\x08encoding\x12\njson/plain"

# Field names of amends' contracts, state and payloads, the most frequent last (DEFLATE reaches back the
# shortest distance to the end of the dictionary).
FIELDS_D1 = (
    "actor", "amount_off", "answers", "by_given", "checksum", "condition", "cost", "coupon_amount", "coupon_id",
    "end", "event", "hours", "incident", "invoice_reference", "now", "offsets", "our_share_percent", "overdue",
    "paid_as", "payload", "percent_off", "redeem_by", "refusal", "required", "start", "target_name", "total",
    "unknown_key", "used", "valid_for_days", "agreed_remedy", "anniversary_due_at", "breached", "breaches",
    "consumed", "fired", "idempotency_key", "incident_workflow_id", "input", "on_behalf_of_customer", "paged",
    "paused_since", "proposal", "refund_id", "refundable_left", "refunded_total", "reused", "running_since",
    "sla_ready", "started_at", "summary", "upcoming", "accepted_at", "accepted_by", "action_id",
    "anniversary_gift_code", "answered", "approved_by", "completed_at", "completed_by", "needs_approval_from",
    "number", "policy", "proposed_at", "proposed_by", "release", "reminders", "stage_entered_at", "state", "trust",
    "used_credentials", "work_orders_cancelled", "work_orders_sent", "actions", "agent", "annual_closures",
    "business_hours", "calendar_years", "clock", "clocks", "closed_at", "closures", "continue_after_events",
    "contributing_factors", "country", "deadlines", "director", "flags", "goodwill_multiple", "issuer", "issuers",
    "items", "keys", "ladder", "levels", "loaded_at", "manager", "max_lifetime", "max_needs", "max_proposals",
    "max_renegotiations", "money_moved", "name_claim", "pause_while_waiting_on_customer", "phase", "postmortem",
    "public_holidays", "red_flagged", "repeat_after", "repeats", "report", "role_claim", "roles", "root_cause",
    "root_cause_category", "subdivision", "targets", "timeline", "timezone", "warn_at", "weekly",
    "anniversary_after_days", "anniversary_gift", "category", "customer", "customer_id", "delivered", "detected_at",
    "failure", "incident_key", "needs", "note", "order", "paused_total", "phone", "severity", "staff_involved",
    "action", "amount_paid", "due", "payment_reference", "format", "remedies", "routing_key", "webhook",
    "webhook_url", "approval_limits", "due_at", "entry", "waiting_for", "allowed_steps", "context", "deadline",
    "fraction", "item_id", "message_id", "redact", "repeat", "signer", "to", "after", "credential", "description",
    "owner", "remedy_summary", "escalation_level", "reason", "reference", "workflow_id", "audience",
    "preventive_actions", "code", "impact", "locale", "order_id", "status", "what_happened", "item", "remedy",
    "level", "target", "currency", "known_as", "amount", "email", "kind", "step", "detail", "role", "by", "channel",
    "at", "stage", "name",
)

DEFLATE_D1 = PREFIX + "".join(f'"{name}":' for name in FIELDS_D1).encode()

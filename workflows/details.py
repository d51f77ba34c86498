"""The Markdown shown as an incident's current details in the Temporal Web UI.

Ops should answer "what is stuck, how badly, and what happened to this
customer?" without opening the event history.
"""

from __future__ import annotations

from datetime import datetime

from workflows.formatting import duration, money
from workflows.snapshot import Snapshot


def current_details(s: Snapshot, now: datetime) -> str:
    r = s.report
    lines = [
        f"**Stage:** {s.stage} · **Severity:** {r.severity} · **Category:** {r.category}",
        f"**Customer:** {r.customer.customer_id} · **Order:** {r.order.order_id} ({r.order.amount_paid})",
        f"**What happened:** {r.what_happened}",
    ]
    if r.owner:
        lines.append(f"**Owner:** {r.owner.name}")
    if s.clock and s.clock.paused_since:
        lines.append(f"**Next:** {s.clock.waiting_for} — clock paused since {s.clock.paused_since:%Y-%m-%d %H:%M} UTC, "
                     f"waiting on the customer")
    if s.deadline:
        left = s.deadline.due_at - now
        when = f"due in {duration(left)}" if left.total_seconds() >= 0 else f"overdue by {duration(-left)}"
        if left.total_seconds() < 0:
            line = f"**Next:** {s.deadline.waiting_for} overdue by {duration(-left)}"
        else:
            line = f"**Next:** {s.deadline.waiting_for}, {when}"
        line += f" ({s.deadline.due_at:%Y-%m-%d %H:%M} UTC, {s.clock.kind if s.clock else 'calendar'} clock)"
        if s.escalation_level:
            line += f" — escalated to level {s.escalation_level}"
        lines.append(line)
    remedy = s.agreed_remedy or s.proposal
    if remedy:
        items = ", ".join(f"{i.item_id} {i.item.kind} [{i.status}]" for i in remedy.items)
        lines.append(f"**Remedy #{remedy.number} ({remedy.status}):** {items}")
    if s.refunded_total:
        lines.append(f"**Money refunded:** {money(s.refunded_total, r.order.amount_paid.currency)}")
    if s.red_flagged:
        lines.append("**Red-flagged account**")
    if s.allowed_steps:
        lines.append(f"**Allowed steps:** {', '.join(s.allowed_steps)}")
    return "\n\n".join(lines)

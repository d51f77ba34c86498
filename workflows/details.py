"""The Markdown shown as an incident's current details in the Temporal Web UI.

Ops should answer "what is stuck, how badly, and what happened to this
customer?" without opening the event history.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from workflows.formatting import duration, money

if TYPE_CHECKING:
    from workflows.recovery import Recovery


def current_details(recovery: Recovery, now: datetime) -> str:
    """Read from the state itself: a whole snapshot built on every change cost more than the rest of it."""
    s = recovery.s
    r = s.report
    deadline = recovery.deadline
    allowed = recovery.allowed_now()
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
    if deadline:
        left = deadline.due_at - now
        when = f"due in {duration(left)}" if left.total_seconds() >= 0 else f"overdue by {duration(-left)}"
        if left.total_seconds() < 0:
            line = f"**Next:** {deadline.waiting_for} overdue by {duration(-left)}"
        else:
            line = f"**Next:** {deadline.waiting_for}, {when}"
        line += f" ({deadline.due_at:%Y-%m-%d %H:%M} UTC, {s.clock.kind if s.clock else 'calendar'} clock)"
        if s.escalation_level:
            line += f" — escalated to level {s.escalation_level}"
        lines.append(line)
    remedy = recovery.agreed or recovery.proposal
    if remedy:
        items = ", ".join(f"{i.item_id} {i.item.kind} [{i.status}]" for i in remedy.items)
        lines.append(f"**Remedy #{remedy.number} ({remedy.status}):** {items}")
    if recovery.refunded_total:
        lines.append(f"**Money refunded:** {money(recovery.refunded_total, r.order.amount_paid.currency)}")
    if s.red_flagged:
        lines.append("**Red-flagged account**")
    if allowed:
        lines.append(f"**Allowed steps:** {', '.join(allowed)}")
    return "\n\n".join(lines)

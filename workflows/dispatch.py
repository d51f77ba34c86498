"""The one dispatcher: performs queued effects, in order, each by the part that owns it.

Since ``workflow.patched("independent-channels")``, the slow effects run
in lanes of their own (``Playbook.run_in``): customer notices one after
another, money one after another, and neither waits for the other, for the
CRM or for pages. Only the clock's own arithmetic runs inline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from workflows.effects import (
    CancelWorkOrders,
    ConsumeBusinessTime,
    DeliverRemedy,
    NotifyCustomer,
    PlanBusinessClock,
    ResolvePages,
    TellCrm,
)

if TYPE_CHECKING:
    from workflows.delivery import Delivery
    from workflows.playbook import Playbook


async def perform(pb: Playbook, delivery: Delivery) -> None:
    """Perform every queued effect; an effect of an unknown type fails the workflow task (it is a bug)."""
    while pb.effects:
        effect = pb.effects.pop(0)
        match effect:
            case NotifyCustomer():
                await pb.run_in("customer notices", delivery.notify_customer(effect.notice))
            case DeliverRemedy():
                await pb.run_in("money", delivery.deliver(effect.number))
            case CancelWorkOrders():
                # After the delivery it cancels, in the same lane.
                await pb.run_in("money", delivery.cancel_work_orders(effect.number, effect.reason))
            case TellCrm():
                await pb.run_in("crm", delivery.tell_crm(effect.reason))
            case ResolvePages():
                await pb.run_in(f"resolve {effect.stage}", pb.clock.resolve(effect))
            case PlanBusinessClock():
                await pb.clock.plan_business(effect)
            case ConsumeBusinessTime():
                await pb.clock.consume_business(effect)
            case _:
                assert_never(effect)

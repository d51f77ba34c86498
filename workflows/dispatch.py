"""The one dispatcher: performs queued effects, in order, each by the part that owns it."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from workflows.effects import (
    CancelWorkOrders,
    ConsumeBusinessTime,
    DeliverRemedy,
    NotifyCustomer,
    PlanBusinessClock,
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
                await delivery.notify_customer(effect.notice)
            case DeliverRemedy():
                await delivery.deliver(effect.number)
            case CancelWorkOrders():
                await delivery.cancel_work_orders(effect.number, effect.reason)
            case TellCrm():
                await delivery.tell_crm(effect.reason)
            case PlanBusinessClock():
                await pb.clock.plan_business(effect)
            case ConsumeBusinessTime():
                await pb.clock.consume_business(effect)
            case _:
                assert_never(effect)

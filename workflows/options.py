"""Who the engine acts as, how its activities retry, and small wording helpers."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.inputs import Actor, Role
    from workflows.snapshot import RemedyItemState

T = TypeVar("T")

SYSTEM = Actor(name="amends", role=Role.SYSTEM)
CLOCK = Actor(name="clock", role=Role.SYSTEM)

# Answers that will not change however often the activity is retried.
MAIL_FAILS_FOR_GOOD = ["MailRejected", "TemplateError"]
WEBHOOK_FAILS_FOR_GOOD = ["WebhookRejected", "WebhookNotConfigured"]

# A customer notice is retried for an hour in its own lane (nothing else
# waits for it); then it is given up, recorded, and a human is told to reach
# the customer.
NOTICE_OPTIONS: workflow.ActivityConfig = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=1),
    # A refused address or a template that cannot render will not heal: a human hears at once.
    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5),
                             non_retryable_error_types=MAIL_FAILS_FOR_GOOD),
)
WEBHOOK_OPTIONS: workflow.ActivityConfig = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(
        maximum_interval=timedelta(minutes=2),
        maximum_attempts=10,
        non_retryable_error_types=WEBHOOK_FAILS_FOR_GOOD,
    ),
)
# Each channel of a page keeps trying for hours (a relay that is down still
# delivers once it is back); the page does not wait for it: one that has
# reached nobody after a few minutes sends the next level at once.
PAGE_OPTIONS: workflow.ActivityConfig = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=12),
    retry_policy=RetryPolicy(
        maximum_interval=timedelta(minutes=5),
        non_retryable_error_types=WEBHOOK_FAILS_FOR_GOOD + MAIL_FAILS_FOR_GOOD,
    ),
)
# Money is retried until Stripe answers, however long that takes: an attempt
# whose answer was lost may have moved money, and only a later look-up (each
# attempt starts with one) can say. Only a definite no ends it.
REFUND_OPTIONS: workflow.ActivityConfig = dict(
    start_to_close_timeout=timedelta(seconds=60),
    # A worker that dies mid-refund is noticed within this, not after the
    # whole minute; the activity heartbeats before each Stripe call.
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        maximum_interval=timedelta(minutes=2),
        non_retryable_error_types=["RefundDeclined", "RefundCeiling", "CouponRefused"],
    ),
)



def start(
    name: str, arg: object, result_type: type[T], options: workflow.ActivityConfig, summary: str
) -> workflow.ActivityHandle[T]:
    """Start activity ``name`` with the given options, its ``summary`` shown in the Web UI."""
    config = workflow.ActivityConfig(**options)
    config["summary"] = summary
    return workflow.start_activity(name, arg, result_type=result_type, **config)


async def call(name: str, arg: object, result_type: type[T], options: workflow.ActivityConfig, summary: str) -> T:
    """Run activity ``name`` to its end (``start``, awaited)."""
    return await start(name, arg, result_type, options, summary)


def failure_reason(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


def customer_line(state: RemedyItemState) -> str:
    line = state.item.describe()
    if state.item.delivery == "coupon" and state.status == "delivered" and state.reference:
        line += f" (code {state.reference})"
    return line

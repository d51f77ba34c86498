"""The amends worker: the IncidentRecovery workflow and its activities on one task queue."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notices import NoticeActivities
from activities.payments import PaymentActivities, stripe_client
from activities.webhooks import WebhookActivities
from workflows.incident import IncidentRecovery
from worker.config import Settings, connect


def activities_for(settings: Settings) -> list:
    notices = NoticeActivities(settings.mail, settings.webhooks)
    payments = PaymentActivities(
        stripe_client(settings.stripe_api_key, settings.stripe_api_base),
        coupon_expiry_in_stripe=not settings.stripe_is_local,
    )
    webhooks = WebhookActivities(settings.webhooks)
    return [
        notices.send_notice,
        notices.post_notice_webhook,
        payments.refund_payment,
        payments.create_coupon,
        webhooks.post_webhook,
    ]


# pydantic imports email-validator lazily while validating an EmailStr; pass
# it (and idna, which it uses) through so the sandbox does not re-import it
# for every workflow run.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("email_validator", "idna")
)


def build_worker(client: Client, settings: Settings, activities: list | None = None) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentRecovery],
        workflow_runner=WORKFLOW_RUNNER,
        activities=activities if activities is not None else activities_for(settings),
    )


async def run_worker(settings: Settings | None = None, stop: asyncio.Event | None = None) -> None:
    settings = settings or Settings.from_env()
    client = await connect()
    worker = build_worker(client, settings)
    logging.getLogger("amends").info("worker polling task queue %r", settings.task_queue)
    async with worker:
        await (stop or asyncio.Event()).wait()

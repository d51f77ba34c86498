"""The amends worker: the IncidentRecovery workflow and its activities on one task queue."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.clock import ClockActivities
from activities.escalation import EscalationActivities
from activities.identity import IdentityActivities, verify_first_step
from activities.notices import NoticeActivities
from activities.payments import PaymentActivities, stripe_client
from activities.webhooks import WebhookActivities
from worker.config import Settings, connect
from workflows.incident import IncidentRecovery


class MissingSetting(ValueError):
    """A setting a worker outside ``amends dev`` must have; the message names it."""


def activities_for(settings: Settings) -> list:
    notices = NoticeActivities(settings.mail, settings.webhooks)
    payments = PaymentActivities(
        stripe_client(settings.stripe_api_key, settings.stripe_api_base),
        coupon_expiry_in_stripe=not settings.stripe_is_local,
    )
    webhooks = WebhookActivities(settings.webhooks)
    clock = ClockActivities(settings.sla_policy)
    identity = IdentityActivities(settings.identity)
    escalation = EscalationActivities(settings.mail, settings.webhooks, settings.sla_policy.targets)
    return [
        clock.load_sla_policy,
        identity.load_trust,
        verify_first_step,
        clock.business_clock_advance,
        clock.business_clock_elapsed,
        escalation.page,
        escalation.page_email,
        escalation.page_webhook,
        notices.send_notice,
        notices.post_notice_webhook,
        payments.refund_payment,
        payments.create_coupon,
        webhooks.post_webhook,
    ]


# pydantic imports email-validator lazily while validating an EmailStr; pass
# it (and idna, which it uses) through so the sandbox does not re-import it
# for every workflow run. PyJWT and cryptography verify credentials in the
# validators: deterministic, and native code the sandbox must not reload.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("email_validator", "idna", "jwt", "cryptography")
)


def build_worker(client: Client, settings: Settings, activities: list | None = None) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentRecovery],
        workflow_runner=WORKFLOW_RUNNER,
        activities=activities if activities is not None else activities_for(settings),
        # A stopping worker (a deploy, SIGTERM) lets sends in flight finish rather than cut them off.
        graceful_shutdown_timeout=settings.graceful_shutdown,
    )


async def run_worker(settings: Settings | None = None, stop: asyncio.Event | None = None) -> None:
    from worker.metrics import bind_from_env, runtime_for

    settings = settings or Settings.from_env()
    if not settings.stripe_configured:
        raise MissingSetting(
            "AMENDS_STRIPE_API_KEY is not set: without it refunds and coupons would go to the development "
            "stand-in (localstripe); set your Stripe key"
        )
    if not settings.webhook_secrets_configured:
        raise MissingSetting(
            "AMENDS_WEBHOOK_SECRET is not set: webhooks would be signed with the public development secret; set "
            "it (whsec_ and base64), or each receiver's AMENDS_<RECEIVER>_WEBHOOK_SECRET"
        )
    if not settings.care_configured:
        raise MissingSetting(
            "AMENDS_CARE_EMAIL is not set: pages for incidents without an owner go to the care contact "
            "(AMENDS_CARE_EMAIL, and AMENDS_CARE_NAME); set it so that no stalled incident pages nobody"
        )
    if settings.identity is None:
        raise MissingSetting(
            "AMENDS_IDENTITY is not set: name the identity file (TOML) that lists the issuers whose credentials "
            "incidents accept; without it every step would be refused (amends dev writes one for its local issuer)"
        )
    bind = bind_from_env()
    client = await connect(runtime=runtime_for(bind))
    worker = build_worker(client, settings)
    log = logging.getLogger("amends")
    if bind:
        log.info("metrics on http://%s/metrics", bind)
    log.info("worker polling task queue %r", settings.task_queue)
    async with worker:
        await (stop or asyncio.Event()).wait()

"""The amends worker: the IncidentRecovery workflow and its activities on one task queue."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.common import VersioningBehavior
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.clock import ClockActivities
from activities.escalation import EscalationActivities
from activities.identity import IdentityActivities, verify_first_step
from activities.notices import NoticeActivities
from activities.payments import PaymentActivities, stripe_client
from activities.webhooks import WebhookActivities
from worker.config import Settings, Temporal, connect
from workflows.incident import IncidentRecovery


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
# amends' own ``workflows`` package passes through whole, the workflow's module
# too: the sandbox would otherwise execute ``workflows/__init__.py``,
# ``workflows/incident.py`` (the class, its fourteen updates and their
# definitions) and ``workflows/metrics.py`` again for every workflow instance,
# which measured 77 KB of the worker's heap per incident open (of 185 KB) and
# most of an open's import time (docs/performance.md, "Scale on one machine").
# Its modules keep no mutable module state and take time, randomness and ids
# only from ``workflow.*``; the stored histories replayed in CI keep them
# deterministic, and the sandbox's runtime restrictions still apply.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "email_validator", "idna", "jwt", "cryptography", "workflows")
)


# The workflow types a worker runs (and the replay test replays).
WORKFLOWS = [IncidentRecovery]
# How a versioned worker's workflows move between builds (docs/deploying-versions.md): each workflow
# task of an incident runs on the deployment's current build, and so does its anniversary run.
VERSIONING_BEHAVIOR = VersioningBehavior.AUTO_UPGRADE


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker Versioning when a build id is configured (docs/deploying-versions.md); None: unversioned.

    The behaviour is the worker's default rather than ``@workflow.defn(versioning_behavior=...)``: the
    server refuses a workflow task completed with a behaviour by an unversioned worker (``amends dev``,
    a deployment without a build id), and the SDK sends the annotation whether versioned or not.
    """
    if settings.deployment is None:
        return None
    return WorkerDeploymentConfig(version=settings.deployment, use_worker_versioning=True,
                                  default_versioning_behavior=VERSIONING_BEHAVIOR)


def build_worker(client: Client, settings: Settings, activities: list | None = None) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=activities if activities is not None else activities_for(settings),
        # A stopping worker (a deploy, SIGTERM) lets sends in flight finish rather than cut them off.
        graceful_shutdown_timeout=settings.graceful_shutdown,
        deployment_config=deployment_config(settings),
        **settings.tuning.worker_options(),
    )


async def run_worker(settings: Settings | None = None, stop: asyncio.Event | None = None,
                     temporal: Temporal | None = None) -> None:
    """Run ``amends worker``: refuse development defaults (``ConfigError``), connect to ``temporal``, poll."""
    from worker.metrics import runtime_for

    settings = settings or Settings.from_env()
    settings.refuse_development_defaults()
    temporal = temporal or Temporal()
    client = await connect(temporal.address, temporal.namespace, profile=temporal.profile,
                           config_file=temporal.config_file, runtime=runtime_for(settings.metrics_bind))
    worker = build_worker(client, settings)
    log = logging.getLogger("amends")
    if settings.metrics_bind:
        log.info("metrics on http://%s/metrics", settings.metrics_bind)
    if settings.deployment is not None:
        log.info("worker version %s (Worker Versioning)", settings.deployment.to_canonical_string())
    log.info("worker polling task queue %r on %s", settings.task_queue, temporal.where())
    async with worker:
        await (stop or asyncio.Event()).wait()

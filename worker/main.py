"""The amends worker: the IncidentRecovery workflow and its activities on one task queue."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.common import VersioningBehavior
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkerDeploymentConfig, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.clock import ClockActivities
from activities.escalation import EscalationActivities
from activities.identity import IdentityActivities, verify_first_step
from activities.notices import NoticeActivities
from activities.payments import PaymentActivities, stripe_client
from activities.setup import SetupActivities
from activities.webhooks import WebhookActivities
from worker.config import ConfigError, Settings, Temporal, connect
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
        SetupActivities(clock, identity).set_up_incident,
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


# The workflow runs outside the SDK's sandbox. The sandbox guards determinism by re-importing a
# workflow's modules for every run and proxying what they may call; amends passes every one of its modules
# through it (re-imported per run they cost a fifth of the worker's time), so the guard covered next to
# nothing, while the sandbox's own machinery, an exec() per activation and per payload, cost a third of the
# worker's CPU (docs/performance.md). Determinism is guarded instead by the stored histories replayed in
# CI with this runner, and by replaying the newest of them inside the sandbox below, with amends' modules
# not passed through, so that a restricted call (the wall clock, I/O, randomness) in the workflow fails.
WORKFLOW_RUNNER = UnsandboxedWorkflowRunner()
# The sandbox as the SDK ships it, with the third-party modules amends' workflow uses passed through:
# pydantic imports email-validator (and idna) lazily while validating an EmailStr; PyJWT and cryptography
# verify credentials in the validators: deterministic, and native code the sandbox must not reload.
SANDBOXED = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("email_validator", "idna", "jwt", "cryptography")
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


def build_worker(client: Client, settings: Settings, activities: list | None = None,
                 runner: WorkflowRunner = WORKFLOW_RUNNER) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=runner,
        activities=activities if activities is not None else activities_for(settings),
        # A stopping worker (a deploy, SIGTERM) lets sends in flight finish rather than cut them off.
        graceful_shutdown_timeout=settings.graceful_shutdown,
        deployment_config=deployment_config(settings),
        **settings.tuning.worker_options(),
    )


async def check_search_attributes(client: Client, log: logging.Logger) -> None:
    """Refuse (``ConfigError``) a namespace without every search attribute the workflow upserts.

    An upsert of an attribute the namespace does not know fails the workflow task, again and again,
    for every incident that reaches it: better to stop here, naming them, than to poll.
    """
    from temporalio.service import RPCError

    from worker.setup import unregistered

    try:
        missing = await unregistered(client)
    except RPCError as err:  # a server that does not let this identity list them: the upserts will tell
        log.warning("could not check the search attributes of namespace %r: %s", client.namespace, err.message)
        return
    if missing:
        raise ConfigError(
            f"namespace {client.namespace!r} lacks search attribute{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}, which the workflow upserts: run `amends setup` with the same "
            "connection settings (it adds only what is missing), then start the worker again"
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
    log = logging.getLogger("amends")
    await check_search_attributes(client, log)
    worker = build_worker(client, settings)
    if settings.metrics_bind:
        log.info("metrics on http://%s/metrics", settings.metrics_bind)
    if settings.deployment is not None:
        log.info("worker version %s (Worker Versioning)", settings.deployment.to_canonical_string())
    log.info("worker polling task queue %r on %s", settings.task_queue, temporal.where())
    async with worker:
        await (stop or asyncio.Event()).wait()

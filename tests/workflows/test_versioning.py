"""Worker Versioning (docs/deploying-versions.md): a rolling deploy moves running incidents to the new build.

Two versions of one deployment poll one task queue of the dev server, as two
builds do during a rolling deploy. The operator makes each current with the
`temporal` CLI, as the doc says. An incident opened on build 1 takes its next
steps on build 2 once that is current (AUTO_UPGRADE), and the continue-as-new
into its anniversary run lands on build 2; the server records the version of
each run, and `describe` shows it.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.enums.v1 import RoutingConfigUpdateState, VersioningBehavior
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.common import WorkerDeploymentVersion

from tests.support.identity import Amends
from tests.support.steps import opened, take, wait_for, walk_to
from tests.support.temporal_cli import cli
from worker.main import build_worker
from workflows.client import workflow_id
from workflows.stages import Stage


async def make_current(env, version: WorkerDeploymentVersion) -> None:
    """`temporal worker deployment set-current-version`, once the new build's workers have polled; then
    until the task queues route by it (the server propagates the change to them after it answers)."""
    for _ in range(100):
        ran = await cli(env, "worker", "deployment", "set-current-version", "--deployment-name",
                        version.deployment_name, "--build-id", version.build_id, "--yes", check=False)
        if ran.returncode == 0:
            break
        await asyncio.sleep(0.2)  # the version exists once its first poller reached the server
    else:
        raise AssertionError(f"could not make {version.to_canonical_string()} current: {ran.stderr}")
    request = DescribeWorkerDeploymentRequest(namespace=env.client.namespace, deployment_name=version.deployment_name)
    for _ in range(100):
        info = (await env.client.workflow_service.describe_worker_deployment(request)).worker_deployment_info
        if info.routing_config_update_state == RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the task queues never routed to {version.to_canonical_string()}")


async def run_version(env, run_id: str | None, key: str) -> tuple[str, str, int]:
    """The build id, deployment and versioning behaviour the server records for a run of the incident."""
    handle = env.client.get_workflow_handle(workflow_id(key), run_id=run_id)
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id, info.deployment_version.deployment_name, info.behavior


async def test_a_rolling_deploy_moves_an_open_incident_and_its_anniversary_run_to_the_new_build(dev_env, settings):
    deployment, queue = f"amends-{uuid.uuid4().hex[:6]}", f"amends-versioned-{uuid.uuid4().hex[:6]}"
    build1, build2 = WorkerDeploymentVersion(deployment, "build-1"), WorkerDeploymentVersion(deployment, "build-2")
    old = settings.model_copy(update={"task_queue": queue, "deployment": build1})
    new = settings.model_copy(update={"task_queue": queue, "deployment": build2})
    amends = Amends(dev_env.client, queue, read_back=False)  # queries meanwhile wait on the build switch

    async with build_worker(dev_env.client, old):
        await make_current(dev_env, build1)
        key = await opened(amends)
        await walk_to(amends, key, Stage.CLOSED)
        first_run = (await amends.handle(key).describe()).run_id
        assert await run_version(dev_env, first_run, key) == (
            "build-1", deployment, VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE)

        # The rolling deploy: build 2 starts beside build 1 and becomes current; build 1 still polls.
        async with build_worker(dev_env.client, new):
            await make_current(dev_env, build2)
            await take(amends, key, "record_postmortem")  # the first run's next task: on build 2
            snap = await wait_for(amends, key, lambda s: s.phase == "anniversary")
            assert snap.stage == Stage.POSTMORTEM_DONE
            assert (await run_version(dev_env, first_run, key))[0] == "build-2"
            # The anniversary run, a year of waiting, starts on the current build.
            anniversary_run = (await amends.handle(key).describe()).run_id
            assert anniversary_run != first_run
            assert await run_version(dev_env, anniversary_run, key) == (
                "build-2", deployment, VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE)
            # And an incident opened now starts there too.
            fresh = await opened(amends)
            assert (await run_version(dev_env, None, fresh))[0] == "build-2"
            described = await cli(dev_env, "worker", "deployment", "describe", "--name", deployment)
            assert "build-2" in described.stdout

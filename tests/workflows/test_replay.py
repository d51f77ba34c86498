"""Incidents sleep for a year while the code changes: every stored history must still replay.

When a change to IncidentRecovery fails this test, put the new behaviour
behind ``workflow.patched("<why>")`` instead of changing what old runs did,
then record a new history next to the old ones (AMENDS_RECORD_HISTORIES=1).

They replay under the versioning setup of the worker (docs/deploying-versions.md): the
workflow types a versioned worker registers (``worker.main.WORKFLOWS``), in the worker's
sandbox; the versioning behaviour (AUTO_UPGRADE) is the worker's, and changes no command, so
histories recorded before Worker Versioning replay as they are.
"""

from __future__ import annotations

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Replayer

from tests.support.codec import data_converter
from tests.support.history import HISTORIES
from worker.config import Settings
from worker.main import SANDBOXED, WORKFLOW_RUNNER, WORKFLOWS, deployment_config

STORED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_stored():
    assert {p.stem for p in STORED} >= {
        "full_lifecycle_recovery", "full_lifecycle_anniversary", "escalated_apology",
        # The same incident's year, recorded before and after the anniversary gift
        # was added behind workflow.patched("anniversary-gift"): both must replay.
        "anniversary_before_gift", "anniversary_with_gift",
        # The paths a year-long incident may be sleeping on: the business-hours clock, an
        # approval, a decline, a red flag, coupons, a work order and the failure paths.
        "business_clock_decline", "approval_and_refund", "red_flag", "coupons_closed",
        "work_order_rejected_renegotiated", "refund_failed",
        # A refund whose answer was lost for minutes (behind workflow.patched("refund-outcome-unknown")).
        "refund_outcome_unknown",
        # Every step under a verified credential (behind workflow.patched("verified-actors")), stored
        # without the credentials' signatures: replay reads who acted from their claims.
        "verified_recovery", "verified_anniversary", "verified_approval_and_refund",
        # Effects and pages in lanes, each channel on its own (workflow.patched("independent-channels")),
        # PagerDuty resolved, and the clock running while an approval is awaited ("pause-only-on-customer").
        "channels_recovery", "channels_anniversary", "escalated_apology_resolved", "relay_down_pages",
        "approval_waits_clock_runs",
        # A sent work order renegotiated before cancellations existed (the backend was never told),
        # and after, behind workflow.patched("cancel-work-orders"): two remedies, one cancellation each.
        "work_order_sent_renegotiated_uncancelled", "work_orders_cancelled",
        "work_orders_cancelled_in_lanes",
        # Escalation targets recorded by name, their webhook URLs and routing keys left to the worker.
        "escalated_without_secrets",
        # Opened with update-with-start and the apology in the same call; and a first step refused by the
        # credential's verdict (a local activity's, recorded) while the incident opened.
        "opened_with_apology", "opened_with_refused_step",
        # Notices on the timeline when sent ("notice-entries"), search attributes upserted when they change
        # ("upsert-on-change"), steps answered with a small result.
        "notice_entries_recovery", "notice_entries_anniversary",
        # A run grown long continued as new in the middle of the recovery ("continue-mid-recovery"), and
        # the run it continued into.
        "continued_mid_recovery", "continued_recovery_run",
        # Since the release (workflows/versions.py): one marker for every patch, the set-up in one local
        # activity, one upsert per activation; the paths above recorded again.
        "release_recovery", "release_anniversary", "release_opened_with_apology", "release_opened_with_refused_step",
        "release_continued_mid_recovery", "release_continued_recovery_run", "release_escalated_apology_resolved",
        "release_business_clock_decline", "release_coupons_closed", "release_work_order_rejected_renegotiated",
        "release_approval_and_refund", "release_relay_down_pages", "release_anniversary_with_gift",
        "release_refund_outcome_unknown",
    }


@pytest.mark.parametrize("path", STORED, ids=[p.stem for p in STORED])
async def test_stored_history_replays(path):
    history = WorkflowHistory.from_json(f"incident-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter, workflow_runner=WORKFLOW_RUNNER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


RELEASED = [p for p in STORED if p.stem.startswith("release_")]


@pytest.mark.parametrize("path", RELEASED, ids=[p.stem for p in RELEASED])
async def test_the_workflow_makes_no_restricted_call_in_the_sandbox(path):
    """The worker runs the workflow outside the SDK's sandbox (worker/main.py says why); replayed inside it, with
    amends' modules not passed through, a call to the wall clock, randomness or I/O in the workflow fails."""
    history = WorkflowHistory.from_json(f"incident-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter, workflow_runner=SANDBOXED)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_a_versioned_worker_moves_incidents_to_the_current_build_and_an_unversioned_one_may_run_them():
    """AUTO_UPGRADE: a year-long incident never keeps an old build's workers alive; patched guards the rest.

    The workflows declare no behaviour of their own: the server refuses one from an unversioned worker.
    """
    versioned = Settings(deployment=WorkerDeploymentVersion("amends", "2026.11.25-1"))
    config = deployment_config(versioned)
    assert config is not None and config.use_worker_versioning
    assert config.default_versioning_behavior == VersioningBehavior.AUTO_UPGRADE
    assert deployment_config(Settings()) is None  # no build id: unversioned
    assert {workflow._Definition.must_from_class(w).versioning_behavior for w in WORKFLOWS} <= {
        VersioningBehavior.UNSPECIFIED, None}

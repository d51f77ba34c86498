"""The whole playbook, detected to anniversary, on the time-skipping server."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

from tests.support.cli import run
from tests.support.codec import ENV as CODEC_ENV
from tests.support.factories import AGENT, CUSTOMER, EVERY_STAFF_NAME, MANAGER, paid_intent, report
from tests.support.history import (
    commands_by_activation,
    history_kinds,
    history_length,
    keep_history,
    markers,
    recorded_search_attributes,
)
from tests.support.identity import Amends
from tests.support.mail import text_of, unsigned
from tests.support.servers import skip_a_year
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    CloseInput,
    CompleteActionInput,
    FulfilmentConfirmation,
    NeedsInput,
    PostmortemInput,
    RemedyProposal,
)
from workflows.snapshot import Snapshot
from workflows.stages import Stage


async def test_full_lifecycle_reaches_the_anniversary(clock_env, settings, stripe, mail_sink):
    amends = Amends(clock_env.client, settings.task_queue)
    pi = await paid_intent(stripe, 8_000)
    rep = report(pi)
    key = rep.incident_key

    snap = await amends.open_incident(rep)
    assert snap.stage == Stage.DETECTED
    await amends.apologise(key, ApologyInput(by=AGENT, channel="phone"))
    await amends.record_needs(key, NeedsInput(by=AGENT, needs="I want my money back for the tent, and a tent that works."))
    await amends.propose_remedy(
        key,
        RemedyProposal(
            by=AGENT,
            items=[
                {"kind": "refund", "amount": {"amount": 3_000, "currency": "USD"}},
                {"kind": "replacement", "description": "a new tent, sent by express"},
            ],
        ),
    )
    snap = await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
    assert snap.stage == Stage.REMEDY_AGREED
    snap = await amends.confirm_fulfilment(
        key, FulfilmentConfirmation(by=MANAGER, channel="backend", item_id="remedy-1/item-2", note="UPS 1Z999")
    )
    # The refund is made by the engine; once it lands the incident is fulfilled by itself.
    handle = amends.handle(key)
    for _ in range(100):
        snap = await amends.snapshot(key)
        if snap.stage == Stage.FULFILLED:
            break
        await clock_env.sleep(0.1)
    assert snap.stage == Stage.FULFILLED
    assert [m.amount.amount for m in snap.money_moved] == [3_000]

    await amends.close(key, CloseInput(by=AGENT, summary="refund and replacement delivered"))
    first_run = (await handle.describe()).run_id
    last_of_first_run = await amends.record_postmortem(
        key,
        PostmortemInput(
            by=MANAGER,
            what_happened="the parcel left the warehouse with another order's label",
            root_cause_category="process",
            root_cause="labels were printed by hand at the packing station",
            preventive_actions=[
                {"action": "print shipping labels from the order system",
                 "owner": {"name": "Warehouse lead", "email": "warehouse@example.com"},
                 "due": (rep.detected_at + timedelta(days=30)).date()},
            ],
        ),
    )
    await amends.complete_action(key, CompleteActionInput(by=MANAGER, action_id="action-1"))
    # The time-skipping server jumps over the year while nothing else can happen.
    await skip_a_year(clock_env, handle)
    final = await handle.result()
    assert final.stage == Stage.ANNIVERSARY
    assert final.timeline[-1].at - rep.detected_at >= timedelta(days=365)
    recorded = await recorded_search_attributes(handle)
    assert recorded["RecoveryStage"] == "anniversary"
    assert recorded["CustomerId"] == rep.customer.customer_id
    assert "StageDeadline" not in recorded  # nothing left to wait for

    # After the post-mortem the incident continued as new, carrying its whole state: every
    # milestone in order, and the steps between them (needs, proposals) as well.
    assert final.phase == "anniversary"
    steps = [e.step for e in final.timeline]
    milestones = [
        "detected", "apologise", "accept_remedy", "fulfil", "close", "record_postmortem", "complete_action",
        "anniversary",
    ]
    assert [s for s in steps if s in milestones] == milestones
    assert {"record_needs", "propose_remedy", "refund"} <= set(steps)
    # The export for the archive (`amends incident export`) is the first run's record plus the year after.
    ran = await run(str(Path(sys.executable).parent / "amends"), "incident", "export", key, env={
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))}, **CODEC_ENV,
        "TEMPORAL_ADDRESS": clock_env.client.service_client.config.target_host,
        "AMENDS_TASK_QUEUE": settings.task_queue,
    })
    assert ran.code == 0, ran.err
    exported = Snapshot.model_validate_json(ran.out)
    before = last_of_first_run
    assert exported.timeline[: len(before.timeline)] == before.timeline
    after = exported.timeline[len(before.timeline):]
    assert [e.step for e in after if e.step != "notice"] == ["complete_action", "anniversary"]
    # Each notice is recorded when its e-mail went out, the anniversary note's just before its step.
    assert [e.detail for e in exported.timeline if e.step == "notice"] == [
        f"{kind} e-mailed to the customer" for kind in ("apology", "proposal", "confirmation", "closing", "anniversary")]
    assert [e.step for e in after][-2:] == ["notice", "anniversary"]
    assert exported.needs == before.needs and exported.remedies == before.remedies
    assert exported.remedies[0].accepted_by is not None and exported.money_moved == before.money_moved
    assert exported.postmortem == before.postmortem
    assert final.needs and final.remedies[0].accepted_by is not None
    assert final.refunded_total == 3_000 and final.remedy_summary[0] == "a refund of 30.00 USD"
    assert (await history_kinds(handle))[0] == "workflow_execution_started"
    assert await history_length(handle) < 50  # the year is spent on a short history
    kinds = [m["X-Amends-Notice"] for m in mail_sink.to(rep.customer.email)]
    assert kinds == ["apology", "proposal", "confirmation", "closing", "anniversary"]
    for message in mail_sink.to(rep.customer.email):
        text = text_of(message)
        assert "we" in text.lower()
        for name in EVERY_STAFF_NAME:  # the owner only where they sign
            for part in name.split():
                assert part not in unsigned(text), f"{message['X-Amends-Notice']} notice names {part}"
    await keep_history(clock_env.client.get_workflow_handle(handle.id, run_id=first_run), "full_lifecycle_recovery")
    await keep_history(handle, "full_lifecycle_anniversary")
    # The same, with every step under a verified credential (behind workflow.patched("verified-actors")).
    await keep_history(clock_env.client.get_workflow_handle(handle.id, run_id=first_run), "verified_recovery")
    await keep_history(handle, "verified_anniversary")
    # The same, with side effects and pages in lanes of their own (workflow.patched("independent-channels")).
    await keep_history(clock_env.client.get_workflow_handle(handle.id, run_id=first_run), "channels_recovery")
    await keep_history(handle, "channels_anniversary")
    # Notices recorded when sent (workflow.patched("notice-entries")), search attributes upserted only
    # when they change ("upsert-on-change"), small step results.
    await keep_history(clock_env.client.get_workflow_handle(handle.id, run_id=first_run), "notice_entries_recovery")
    await keep_history(handle, "notice_entries_anniversary")
    # Since the release (workflows/versions.py): one marker stands for every patch, in the first run only (the
    # year's run inherits it); the set-up is one local activity; search attributes are upserted at most once
    # per workflow activation (the SDK's own TemporalChangeVersion beside the release's marker aside).
    await keep_history(clock_env.client.get_workflow_handle(handle.id, run_id=first_run), "release_recovery")
    await keep_history(handle, "release_anniversary")
    recovery = await clock_env.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    year = await handle.fetch_history()
    assert markers(recovery) == ["patch:release-2026-12", "local_activity"]
    assert markers(year) == []
    for task in commands_by_activation(recovery) + commands_by_activation(year):
        ours = [c for c in task if c.startswith("UPSERT") and c != "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES(TemporalChangeVersion)"]
        assert len(ours) <= 1, task
    print(f"\nhistory of one full incident: {await history_length(handle)} events")

"""Learning and remembering: the blameless post-mortem, its follow-ups, and the note a year later."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from stripe import InvalidRequestError
from temporalio.client import WorkflowUpdateFailedError

from activities.language import resolve
from tests.support.factories import AGENT, CUSTOMER, MANAGER, paid_intent, refund, report
from tests.support.history import keep_history, settled
from tests.support.identity import Amends
from tests.support.mail import mail_to, text_of
from tests.support.servers import skip_a_year
from tests.support.steps import WALK, assert_refused, take, wait_for
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    ApprovalInput,
    CloseInput,
    CompleteActionInput,
    FlagInput,
    FulfilmentConfirmation,
    NeedsInput,
    PostmortemInput,
    RemedyProposal,
)
from workflows.stages import Stage


def postmortem(today: date, *due_in_days: int, tag: str = "x") -> PostmortemInput:
    return PostmortemInput(
        by=MANAGER,
        what_happened="the parcel left with another order's label",
        root_cause_category="process",
        root_cause="labels are printed by hand, away from the order system",
        contributing_factors=[{"condition": "peak season doubled the parcels per packer", "kind": "capacity"}],
        preventive_actions=[
            {"action": f"preventive action {n}", "owner": {"name": f"Owner {n}", "email": f"owner{n}.{tag}@example.com"},
             "due": today + timedelta(days=d)}
            for n, d in enumerate(due_in_days, start=1)
        ],
    )


async def closed_incident(amends, **report_overrides):
    rep = report(None, **report_overrides)
    await amends.open_incident(rep)
    for step in WALK[:6]:  # to closed
        await take(amends, rep.incident_key, step)
    return rep


async def test_the_note_arrives_a_year_later_after_continue_as_new_naming_what_changed(
        clock_env, settings, stripe, mail_sink):
    amends = Amends(clock_env.client, settings.task_queue, env=clock_env)
    rep = await closed_incident(amends, anniversary_gift={"amount": 1_000, "currency": "USD"})
    key = rep.incident_key
    first_run = (await amends.handle(key).describe()).run_id
    today = (await clock_env.get_current_time()).date()
    await amends.record_postmortem(key, postmortem(today, 10, 20))
    await amends.complete_action(key, CompleteActionInput(by=MANAGER, action_id="action-1"))
    snap = await wait_for(amends, key, lambda s: s.phase == "anniversary")
    assert snap.stage == Stage.POSTMORTEM_DONE and snap.actions[0].status == "done"
    started = [e async for e in amends.handle(key).fetch_history_events()][0]
    # A new run under the same workflow id, continued from the first.
    assert started.workflow_execution_started_event_attributes.continued_execution_run_id == first_run
    await skip_a_year(clock_env, amends.handle(key))
    final = await amends.handle(key).result()
    await keep_history(amends.handle(key), "anniversary_with_gift")
    await keep_history(amends.handle(key), "release_anniversary_with_gift")
    assert final.stage == Stage.ANNIVERSARY
    sent = next(e for e in final.timeline if e.step == "anniversary")
    assert timedelta(days=365) <= sent.at - rep.detected_at < timedelta(days=365, minutes=1)
    [note] = await mail_to(mail_sink, rep.customer.email, "anniversary")
    text = text_of(note)
    # The date as the customer's language writes it (English by default: "November 25, 2026").
    assert f"A year ago this week, on {resolve(None).day(rep.detected_at.date())}" in " ".join(text.split())
    assert "preventive action 1" in text and "preventive action 2" not in text  # only what was done
    assert "The founders, Acme Outdoor" in text
    gift = await stripe.v1.coupons.retrieve_async(f"incident-{key}-anniversary-gift")
    assert gift.amount_off == 1_000 and gift.max_redemptions == 1 and gift.id not in text
    [code] = (await stripe.v1.promotion_codes.list_async(params={"coupon": gift.id})).data
    assert code.max_redemptions == 1 and code.code in text


async def test_a_red_flagged_customer_gets_the_note_without_a_gift(clock_env, settings, stripe, mail_sink):
    amends = Amends(clock_env.client, settings.task_queue, env=clock_env)
    rep = await closed_incident(amends, anniversary_gift={"amount": 1_000, "currency": "USD"})
    key = rep.incident_key
    await amends.flag_account(key, FlagInput(by=MANAGER, reason="abusive to our drivers"))
    today = (await clock_env.get_current_time()).date()
    await amends.record_postmortem(key, postmortem(today, 10))
    await skip_a_year(clock_env, amends.handle(key))
    final = await amends.handle(key).result()
    withheld = next(e for e in final.timeline if e.step == "gift_withheld")
    assert withheld.detail == "no anniversary gift: the account is red-flagged"
    [note] = await mail_to(mail_sink, rep.customer.email, "anniversary")
    assert "gift" not in text_of(note).lower() and "voucher" not in text_of(note).lower()
    with pytest.raises(InvalidRequestError):
        await stripe.v1.coupons.retrieve_async(f"incident-{key}-anniversary-gift")


async def test_an_overdue_action_reminds_its_owner_and_completing_it_stops_the_reminders(
        clock_env, settings, mail_sink):
    amends = Amends(clock_env.client, settings.task_queue, env=clock_env)
    rep = await closed_incident(amends)
    key = rep.incident_key
    today = (await clock_env.get_current_time()).date()
    await amends.record_postmortem(key, postmortem(today, 1, 1, tag=key))  # both due tomorrow
    await clock_env.sleep(timedelta(days=2, hours=12))            # a day overdue
    snap = await amends.snapshot(key)
    assert [e.step for e in snap.timeline].count("reminder") == 2
    assert len(await mail_to(mail_sink, f"owner1.{key}@example.com", "reminder")) == 1
    await amends.complete_action(key, CompleteActionInput(by=AGENT, action_id="action-1"))
    await clock_env.sleep(timedelta(days=5))
    # The page follows its timeline entry: wait until the history has settled.
    await settled(amends.handle(key))
    snap = await amends.snapshot(key)
    # action-1 was done: no more for it; action-2 was escalated to the team lead.
    assert len(mail_sink.to(f"owner1.{key}@example.com")) == 1
    escalated = [e.detail for e in snap.timeline if e.step == "action_overdue"]
    assert escalated == ["action-2 still open: escalated to Team lead, customer care"]
    assert [m["X-Amends-Notice"] for m in mail_sink.to("care-lead@example.com")
            if key in m["Subject"]] == ["action_overdue"]


async def test_a_postmortem_needs_a_future_action_and_names_no_one(ts_env, ts_worker, settings):
    amends = Amends(ts_env.client, settings.task_queue, env=ts_env)
    amends.speculative_tasks = False  # type: ignore[attr-defined]
    rep = await closed_incident(amends)
    key = rep.incident_key
    today = (await ts_env.get_current_time()).date()
    await assert_refused(
        amends, key, "record_postmortem", postmortem(today, -1),
        match=f"preventive_actions[0].due: {(today - timedelta(days=1)).isoformat()} is in the past",
    )
    blaming = postmortem(today, 5).model_copy(update={"root_cause": "Kevin Lomax did not check the label"})
    await assert_refused(amends, key, "record_postmortem", blaming, match="a blameless post-mortem names no one")
    with pytest.raises(WorkflowUpdateFailedError) as err:  # raw JSON, as a backend would send it
        await amends.handle(key).execute_update(
            "record_postmortem", {**postmortem(today, 5).model_dump(mode="json"), "preventive_actions": []},
        )
    assert err.value.cause.type == "InvalidInput"
    assert err.value.cause.message.startswith("preventive_actions: List should have at least 1 item")
    assert (await amends.snapshot(key)).stage == Stage.CLOSED


async def test_the_owner_signs_and_no_one_involved_approving_or_owning_an_action_is_ever_named(
        clock_env, settings, stripe, mail_sink):
    # C was involved in the failure, A (the manager) approves the remedy, B owns the preventive action;
    # the free text from inputs names each of them. Olga Brandt, the owner, looks after the customer.
    amends = Amends(clock_env.client, settings.task_queue, env=clock_env)
    rep = report(await paid_intent(stripe, 8_000), staff_involved=["Carla Nunes"])
    key = rep.incident_key
    await amends.open_incident(rep)
    await amends.apologise(key, ApologyInput(by=AGENT))
    await amends.record_needs(key, NeedsInput(by=AGENT, needs="Carla Nunes promised me a new tent"))
    redo = {"kind": "redo", "description": "Carla Nunes and Marcus Webb pitch a new tent for you on site"}
    await amends.propose_remedy(key, RemedyProposal(by=AGENT, items=[refund(6_000), redo]))  # above an agent's limit
    await amends.approve_remedy(key, ApprovalInput(by=MANAGER, remedy=1, total=6_000))
    await amends.accept_remedy(key, AcceptInput(by=CUSTOMER, channel="email", remedy=1))
    await amends.confirm_fulfilment(key, FulfilmentConfirmation(by=AGENT, item_id="remedy-1/item-2"))
    await wait_for(amends, key, lambda s: s.stage == Stage.FULFILLED)
    await amends.close(key, CloseInput(by=AGENT, summary="refund and a new tent"))
    today = (await clock_env.get_current_time()).date()
    await amends.record_postmortem(key, PostmortemInput(
        by=MANAGER, what_happened="the parcel left with another order's label", root_cause_category="process",
        root_cause="labels are printed by hand",
        preventive_actions=[{"action": "Bruno Keller moved label printing into the order system",
                             "owner": {"name": "Bruno Keller", "email": f"bruno.{key}@example.com"},
                             "due": today + timedelta(days=10)}]))
    await amends.complete_action(key, CompleteActionInput(by=MANAGER, action_id="action-1"))
    await skip_a_year(clock_env, amends.handle(key))
    await amends.handle(key).result()

    notices = {m["X-Amends-Notice"]: m for m in mail_sink.to(rep.customer.email)}
    assert list(notices) == ["apology", "proposal", "confirmation", "closing", "anniversary"]
    for kind, message in notices.items():
        text = " ".join(text_of(message).split())
        for part in ("Carla", "Nunes", "Marcus", "Webb", "Bruno", "Keller"):
            assert part not in text, f"{kind} names {part}"
        if kind == "anniversary":
            # From the executive; the reply reaches the care team.
            assert f"it reaches Customer care ({settings.mail.care.email})" in text
            assert message["Reply-To"].addresses[0].addr_spec == settings.mail.care.email
        else:
            assert f"it goes straight to Olga Brandt ({rep.owner.email})" in text
            assert text.endswith("Olga Brandt Acme Outdoor")
            assert message["Reply-To"].addresses[0].addr_spec == rep.owner.email
    assert "Our team moved label printing into the order system" in text_of(notices["anniversary"])

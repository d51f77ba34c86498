"""A backend in another language drives an incident with the `temporal` CLI and plain JSON.

Nothing Python-specific is used here: the workflow type, update and query
names, and JSON shaped like the contracts' exported schema. Each step's JSON
carries a credential bound to it, printed by ``amends token --incident
--step --input`` (a backend would get one from its identity provider or
sign it with its own key; the first here by a process of its own, the rest
by the same command in this process); who acts comes only from that
credential.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from tests.support.factories import paid_intent
from tests.support.history import history_kinds
from tests.support.identity import Amends
from tests.support.mail import mail_to
from tests.support.steps import wait_for
from tests.support.temporal_cli import cli, credential, listed, signed_update, update


async def test_an_incident_driven_only_through_the_temporal_cli(dev_env, dev_worker, settings, stripe, mail_sink):
    key = f"order-{uuid.uuid4().hex[:8]}-broken"
    wid = f"incident-{key}"
    pi = await paid_intent(stripe, 12_000, "eur")
    backend = {"name": "Go support desk", "role": "backend"}
    report = {
        "incident_key": key,
        "customer": {"customer_id": f"cus-{key}", "name": "Sam Lee", "email": f"sam.{key}@example.com"},
        "order": {"order_id": "ord-77", "amount_paid": {"amount": 12_000, "currency": "EUR"}, "payment_reference": pi},
        "category": "damaged",
        "severity": "medium",
        "what_happened": "Your lamp arrived broken.",
        "impact": "You had no light in your new flat for a week.",
        "detected_at": datetime.now(UTC).isoformat(),
    }
    start = ["workflow", "start", "--type", "IncidentRecovery", "--task-queue", settings.task_queue,
             "--workflow-id", wid, "--input", json.dumps(report),
             "--id-conflict-policy", "UseExisting", "--id-reuse-policy", "AllowDuplicateFailedOnly"]
    await cli(dev_env, *start)
    await cli(dev_env, *start)  # a retried open: still one incident
    # Who acts is never the input's to say: a by beside a good credential is refused.
    apology = {"channel": "backend"}
    cred = await credential(wid, "apologise", apology, backend, process=True)
    claimed = await update(dev_env, wid, "apologise", apology | {"credential": cred, "by": backend}, check=False)
    assert claimed.returncode != 0
    assert "by: who acts comes from the credential's verified claims" in claimed.stdout + claimed.stderr
    # Nor is a step without a credential, or with one signed for other fields.
    bare = await update(dev_env, wid, "apologise", apology, check=False)
    assert bare.returncode != 0 and "apologise needs a signed credential" in bare.stdout + bare.stderr
    other = await update(dev_env, wid, "apologise", {"channel": "phone", "credential": cred}, check=False)
    assert other.returncode != 0 and "credential: signed for another input" in other.stdout + other.stderr

    await update(dev_env, wid, "apologise", apology | {"credential": cred})
    # Each credential is good once (and for this step only).
    again = await update(dev_env, wid, "apologise", apology | {"credential": cred}, check=False)
    assert again.returncode != 0

    # A guard's refusal reaches the CLI user with the reason.
    refused = await signed_update(dev_env, wid, "close", {}, backend, check=False)
    assert refused.returncode != 0
    assert "at stage 'apologised'; allowed now: record_needs" in refused.stdout + refused.stderr
    # So does a contract violation, naming the field (amends token reads the input as the workflow does).
    bad = await update(dev_env, wid, "record_needs", {"needs": "", "credential": cred}, check=False)
    assert bad.returncode != 0 and "needs: String should have at least 1 character" in bad.stdout + bad.stderr

    await signed_update(dev_env, wid, "record_needs", {"needs": "a lamp that works, or my money back"}, backend)
    assert wid in await listed(dev_env, f'RecoveryStage="needs_gathered" AND CustomerId="cus-{key}"')
    await signed_update(dev_env, wid, "propose_remedy", {
        "items": [{"kind": "refund", "amount": {"amount": 4_000, "currency": "EUR"}},
                  {"kind": "replacement", "description": "a new lamp, well packed"}],
    }, backend)
    # A backend may promise no money by itself: an agent approves first.
    await signed_update(dev_env, wid, "approve_remedy", {"remedy": 1, "total": 4_000},
                        {"name": "Priya Shah", "role": "agent"})
    await signed_update(dev_env, wid, "accept_remedy", {"channel": "app", "remedy": 1},
                        {"name": "Sam Lee", "role": "customer"})
    await signed_update(dev_env, wid, "confirm_fulfilment", {"item_id": "remedy-1/item-2", "note": "DHL 123"}, backend)

    out = (await cli(dev_env, "workflow", "query", "--workflow-id", wid, "--name", "snapshot", "--output", "json")).stdout
    snapshot = json.loads(out)["queryResult"][0]
    # The refund may still be on its way; the query answers in JSON either way.
    assert snapshot["stage"] in ("remedy_agreed", "fulfilled")
    assert snapshot["report"]["order"]["amount_paid"] == {"amount": 12_000, "currency": "EUR"}

    amends = Amends(dev_env.client, settings.task_queue)
    await wait_for(amends, key, lambda s: s.stage == "fulfilled")
    await signed_update(dev_env, wid, "close", {}, backend)
    assert await listed(dev_env, f'RecoveryStage="closed" AND CustomerId="cus-{key}"') == [wid]
    kinds = await history_kinds(dev_env.client.get_workflow_handle(wid))
    assert kinds.count("workflow_execution_started") == 1
    snap = await amends.snapshot(key)
    assert [(e.step, e.by.name, e.by.role) for e in snap.timeline if e.step in ("apologise", "approve_remedy",
                                                                            "accept_remedy")] == [
        ("apologise", "Go support desk", "backend"), ("approve_remedy", "Priya Shah", "agent"),
        ("accept_remedy", "Sam Lee", "customer")]
    notices = await mail_to(mail_sink, report["customer"]["email"], count=4)
    assert [m["X-Amends-Notice"] for m in notices] == ["apology", "proposal", "confirmation", "closing"]


async def test_open_and_apologise_in_one_call_with_the_temporal_cli(dev_env, dev_worker, settings):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    wid = f"incident-{key}"
    report = {
        "incident_key": key,
        "customer": {"customer_id": f"cus-{key}", "name": "Sam Lee", "email": f"sam.{key}@example.com"},
        "order": {"order_id": "ord-78", "amount_paid": {"amount": 5_000, "currency": "EUR"}},
        "category": "late_delivery", "severity": "high",
        "what_happened": "Your tent arrived nine days late.", "impact": "You left for your trip without it.",
        "detected_at": datetime.now(UTC).isoformat(),
    }
    apology = {"channel": "backend"}
    cred = await credential(wid, "apologise", apology, {"name": "Go support desk", "role": "backend"})
    # As in the README: one call starts the incident (or finds it) and waits for the opened update's answer.
    open_with_start = ["workflow", "execute-update-with-start", "--type", "IncidentRecovery",
                       "--task-queue", settings.task_queue, "--workflow-id", wid,
                       "--id-conflict-policy", "UseExisting", "--id-reuse-policy", "AllowDuplicateFailedOnly",
                       "--input", json.dumps(report), "--update-name", "opened", "--output", "json"]
    ran = await cli(dev_env, *open_with_start,
                    "--update-input", json.dumps({"step": "apologise", "input": apology | {"credential": cred}}))
    answer = json.loads(ran.stdout)
    assert answer["updateResult"]["stage"] == "apologised", ran.stdout
    assert answer["updateResult"]["deadline"] is not None
    # Opened again, without a step: the same incident, as it is now.
    again = json.loads((await cli(dev_env, *open_with_start)).stdout)
    assert again["updateResult"]["stage"] == "apologised"
    assert again["updateResult"]["workflow_id"] == wid
    kinds = await history_kinds(dev_env.client.get_workflow_handle(wid))
    assert kinds.count("workflow_execution_started") == 1
    assert wid in await listed(dev_env, f'RecoveryStage="apologised" AND CustomerId="cus-{key}"')

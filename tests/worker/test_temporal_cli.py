"""A backend in another language drives an incident with the `temporal` CLI and plain JSON.

Nothing Python-specific is used here: the workflow type, update and query
names, and JSON shaped like the contracts' exported schema.
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
from tests.support.temporal_cli import cli, listed, update


async def test_an_incident_driven_only_through_the_temporal_cli(dev_env, dev_worker, settings, stripe, mail_sink):
    key = f"order-{uuid.uuid4().hex[:8]}-broken"
    wid = f"incident-{key}"
    pi = await paid_intent(stripe, 12_000, "eur")
    agent = {"name": "Go support desk", "role": "backend"}
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
    await update(dev_env, wid, "apologise", {"by": agent, "channel": "backend"})

    # A guard's refusal reaches the CLI user with the reason.
    refused = await update(dev_env, wid, "close", {"by": agent}, check=False)
    assert refused.returncode != 0
    assert "at stage 'apologised'; allowed now: record_needs" in refused.stdout + refused.stderr
    # So does a contract violation, naming the field.
    bad = await update(dev_env, wid, "record_needs", {"by": agent, "needs": ""}, check=False)
    assert bad.returncode != 0 and "needs: String should have at least 1 character" in bad.stdout + bad.stderr

    await update(dev_env, wid, "record_needs", {"by": agent, "needs": "a lamp that works, or my money back"})
    assert wid in await listed(dev_env, f'RecoveryStage="needs_gathered" AND CustomerId="cus-{key}"')
    await update(dev_env, wid, "propose_remedy", {
        "by": agent, "items": [{"kind": "refund", "amount": {"amount": 4_000, "currency": "EUR"}},
                               {"kind": "replacement", "description": "a new lamp, well packed"}],
    })
    # A backend may promise no money by itself: an agent approves first.
    await update(dev_env, wid, "approve_remedy",
                 {"by": {"name": "Priya Shah", "role": "agent"}, "remedy": 1, "total": 4_000})
    await update(dev_env, wid, "accept_remedy", {"by": {"name": "Sam Lee", "role": "customer"}, "channel": "app", "remedy": 1})
    await update(dev_env, wid, "confirm_fulfilment", {"by": agent, "item_id": "remedy-1/item-2", "note": "DHL 123"})

    out = (await cli(dev_env, "workflow", "query", "--workflow-id", wid, "--name", "snapshot", "--output", "json")).stdout
    snapshot = json.loads(out)["queryResult"][0]
    # The refund may still be on its way; the query answers in JSON either way.
    assert snapshot["stage"] in ("remedy_agreed", "fulfilled")
    assert snapshot["report"]["order"]["amount_paid"] == {"amount": 12_000, "currency": "EUR"}

    amends = Amends(dev_env.client, settings.task_queue)
    await wait_for(amends, key, lambda s: s.stage == "fulfilled")
    await update(dev_env, wid, "close", {"by": agent})
    assert await listed(dev_env, f'RecoveryStage="closed" AND CustomerId="cus-{key}"') == [wid]
    kinds = await history_kinds(dev_env.client.get_workflow_handle(wid))
    assert kinds.count("workflow_execution_started") == 1
    notices = await mail_to(mail_sink, report["customer"]["email"], count=4)
    assert [m["X-Amends-Notice"] for m in notices] == ["apology", "proposal", "confirmation", "closing"]

"""What anyone with history access reads: no name, e-mail, free text, routing key or webhook URL of an incident.

One incident goes through the steps that put the most into its history (needs, a remedy with a staff name in
its description, an approval, a red flag, warnings and pages to Slack and PagerDuty), then its raw history is
read the way the Web UI or `temporal workflow show` without the codec would: every string, every payload
base64-decoded. Nothing personal or secret may be there in plaintext.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.factories import AGENT, EVERY_STAFF_NAME, MANAGER, report
from tests.support.identity import Amends
from tests.support.policy import paging
from tests.support.scan import assert_sealed, plaintext_hits
from tests.support.servers import WEBHOOK_SECRET, time_skipping
from tests.support.steps import take
from workflows.converter import data_converter as plain
from workflows.inputs import ApprovalInput, FlagInput, NeedsInput, RemedyProposal


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "unsealed"])
async def test_a_history_holds_no_personal_data_or_secret_in_plaintext(settings, webhook_sink, sealed):
    """With the payload codec nothing is readable; without it (the control of the suite-wide check that every
    server of the suite runs as it shuts down, tests/support/scan.py) the same scan finds the words and fails."""
    base = webhook_sink.url
    private = settings.model_copy(update={"sla_policy": paging(base), "task_queue": f"amends-private-{uuid.uuid4().hex[:6]}"})
    async with time_skipping(private, None if sealed else plain, scan=sealed) as env:
        amends = Amends(env.client, private.task_queue, env=env)
        rep = report("pi_unused", severity="high")
        key = rep.incident_key
        await amends.open_incident(rep)
        await env.sleep(timedelta(hours=2, minutes=40))  # warnings, then every level of the ladder
        await take(amends, key, "apologise")
        await amends.record_needs(key, NeedsInput(by=AGENT, needs="a working tent before Saturday's trip"))
        await amends.propose_remedy(key, RemedyProposal(by=AGENT, note="Rita Moreno will bring it round", items=[
            {"kind": "refund", "amount": {"amount": 6_000, "currency": "USD"}}]))
        await amends.approve_remedy(key, ApprovalInput(by=MANAGER, remedy=1, total=6_000))
        await amends.flag_account(key, FlagInput(by=MANAGER, reason="shouted at the courier"))
        history = await amends.handle(key).fetch_history()
        if not sealed:
            # The suite-wide check itself, on this server: it fails, naming the words it read.
            with pytest.raises(AssertionError) as failed:
                await assert_sealed(env.client, env.started, "the unsealed server")
            assert "Alex Rivera" in str(failed.value) and "shouted at the courier" in str(failed.value)

    private_words = [
        rep.customer.name, str(rep.customer.email), rep.owner.name, str(rep.owner.email), rep.what_happened,
        rep.impact, "a working tent before Saturday", "will bring it round", "shouted at the courier",
        "R0UT1NGKEY", f"{base}/slack", f"{base}/pagerduty", AGENT.name, MANAGER.name,
        *EVERY_STAFF_NAME,
    ]
    hits = plaintext_hits(history, private_words)
    if sealed:
        assert hits == {}
    else:
        # The control: unsealed, the customer, the owner, the needs and the flag are all there to read
        # (the routing key and webhook URLs never are: the worker resolves them at send time).
        assert {rep.customer.name, str(rep.customer.email), rep.owner.name, "shouted at the courier",
                "a working tent before Saturday"} <= set(hits)
        assert "R0UT1NGKEY" not in hits and f"{base}/slack" not in hits and WEBHOOK_SECRET not in hits

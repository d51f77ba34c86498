"""Webhooks per receiver, by the Standard Webhooks scheme: each receiver's own secrets, rotation, signed ids."""

from __future__ import annotations

import base64
import os

import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.exceptions import ApplicationError

from activities.webhooks import WebhookSettings, send_signed, signed_headers, verify
from worker.config import Settings


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


BODY = b'{"data":{"invoice":"inv-1"},"event":"work_order.waive_balance","idempotency_key":"incident-a/remedy-1/item-1"}'
KEY = "incident-a/remedy-1/item-1"


def test_a_signature_made_with_one_receivers_secret_is_refused_by_another():
    crm, billing = secret(), secret()
    headers = signed_headers([crm], KEY, BODY)
    assert verify(crm, headers, BODY)
    assert not verify(billing, headers, BODY)


def test_while_a_secret_rotates_every_request_is_signed_by_both_and_a_receiver_may_hold_two():
    old, new = secret(), secret()
    headers = signed_headers([new, old], KEY, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(old, headers, BODY) and verify(new, headers, BODY)  # receivers not yet moved, and moved
    # A receiver holding two secrets accepts a sender that signs with either.
    assert verify([new, old], signed_headers([old], KEY, BODY), BODY)
    assert verify([new, old], signed_headers([new], KEY, BODY), BODY)
    assert not verify([new, old], signed_headers([secret()], KEY, BODY), BODY)


def test_a_replay_under_another_id_or_idempotency_key_fails():
    key = secret()
    headers = signed_headers([key], KEY, BODY) | {"Idempotency-Key": KEY}
    assert verify(key, headers, BODY)
    assert not verify(key, headers | {"webhook-id": "incident-a/remedy-1/item-2"}, BODY)
    assert not verify(key, headers | {"Idempotency-Key": "incident-a/remedy-1/item-2"}, BODY)
    assert not verify(key, headers, BODY.replace(b"inv-1", b"inv-9"))


async def test_each_receiver_is_signed_with_its_own_secret_and_a_standard_webhooks_library_verifies(webhook_sink):
    billing, crm = secret(), secret()
    settings = WebhookSettings(secret=secret(), secrets={"billing": [billing], "crm": [crm]})
    before = len(webhook_sink.received)
    url = f"{webhook_sink.url}/billing-direct"
    # The sink holds the suite's secret, not billing's: it refuses (401), and amends takes that as final.
    with pytest.raises(ApplicationError, match="billing rejected the work_order.waive_balance: 401 bad signature"):
        await send_signed(settings, url, {"event": "work_order.waive_balance", "data": {"invoice": "inv-1"}}, KEY,
                          "work_order.waive_balance", "billing", receiver="billing")
    received = webhook_sink.received[before]
    assert not received.signature_valid
    assert Webhook(billing).verify(received.raw, received.headers) == {
        "event": "work_order.waive_balance", "data": {"invoice": "inv-1"}}
    with pytest.raises(Exception):  # noqa: B017  (the library's own verification error)
        Webhook(crm).verify(received.raw, received.headers)


def test_secrets_come_per_receiver_from_the_environment_and_a_bad_one_is_named():
    billing, old, new = secret(), secret(), secret()
    settings = Settings.from_env({"AMENDS_WEBHOOK_SECRET": secret(), "AMENDS_BILLING_WEBHOOK_SECRET": billing,
                                  "AMENDS_CRM_WEBHOOK_SECRET": f"{new} {old}"})
    assert settings.webhooks.secrets_for("billing") == [billing]
    assert settings.webhooks.secrets_for("crm") == [new, old]
    assert settings.webhooks.secrets_for("notices") == [settings.webhooks.secret]
    assert settings.webhook_secrets_configured
    assert not Settings.from_env({}).webhook_secrets_configured
    with pytest.raises(ValueError, match="AMENDS_CRM_WEBHOOK_SECRET: a webhook secret starts with whsec_"):
        Settings.from_env({"AMENDS_WEBHOOK_SECRET": secret(), "AMENDS_CRM_WEBHOOK_SECRET": "hunter2"})

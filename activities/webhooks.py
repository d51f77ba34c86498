"""Signed webhooks: work orders to backends, notices for backends that send
their own SMS or in-app messages, and red flags to the CRM.

Every request is JSON, signed by the Standard Webhooks scheme, so that a
receiver in any language verifies it with an off-the-shelf library:

    webhook-id: <stable key: workflow id, remedy and item>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>"> [v1,<...> ...]
    Idempotency-Key: <the same key as webhook-id>
    X-Amends-Event: <event name>

Each receiver (work orders, billing, CRM, notices, pages) has secrets of its
own; while one rotates, the request carries a signature by each of its
secrets. A receiver verifies with :func:`verify` (or any Standard Webhooks
library) and keys its own de-duplication on ``webhook-id``, which the
signature covers: a retried delivery carries the same id and body.

When a remedy is renegotiated, every work order that was sent and is not
done is cancelled with a ``work_order.cancelled`` webhook to the same
target, keyed ``<work order's key>/cancel``. The backend answers 2xx when it
stopped the work, 409 when it is too late (already shipped, or under way);
any other 4xx is a rejection, 5xx is retried.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.payloads import WebhookReceipt, WebhookRequest

TARGETS = ("work_orders", "billing", "notices", "crm", "escalations")


def local_urls(base: str) -> dict[str, str]:
    """Every target under one base URL (``work_orders`` at ``/work-orders``): the development receiver's layout."""
    return {target: f"{base}/{target.replace('_', '-')}" for target in TARGETS}


# The development runtime's secret: public, so `amends worker` refuses to start on it.
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"amends local development only").decode()


def check_secret(secret: str, setting: str) -> str:
    """A Standard Webhooks secret (``whsec_`` and base64), or a ValueError naming the setting."""
    try:
        Webhook(secret)
    except (ValueError, binascii.Error, WebhookVerificationError, RuntimeError) as err:
        raise ValueError(f"{setting}: not a webhook secret (whsec_ followed by base64): {err}") from None
    if not secret.startswith("whsec_"):
        raise ValueError(f"{setting}: a webhook secret starts with whsec_ (then base64)")
    return secret


class WebhookSettings(BaseModel):
    secret: str = DEV_WEBHOOK_SECRET  # every receiver's, unless it has secrets of its own
    secrets: dict[str, list[str]] = {}  # receiver -> its secrets (all sign while one rotates)
    urls: dict[str, str] = {}
    timeout_seconds: float = 10.0

    def secrets_for(self, receiver: str) -> list[str]:
        return self.secrets.get(receiver) or [self.secret]


def signed_headers(secrets: Sequence[str], message_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``: one signature per secret."""
    when = at or datetime.now(UTC)
    signatures = " ".join(Webhook(s).sign(message_id, when, body.decode()) for s in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
    }


def verify(secrets: str | Sequence[str], headers: Mapping[str, str], body: bytes) -> bool:
    """True when ``headers`` sign ``body`` with one of ``secrets``, within 5 minutes.

    The ``Idempotency-Key``, when present, must be the signed ``webhook-id``:
    a replay under another key is refused.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    key = lower.get("idempotency-key")
    if key is not None and key != lower.get("webhook-id"):
        return False
    for secret in [secrets] if isinstance(secrets, str) else secrets:
        try:
            Webhook(secret).verify(body, lower, json_parse=False)
            return True
        except WebhookVerificationError:
            continue
    return False


class WebhookActivities:
    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings

    @activity.defn(name="post_webhook")
    async def post_webhook(self, req: WebhookRequest) -> WebhookReceipt:
        return await post(self.settings, req)


async def post(settings: WebhookSettings, req: WebhookRequest) -> WebhookReceipt:
    """Deliver one signed webhook; raise a retryable error on 5xx, 408, 425 and 429."""
    url = settings.urls.get(req.target)
    if not url:
        if req.required:
            raise ApplicationError(
                f"no URL is configured for {req.target} webhooks (AMENDS_{req.target.upper()}_URL)",
                type="WebhookNotConfigured",
                non_retryable=True,
            )
        return WebhookReceipt(delivered=False, detail=f"{req.target} webhook not configured")
    body = {"event": req.event, "idempotency_key": req.idempotency_key, "data": req.payload}
    return await send_signed(settings, url, body, req.idempotency_key, req.event, req.target, tuple(req.answers),
                             receiver=req.target)


async def send_signed(
    settings: WebhookSettings,
    url: str,
    payload: dict[str, Any],
    idempotency_key: str,
    event: str,
    target: str = "webhook",
    answers: tuple[int, ...] = (),
    receiver: str = "escalations",
) -> WebhookReceipt:
    """POST ``payload`` as signed JSON; 5xx, 408, 425 and 429 raise a retryable error, other 4xx reject.

    A status in ``answers`` is the backend's answer, not a rejection: it is
    returned in the receipt with the backend's reason as ``detail``.
    """
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "X-Amends-Event": event,
        **signed_headers(settings.secrets_for(receiver), idempotency_key, body),
    }
    async with httpx.AsyncClient(timeout=settings.timeout_seconds) as http:
        response = await http.post(url, content=body, headers=headers)
    if response.status_code in (408, 425, 429) or response.status_code >= 500:
        raise RuntimeError(f"{target} answered {response.status_code}; will retry")  # retryable
    if response.status_code in answers:
        return WebhookReceipt(delivered=True, status=response.status_code, detail=_reason(response))
    if response.status_code >= 400:
        raise ApplicationError(
            f"{target} rejected the {event}: {response.status_code} {_reason(response)}",
            type="WebhookRejected",
            non_retryable=True,
        )
    reference = None
    try:
        data = response.json()
        reference = str(data.get("reference") or data.get("id") or data.get("dedup_key") or "") or None
    except (ValueError, AttributeError):
        pass
    return WebhookReceipt(delivered=True, status=response.status_code, reference=reference)


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("reason") or data.get("error") or data)
    except ValueError:
        return response.text[:300]

"""Signed webhooks: work orders to backends, notices for backends that send
their own SMS or in-app messages, and red flags to the CRM.

Every request is JSON, signed with HMAC-SHA256 over ``<timestamp>.<body>``
(the scheme Stripe uses, so receivers can reuse their verification code):

    X-Amends-Signature: t=<unix seconds>,v1=<hex digest>
    Idempotency-Key: <stable key: workflow id, remedy and item>
    X-Amends-Event: <event name>

A receiver verifies with :func:`verify` and keys its own de-duplication on
``Idempotency-Key``: a retried delivery carries the same key and body.

When a remedy is renegotiated, every work order that was sent and is not
done is cancelled with a ``work_order.cancelled`` webhook to the same
target, keyed ``<work order's key>/cancel``. The backend answers 2xx when it
stopped the work, 409 when it is too late (already shipped, or under way);
any other 4xx is a rejection, 5xx is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.payloads import WebhookReceipt, WebhookRequest

SIGNATURE_HEADER = "X-Amends-Signature"
TARGETS = ("work_orders", "billing", "notices", "crm", "escalations")


def local_urls(base: str) -> dict[str, str]:
    """Every target under one base URL (``work_orders`` at ``/work-orders``): the development receiver's layout."""
    return {target: f"{base}/{target.replace('_', '-')}" for target in TARGETS}


class WebhookSettings(BaseModel):
    secret: str = "whsec_amends_local"
    urls: dict[str, str] = {}
    timeout_seconds: float = 10.0


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within the tolerance."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


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
    return await send_signed(settings, url, body, req.idempotency_key, req.event, req.target, tuple(req.answers))


async def send_signed(
    settings: WebhookSettings,
    url: str,
    payload: dict[str, Any],
    idempotency_key: str,
    event: str,
    target: str = "webhook",
    answers: tuple[int, ...] = (),
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
        SIGNATURE_HEADER: sign(settings.secret, body, int(time.time())),
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

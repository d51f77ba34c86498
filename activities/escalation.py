"""Warnings and escalation pages: email plus a signed webhook in the target's format.

One page per incident, stage, level and repeat: the key travels as the
email's Message-ID, the webhook's Idempotency-Key and PagerDuty's dedup_key,
so a retried page is recognised as the same page by every receiver.
Formats: amends' own JSON, a Slack incoming-webhook message, or a
PagerDuty Events API v2 trigger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notices import MailSettings, send_email
from activities.webhooks import WebhookSettings, send_signed
from workflows.inputs import Contact
from workflows.payloads import Notice, PageRequest
from workflows.sla import PageTarget


def dedup_key(req: PageRequest) -> str:
    """One PagerDuty incident per amends incident and stage: repeats update it, the step taken resolves it."""
    return f"{req.incident}/{req.stage}"


PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


def summary(req: PageRequest) -> str:
    if req.kind == "resolved":
        return f"{req.incident}: {req.waiting_for} done; resolved"
    if req.kind in ("reminder", "action_overdue"):
        return f"{req.incident}: preventive action overdue since {req.due_at:%Y-%m-%d}: {req.action}"
    if req.kind == "warning":
        return (f"{req.incident}: {int((req.fraction or 0) * 100)}% of the {req.waiting_for} deadline used "
                f"(due {req.due_at:%Y-%m-%d %H:%M} UTC)")
    return f"{req.incident}: {req.waiting_for} overdue by {req.overdue}, escalated to level {req.level}"


def payload(req: PageRequest) -> dict[str, Any]:
    text = summary(req)
    details = {
        "incident": req.incident, "customer_id": req.customer_id, "severity": req.severity, "stage": req.stage,
        "waiting_for": req.waiting_for, "due_at": req.due_at.isoformat(), "level": req.level,
        "repeat": req.repeat, "what_happened": req.what_happened,
    }
    if req.format == "slack" and req.kind == "resolved":
        return {"text": f":white_check_mark: {text}"}
    if req.format == "slack":
        icon = ":warning:" if req.kind == "warning" else ":rotating_light:"
        return {
            "text": f"{icon} {text}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{text}*"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": f"*Customer*\n{req.customer_id}"},
                    {"type": "mrkdwn", "text": f"*Severity*\n{req.severity}"},
                    {"type": "mrkdwn", "text": f"*Stage*\n{req.stage}"},
                    {"type": "mrkdwn", "text": f"*What happened*\n{req.what_happened}"},
                ]},
            ],
        }
    if req.format == "pagerduty" and req.kind == "resolved":
        return {"routing_key": req.routing_key or "", "event_action": "resolve", "dedup_key": dedup_key(req)}
    if req.format == "pagerduty":
        return {
            "routing_key": req.routing_key or "",
            "event_action": "trigger",
            "dedup_key": dedup_key(req),
            "payload": {
                "summary": text[:1024],
                "source": "amends",
                "severity": "warning" if req.kind == "warning" else PD_SEVERITY.get(req.severity, "error"),
                "component": req.stage,
                "group": "customer-care",
                "class": req.kind,
                "custom_details": details,
            },
        }
    return {"event": f"incident.{req.kind}", "idempotency_key": req.idempotency_key, "data": details}


class EscalationActivities:
    def __init__(self, mail: MailSettings, webhooks: WebhookSettings,
                 targets: Mapping[str, PageTarget] | None = None) -> None:
        self.mail = mail
        self.webhooks = webhooks
        # Where each target's webhook is, and its routing key: the worker's, never the history's.
        self.targets = dict(targets or {})

    def resolved(self, req: PageRequest) -> PageRequest:
        """The request with its target's webhook URL and routing key from the worker's policy."""
        if req.webhook_url or not req.webhook:
            return req
        target = self.targets.get(req.target or "")
        if target is None or target.webhook_url is None:
            raise ApplicationError(f"target {req.target!r} has no webhook in this worker's SLA policy",
                                   type="WebhookNotConfigured", non_retryable=True)
        return req.model_copy(update={"webhook_url": target.webhook_url, "routing_key": target.routing_key})

    @activity.defn(name="page")
    async def page(self, req: PageRequest) -> str:
        """Every channel in one activity: kept for incidents recorded before channels were independent."""
        sent = []
        if req.email:
            sent.append(await self.page_email(req))
        if req.webhook_url or req.webhook:
            sent.append(await self.page_webhook(req))
        return " and ".join(sent) or "nobody: the target has neither email nor webhook"

    @activity.defn(name="page_email")
    async def page_email(self, req: PageRequest) -> str:
        """The page by e-mail, to the target or, when it has no address, to the care contact."""
        to = Contact(name=req.target_name, email=req.email) if req.email else self.mail.care
        await send_email(self.mail, Notice(
            kind=req.kind,
            audience="internal",
            to=to,
            message_id=req.idempotency_key,
            context={"summary": summary(req), **req.model_dump(mode="json")},
        ))
        return f"email to {to.name}" if not req.email else "email"

    @activity.defn(name="page_webhook")
    async def page_webhook(self, req: PageRequest) -> str:
        req = self.resolved(req)
        assert req.webhook_url, "a webhook page needs the target's webhook"
        await send_signed(self.webhooks, req.webhook_url, payload(req), req.idempotency_key,
                          f"incident.{req.kind}", req.target_name)
        return f"{req.format} webhook"

"""Reading the notices the SMTP sink received, and checking that no staff name reached a customer."""

from __future__ import annotations

import asyncio

from tests.support.factories import EVERY_STAFF_NAME

CUSTOMER_NOTICES = {"apology", "proposal", "confirmation", "closing", "anniversary"}


def text_of(message) -> str:
    """The plain-text part of a notice (each also carries an HTML alternative)."""
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


async def mail_to(sink, address: str, kind: str | None = None, count: int = 1, tries: int = 200) -> list:
    """Wait until ``count`` notices (of ``kind``) have reached ``address``; return them."""
    found: list = []
    for _ in range(tries):
        found = [m for m in sink.to(address) if kind is None or m["X-Amends-Notice"] == kind]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(found)} of {count} {kind or ''} notices reached {address}")


def customer_mail(messages) -> list[tuple[str, str]]:
    """(where, text) of every customer notice among the sink's emails."""
    return [
        (f"email {message['X-Amends-Notice']} to {message['To']}", message.as_string())
        for message in messages
        if message["X-Amends-Notice"] in CUSTOMER_NOTICES
    ]


def customer_webhooks(hooks) -> list[tuple[str, str]]:
    """(where, text) of every customer notice among the webhook sink's ``/notices`` deliveries."""
    return [(f"webhook {hook.body['event']}", hook.raw.decode()) for hook in hooks
            if hook.body["data"]["audience"] == "customer"]


def assert_no_staff_name(texts: list[tuple[str, str]]) -> None:
    """No customer notice names any member of staff given in any test's input."""
    parts = {part for name in EVERY_STAFF_NAME for part in name.split()}
    leaks = [(where, part) for where, text in texts for part in parts if part in text]
    assert not leaks, f"staff names reached customers: {leaks[:5]}"

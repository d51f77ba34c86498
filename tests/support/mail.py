"""Reading the notices the SMTP sink received, and checking that no staff name reached a customer."""

from __future__ import annotations

import asyncio
import html
import re

from tests.support.factories import EVERY_STAFF_NAME, OWNER
from workflows.names import NameMatcher

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
        (f"email {message['X-Amends-Notice']} to {message['To']}",
         "\n\n".join([str(message["Subject"]), text_of(message), html.unescape(html_of(message))]))
        for message in messages
        if message["X-Amends-Notice"] in CUSTOMER_NOTICES
    ]


def customer_webhooks(hooks) -> list[tuple[str, str]]:
    """(where, text) of every customer notice among the webhook sink's ``/notices`` deliveries."""
    return [(f"webhook {hook.body['event']}",
             "\n\n".join([hook.body["data"]["subject"], hook.body["data"]["text"],
                          html.unescape(hook.body["data"]["html"])]))
            for hook in hooks if hook.body["data"]["audience"] == "customer"]


# Where the template names the care contact on purpose: "goes straight to Olga Brandt (owner.…@…)", with
# the address, and the signature line. Anywhere else (a redaction missed in the text from inputs) the owner's name still counts.
_SIGNED = re.compile(rf"{OWNER}\s*\([^()\s]+@[^()\s]+\)|{OWNER}(?=\s*$|\s*<)", re.MULTILINE)


def unsigned(text: str) -> str:
    return _SIGNED.sub("", text)


def assert_no_staff_name(texts: list[tuple[str, str]]) -> None:
    """No customer notice names any member of staff given in any test's input.

    The notices' own matcher (``workflows.names``), over every part of the
    notice (subject, text, the HTML unescaped), words of the templates included:
    every form of each name (any case, accents, apostrophes, "Family, Given");
    a name that is also an everyday word only where it stands as a name.
    """
    matcher = NameMatcher(EVERY_STAFF_NAME, min_part=2)
    leaks = [(where, m.text) for where, text in texts for m in matcher.finditer(unsigned(text))]
    assert not leaks, f"staff names reached customers: {leaks[:5]}"

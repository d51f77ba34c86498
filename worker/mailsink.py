"""An SMTP sink for development and tests: keeps every message, in memory and as .eml files.

Built on aiosmtpd (the maintained successor of smtpd); nothing is relayed.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller


class MailSink:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.messages: list[EmailMessage] = []
        if directory:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(message)
        if self.directory:
            n = len(list(self.directory.glob("*.eml"))) + 1
            kind = message.get("X-Amends-Notice", "mail")
            (self.directory / f"{n:05d}-{kind}.eml").write_bytes(envelope.original_content)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


def start_sink(host: str, port: int, directory: Path | None = None) -> tuple[Controller, MailSink]:
    sink = MailSink(directory)
    controller = Controller(sink, hostname=host, port=port)
    controller.start()
    return controller, sink

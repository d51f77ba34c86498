"""A webhook receiver for development and tests: it plays the backends.

It accepts amends' signed webhooks on any path (``/work-orders``,
``/billing``, ``/notices``, ``/crm``…), checks each signature, answers with a
reference (the same one again for a repeated ``Idempotency-Key``, as a
well-behaved backend would), and keeps every request, in memory and, when
given a folder, as a JSON file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from activities.webhooks import verify


@dataclass
class Received:
    path: str
    headers: dict
    body: dict
    raw: bytes
    signature_valid: bool


@dataclass
class WebhookSink:
    secret: str | list[str]
    directory: Path | None = None
    received: list[Received] = field(default_factory=list)
    # path -> (status, json body) to answer instead of 200 (e.g. a rejection)
    respond: dict[str, tuple[int, dict]] = field(default_factory=dict)
    # (path, event) -> (status, json body): the answer to one kind of request
    # only (e.g. 409 to a work order's cancellation: already shipped)
    respond_to: dict[tuple[str, str], tuple[int, dict]] = field(default_factory=dict)
    _references: dict[str, str] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"reason": "body is not JSON"}, status=400)
        valid = verify(self.secret, dict(request.headers), raw)
        item = Received(request.path, dict(request.headers), body, raw, valid)
        self.received.append(item)
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
            n = len(self.received)
            name = f"{n:05d}-{body.get('event', 'webhook')}.json".replace("/", "-")
            (self.directory / name).write_text(
                json.dumps({"path": item.path, "signature_valid": valid, "headers": item.headers, "body": body},
                           indent=2)
            )
        if not valid:
            return web.json_response({"reason": "bad signature"}, status=401)
        answer_to = self.respond_to.get((request.path, str(body.get("event", ""))))
        if answer_to is None and request.path in self.respond:
            answer_to = self.respond[request.path]
        if answer_to is not None:
            status, answer = answer_to
            return web.json_response(answer, status=status)
        key = request.headers.get("webhook-id", str(len(self.received)))
        reference = self._references.setdefault(key, f"ref-{len(self._references) + 1}")
        return web.json_response({"reference": reference})

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


async def start_webhook_sink(host: str, port: int, secret: str, directory: Path | None = None):
    sink = WebhookSink(secret=secret, directory=directory)
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, sink

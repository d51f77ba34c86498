"""A proxy in front of localstripe that can lose every answer: Stripe did the work, the caller never hears."""

from __future__ import annotations

import httpx
from aiohttp import web

from worker.processes import free_port


class LosingProxy:
    """Forwards every request to ``upstream``; while ``losing``, drops the connection instead of answering."""

    def __init__(self, upstream: str, lose_from: str | None = None) -> None:
        self.upstream = upstream
        self.losing = False
        # Start losing answers once this request ("POST /v1/refunds") has been forwarded.
        self.lose_from = lose_from
        self.forwarded: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with httpx.AsyncClient() as http:
            answer = await http.request(request.method, self.upstream + request.path_qs, content=body, headers=headers)
        self.forwarded.append(f"{request.method} {request.path}")
        if self.lose_from == self.forwarded[-1]:
            self.losing, self.lose_from = True, None
        if self.losing and request.transport is not None:
            request.transport.close()  # the work is done upstream; the answer is lost on the way back
            raise ConnectionResetError("answer lost")
        return web.Response(status=answer.status_code, body=answer.content,
                            content_type=answer.headers.get("content-type", "application/json").split(";")[0])

    async def __aenter__(self) -> LosingProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

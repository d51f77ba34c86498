"""The codec server: Temporal's remote-codec protocol over HTTP, so that authorised people read sealed payloads.

The Web UI and the ``temporal`` CLI (``--codec-endpoint``) send the payloads
they show to ``POST <endpoint>/decode`` as the protobuf JSON of ``Payloads``
(``{"payloads": [{"metadata": {...}, "data": "<base64>"}]}``) and show what
comes back; the CLI sends the inputs it starts workflows with to
``<endpoint>/encode``. Only the last segment of the path says which (the
protocol's rule), so the endpoint may sit at any depth.

Who may ask: whoever presents the token (``AMENDS_CODEC_TOKEN``), either as
``Authorization: Bearer <token>`` (the ``temporal`` CLI's ``--codec-auth``, a
proxy in front) or as the endpoint's path (``http://host:port/<token>``): the
Web UI sends no header of its own unless it passes its users' SSO access
token, so ``amends dev`` gives it the token in the endpoint it is configured
with. Anything else gets 401 and not one byte decoded.

Browsers ask first (CORS preflight): the origins of the Web UI
(``AMENDS_CODEC_CORS_ORIGINS``) are allowed to send ``Content-Type``,
``Authorization`` and ``X-Namespace``; other origins are refused.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from workflows.codec import CodecError, EncryptionCodec

TOKEN_ENV = "AMENDS_CODEC_TOKEN"
ORIGINS_ENV = "AMENDS_CODEC_CORS_ORIGINS"
DEFAULT_PORT = 8427
DEFAULT_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
ALLOWED_HEADERS = "Content-Type, Authorization, X-Namespace"
MAX_BODY = 32 * 1024 * 1024  # a page of the UI's events; each payload is at most a few MB

log = logging.getLogger("amends.codec")


class CodecServer:
    def __init__(self, codec: EncryptionCodec, token: str, origins: Iterable[str] = DEFAULT_ORIGINS) -> None:
        if not token:
            raise ValueError(f"the codec server needs a token ({TOKEN_ENV}): it never decodes for anyone")
        self.codec = codec
        self.token = token
        self.origins = {o.rstrip("/") for o in origins}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("OPTIONS", "/{path:.*}", self.preflight)
        app.router.add_post("/{path:.*}", self.handle)
        return app

    # ------------------------------------------------------------ CORS

    def _cors(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and origin.rstrip("/") in self.origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        return response

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        if origin.rstrip("/") not in self.origins:
            return web.Response(status=403, text=f"origin {origin or '(none)'} is not allowed\n")
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
        return self._cors(request, response)

    # ------------------------------------------------------------ encode / decode

    def _authorised(self, request: web.Request, prefix: str) -> bool:
        bearer = request.headers.get("Authorization", "")
        scheme, _, presented = bearer.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), self.token.encode()):
            return True
        return bool(prefix) and hmac.compare_digest(prefix.encode(), self.token.encode())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        prefix, _, action = request.match_info["path"].strip("/").rpartition("/")
        if action not in ("encode", "decode"):
            return self._cors(request, web.Response(status=404, text="POST …/encode or …/decode\n"))
        if not self._authorised(request, prefix):
            log.warning("codec: refused a %s request without a valid token (namespace %s)", action,
                        request.headers.get("X-Namespace", "?"))
            response = web.Response(status=401, text="a valid bearer token is required\n",
                                    headers={"WWW-Authenticate": 'Bearer realm="amends codec"'})
            return self._cors(request, response)
        payloads = Payloads()
        try:
            json_format.Parse(await request.text(), payloads)
        except (json_format.ParseError, DecodeError, UnicodeDecodeError) as err:
            return self._cors(request, web.Response(status=400, text=f"not the JSON of Payloads: {err}\n"))
        coded = await self.codec.encode(payloads.payloads) if action == "encode" else self._open(payloads)
        body = json_format.MessageToJson(Payloads(payloads=coded), indent=None)
        return self._cors(request, web.Response(text=body, content_type="application/json"))


    def _open(self, payloads: Payloads) -> list:
        # One payload this server cannot open (a key retired too early) stays sealed; the rest of the page shows.
        opened = []
        for payload in payloads.payloads:
            try:
                opened.append(self.codec.open(payload))
            except CodecError as err:
                log.warning("codec: %s", err)
                opened.append(payload)
        return opened


async def start_codec_server(server: CodecServer, host: str, port: int) -> web.AppRunner:
    # No access log: the Web UI's endpoint carries the token in its path.
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner

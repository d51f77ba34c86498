"""Payload keys and the codec server: ``amends codec-key`` and ``amends codec-server``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import click

from worker.cli.connection import CONTEXT, EXIT_INVALID, fail


@click.command("codec-server", context_settings=CONTEXT,
               short_help="Decrypt payloads for the Web UI and the temporal CLI (Temporal's codec protocol).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; put TLS (a proxy) in front of anything beyond this machine.")
@click.option("--port", type=int, default=8427, show_default=True)
@click.option("--ui-origin", "origins", multiple=True, metavar="ORIGIN",
              help="Origin of a Web UI allowed to call from a browser (repeatable) [env AMENDS_CODEC_CORS_ORIGINS, "
                   "comma-separated; default http://localhost:8233 and http://127.0.0.1:8233].")
def codec_server(host: str, port: int, origins: tuple[str, ...]) -> None:
    """Serve POST /encode and /decode (Temporal's remote-codec protocol) with amends' payload keys
    (AMENDS_CODEC_KEYS, AMENDS_CODEC_KEY_ID) to whoever presents the token AMENDS_CODEC_TOKEN, as
    `Authorization: Bearer TOKEN` or as the endpoint's path (http://HOST:PORT/TOKEN, for a Web UI
    that sends no header). Everyone else gets 401.

    \b
    The temporal CLI:  temporal workflow show -w ID \\
                         --codec-endpoint http://HOST:PORT --codec-auth "Bearer $AMENDS_CODEC_TOKEN"
    The Web UI:        its codec endpoint http://HOST:PORT/TOKEN (`temporal server start-dev
                       --ui-codec-endpoint`, or the UI's data-encoder settings)
    """
    from worker.cli.runtime import _logging
    from worker.codec_server import DEFAULT_ORIGINS, ORIGINS_ENV, TOKEN_ENV, CodecServer, start_codec_server
    from worker.config import codec_keys
    from workflows.codec import CodecError, EncryptionCodec

    token = os.environ.get(TOKEN_ENV, "")
    if len(token) < 16:
        fail(f"invalid: {TOKEN_ENV} must hold a secret token of 16 characters or more; the codec server "
             f"decodes for nobody without one", EXIT_INVALID)
    try:
        ring = codec_keys()
    except CodecError as err:
        fail(f"invalid: {err}", EXIT_INVALID)
    allowed = origins or tuple(o.strip() for o in os.environ.get(ORIGINS_ENV, "").split(",") if o.strip()) \
        or DEFAULT_ORIGINS
    _logging()

    async def go() -> None:
        runner = await start_codec_server(CodecServer(EncryptionCodec(ring), token, allowed), host, port)
        logging.getLogger("amends.codec").info(
            "codec server on http://%s:%d (keys %s, current %s; browsers from %s)", host, port,
            ", ".join(ring.ids), ring.current, ", ".join(allowed))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(go())
    except OSError as err:
        fail(f"unavailable: cannot listen on {host}:{port}: {err.strerror}", EXIT_INVALID)


@click.command("codec-key", context_settings=CONTEXT, short_help="Make a payload key (for AMENDS_CODEC_KEYS).")
@click.option("--id", "key_id", default=None, help="The key's id [default: k-YYYYMMDD, today's date].")
@click.option("--add-to", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append the key to this key file (created, readable by its owner only); else print it.")
def codec_key(key_id: str | None, path: Path | None) -> None:
    """Make a fresh 256-bit AES key for sealing payloads, as a key-file line: `ID = "BASE64"`.

    \b
    Rotation without downtime:
      1. add the new key to the key file of every worker, client and codec server;
      2. once all run with it, make it current (AMENDS_CODEC_KEY_ID=ID) everywhere;
      3. remove the old key only when no history within retention was sealed with it.
    """
    from workflows.codec import new_key

    key_id = key_id or f"k-{datetime.now(UTC):%Y%m%d}"
    line = f'{key_id} = "{new_key()}"\n'
    if path is None:
        click.echo(line, nl=False)
        return
    if path.exists():
        try:
            held = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            fail(f"invalid: {path} is not a key file (TOML): {err}", EXIT_INVALID)
        if key_id in held:
            fail(f"invalid: {path} already holds a key {key_id!r}; choose another --id", EXIT_INVALID)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(line)
    click.echo(f"added key {key_id!r} to {path}; make it current with AMENDS_CODEC_KEY_ID={key_id} once every "
               f"process holds it", err=True)

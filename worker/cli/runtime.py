"""Running things: ``amends dev`` (the embedded runtime), ``amends worker`` and ``amends setup``."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import click
from temporalio.service import RPCError

from worker.cli.connection import (
    CONTEXT,
    EXIT_INVALID,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    Connection,
    Failure,
    connection_options,
    fail,
    temporal_options,
)
from worker.cli.output import console, terminal
from workflows.client import DEFAULT_TASK_QUEUE


def _logging(rich: bool = False) -> None:
    if rich:
        from rich.logging import RichHandler

        # Through rich, so that log lines land above a spinner instead of through it; it shows time and level.
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s",
                            handlers=[RichHandler(console=console(err=True), show_path=False)])
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per SMTP command
    logging.getLogger("transitions").setLevel(logging.WARNING)  # a line per state callback


class DevOutput:
    """What ``amends dev`` says: at a terminal each start-up step is a spinner, then a tick; else plain lines."""

    def __init__(self) -> None:
        self.console = console(err=True) if terminal(err=True) else None
        self.status: Any = None
        self.step = ""

    def __call__(self, line: str) -> None:
        from worker.devserver import is_progress

        if self.console is None:
            click.echo(line, err=line.startswith("amends dev:"))
            return
        # A step is done when the next one starts or the banner comes; an error says itself what went wrong.
        self.close(done=is_progress(line) or not line.lstrip().startswith("amends dev:"))
        if is_progress(line):
            from rich.text import Text

            self.step = line.removeprefix("amends dev: ").removesuffix("…")
            self.status = self.console.status(Text(self.step + "…"))
            self.status.start()
        else:
            click.echo(line, err=line.startswith("amends dev:"))

    def close(self, done: bool = False) -> None:
        if self.status is None or self.console is None:
            return
        self.status.stop()
        self.status = None
        if done:
            from rich.text import Text

            self.console.print(Text.assemble(("✓ ", "green"), self.step))


@click.command(context_settings=CONTEXT,
               short_help="Run Temporal + UI, a Stripe fake, an SMTP sink and the worker.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), envvar="AMENDS_DATA",
              default=Path(".data"), show_default=True,
              help="Where incidents (SQLite), Stripe state, mail, logs and the issuer's keys are kept "
                   "[env AMENDS_DATA].")
@click.option("--port", type=int, default=7233, show_default=True, help="Temporal gRPC port.")
@click.option("--ui-port", type=int, default=8233, show_default=True, help="Temporal Web UI port.")
@click.option("--http-port", type=int, default=7243, show_default=True,
              help="Port of the Temporal server's HTTP API, for backends without an SDK (docs/http.md).")
@click.option("--stripe-port", type=int, default=8420, show_default=True, help="localstripe port.")
@click.option("--smtp-port", type=int, default=1025, show_default=True, help="SMTP sink port.")
@click.option("--webhook-port", type=int, default=8425, show_default=True,
              help="Port of the webhook receiver that plays the backends.")
@click.option("--issuer-port", type=int, default=8426, show_default=True,
              help="Port of the local credential issuer (AMENDS_ISSUER_URL).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9464, show_default=True,
              help="Port of the worker's Prometheus metrics (http://127.0.0.1:PORT/metrics); 0: none.")
@click.option("--codec-port", type=int, default=8427, show_default=True,
              help="Port of the codec server that decrypts payloads for the Web UI and the temporal CLI.")
def dev(data_dir: Path, port: int, ui_port: int, http_port: int, stripe_port: int, smtp_port: int, webhook_port: int,
        issuer_port: int, metrics_port: int, codec_port: int) -> None:
    """Run the embedded runtime until Ctrl-C: Temporal dev server and Web UI, localstripe, an SMTP sink,
    the webhook receiver, a local credential issuer and the worker. Incidents survive a restart (they
    live in DATA/temporal.db); so do the issuer's keys (DATA/issuer), which `amends token` signs with, and
    the payload key (DATA/codec-keys.toml), which seals every payload and which the CLI finds there."""
    from worker.config import Settings
    from worker.devserver import DevPorts, run

    try:
        Settings.from_env()  # the same rules as for `amends worker`, before anything starts
    except ValueError as err:
        fail(f"invalid: {err}", EXIT_INVALID)
    out = DevOutput()
    _logging(rich=out.console is not None)
    try:
        code = run(data_dir, DevPorts(temporal=port, ui=ui_port, http=http_port, stripe=stripe_port, smtp=smtp_port,
                                      webhooks=webhook_port, issuer=issuer_port, metrics=metrics_port,
                                      codec=codec_port), out=out)
    finally:
        out.close()
    raise SystemExit(code)


@click.command(context_settings=CONTEXT, short_help="Run the worker alone (config from the environment).")
@connection_options
def worker(address: str | None, namespace: str | None, profile: str | None, config_file: str | None,
           task_queue: str, timeout: float) -> None:
    """Run the amends worker alone until Ctrl-C or SIGTERM.

    The connection comes from the SDK's environment configuration, as for the `temporal` CLI: a
    profile (--profile, TEMPORAL_PROFILE) of a config file (--config-file, TEMPORAL_CONFIG_FILE),
    then TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*. Everything else
    from AMENDS_* variables, or files of the same names in AMENDS_SECRETS_DIR (default
    /run/secrets), listed in docs/configuration.md. A value that breaks its rule, a missing
    setting (AMENDS_STRIPE_API_KEY, AMENDS_WEBHOOK_SECRET, AMENDS_CARE_EMAIL, AMENDS_IDENTITY,
    AMENDS_CODEC_KEYS) or a development default (localstripe's key, the public webhook secret,
    SMTP in plain text to another host) stops it with exit 2, naming the variable. With
    AMENDS_BUILD_ID it polls as that version of deployment AMENDS_DEPLOYMENT_NAME (Worker
    Versioning, docs/deploying-versions.md).
    """
    from worker.config import ConfigError, Settings, Temporal
    from worker.main import run_worker

    temporal = Temporal(address, namespace, profile, config_file)
    try:
        settings = Settings.from_env().model_copy(update={"task_queue": task_queue})
        settings.refuse_development_defaults()
        temporal.connect_config()
    except ValueError as err:  # ConfigError, and the files' own errors: each names its variable
        fail(f"invalid: {err}", EXIT_INVALID)
    _logging()

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop, temporal)

    from worker.metrics import ENV, MetricsBindError
    from workflows.codec import CodecError

    try:
        asyncio.run(go())
    except MetricsBindError as err:
        fail(f"invalid: {ENV}: {err}", EXIT_INVALID)
    except (CodecError, ConfigError) as err:
        fail(f"invalid: {err}", EXIT_INVALID)
    except RuntimeError as err:
        if "connect" not in str(err):
            raise
        fail(f"unavailable: cannot connect to Temporal at {temporal.where()}: {err}", EXIT_UNAVAILABLE)
    logging.getLogger("amends").info("worker stopped")


@click.command(context_settings=CONTEXT, short_help="Register amends' search attributes on the namespace.")
@temporal_options
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for Temporal.")
def setup(address: str | None, namespace: str | None, profile: str | None, config_file: str | None,
          timeout: float) -> None:
    """Register the search attributes amends' incidents upsert (RecoveryStage, Severity, ...) on the
    namespace of the configured server, once: only missing ones are added, so running it again is
    harmless. A name the namespace already has with another type is an error (exit 1), and nothing
    is added. `amends dev` needs none of this: it registers them itself.
    """
    from worker.config import connect_operator
    from worker.setup import (
        SearchAttributeConflict,
        register_search_attributes,
        type_name,
        wanted_type,
    )
    from workflows import search

    conn = Connection(address, namespace, DEFAULT_TASK_QUEUE, timeout, profile, config_file)
    try:
        conn.temporal.connect_config()
    except ValueError as err:
        fail(f"invalid: {err}", EXIT_INVALID)

    async def go():
        # Outcomes are returned, not raised (see Connection.run).
        try:
            client = await asyncio.wait_for(connect_operator(address, namespace, profile=profile,
                                                             config_file=config_file), timeout)
        except (TimeoutError, RuntimeError) as err:
            return None, Failure(f"unavailable: cannot connect to Temporal at {conn.where()}: "
                                 f"{err or 'timed out'}", EXIT_UNAVAILABLE)
        try:
            return await asyncio.wait_for(register_search_attributes(client, namespace), timeout), None
        except SearchAttributeConflict as err:
            return None, Failure(f"refused: {err}", EXIT_REFUSED)
        except TimeoutError:
            return None, Failure(f"unavailable: no answer from {conn.where()} within {timeout:.0f}s",
                                 EXIT_UNAVAILABLE)
        except RPCError as err:
            return None, conn.failure(err, None)

    result, failure = asyncio.run(go())
    if failure is not None:
        raise failure
    types = {k.name: type_name(wanted_type(k)) for k in search.ALL}
    click.echo(f"search attributes on namespace {result.namespace!r} at {conn.where()}:")
    for name, kind in types.items():
        click.echo(f"  {'added' if name in result.added else 'present':<8} {name} ({kind})")
    click.echo(f"{len(result.added)} added, {len(result.present)} already present")

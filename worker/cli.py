"""The ``amends`` command line: the embedded runtime, the worker, and every step of an incident.

Exit codes, so that scripts and agents can tell an answer from a fault:
0 done; 1 the engine said no (a guard refused the step, the incident is
closed, or there is no such incident); 2 the input is invalid (nothing was
sent); 3 Temporal could not be reached or did not answer in time.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import signal
import sys
import traceback
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Awaitable, Callable

import click
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.client import DEFAULT_TASK_QUEUE, AmendsClient, IncidentClosed, StepRefused, workflow_id
from workflows.inputs import (
    AcceptInput,
    ApologyInput,
    ApprovalInput,
    Category,
    CloseInput,
    CompleteActionInput,
    DeclineInput,
    FlagInput,
    FulfilmentConfirmation,
    IncidentReport,
    NeedsInput,
    PostmortemInput,
    RemedyProposal,
    RenegotiateInput,
    Role,
    Severity,
    SystemCondition,
)
from workflows.money import exponent, format_money
from workflows.snapshot import Snapshot

EXIT_REFUSED, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 2, 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Which option fills which field, to name the option in validation errors.
OPTION_FOR = {
    "incident_key": "--key",
    "customer.customer_id": "--customer-id",
    "customer.name": "--customer-name",
    "customer.email": "--email",
    "order.order_id": "--order-id",
    "order.amount_paid.amount": "--amount",
    "order.amount_paid.currency": "--currency",
    "order.amount_paid": "--amount/--currency",
    "order.payment_reference": "--payment-ref",
    "category": "--category",
    "severity": "--severity",
    "what_happened": "--what",
    "impact": "--impact",
    "detected_at": "--detected-at",
    "owner.name": "--owner-name",
    "owner.email": "--owner-email",
    "staff_involved": "--staff",
    "by.name": "--by",
    "by.role": "--role",
    "channel": "--channel",
    "needs": "--needs",
    "items": "--refund/--redo/--replacement/--late-delivery/--upgrade",
    "note": "--note",
    "reason": "--reason",
    "summary": "--summary",
    "item_id": "ITEM_ID",
    "root_cause": "--root-cause",
    "root_cause_category": "--category",
    "preventive_actions": "--action",
    "preventive_actions.action": "--action",
    "preventive_actions.owner": "--owner",
    "preventive_actions.due": "--due",
    "contributing_factors": "--factor",
    "action_id": "ACTION_ID",
}


# ================================================================ helpers


class Unavailable(Exception):
    """Temporal could not be reached, or did not answer in time."""


class Failure(click.ClickException):
    """Print ``message`` as it is (no "Error:" prefix) and exit with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def fail(message: str, code: int) -> None:
    raise Failure(message, code)


def to_minor(text: str, currency: str, option: str) -> int:
    """``"80.00"`` in USD is 8000: decimal amounts as the contract's integer minor units."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not an amount like 80.00", param_hint=option) from None
    if not value.is_finite():
        raise click.BadParameter(f"{text!r} is not an amount like 80.00", param_hint=option)
    places = exponent(currency)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise click.BadParameter(
            f"{text} has more decimals than {currency.upper()} allows ({places})", param_hint=option
        )
    return int(minor)


def human_duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 60:
        return "under 1 min"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
    days, rest = divmod(seconds, 86400)
    return f"{days} d {rest // 3600} h" if rest >= 3600 else f"{days} d"


def utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def default_actor_name() -> str:
    name = os.environ.get("USER")
    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            name = "amends-cli"
    return name


def explain(err: ValidationError, hints: bool) -> str:
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(input)"
        hint = ""
        if hints:
            # List positions do not change the option: preventive_actions.0.due is --due.
            plain = ".".join(str(p) for p in e["loc"] if not isinstance(p, int))
            named = [k for k in OPTION_FOR if plain == k or plain.startswith(k + ".")]
            if named:
                hint = f" ({OPTION_FOR[max(named, key=len)]})"
        lines.append(f"invalid: {field}{hint}: {e['msg']} [{e['type']}]")
    return "\n".join(lines)


def build(model: type[BaseModel], data: dict, hints: bool = True) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        fail(explain(err, hints), EXIT_INVALID)


# ================================================================ talking to Temporal


class Connection:
    def __init__(self, address: str | None, namespace: str | None, task_queue: str, timeout: float) -> None:
        self.address, self.namespace, self.task_queue, self.timeout = address, namespace, task_queue, timeout

    def where(self) -> str:
        return self.address or os.environ.get("TEMPORAL_ADDRESS") or "localhost:7233"

    async def client(self) -> AmendsClient:
        from worker.config import connect

        try:
            client = await asyncio.wait_for(connect(self.address, self.namespace), self.timeout)
        except (RuntimeError, asyncio.TimeoutError) as err:
            raise Unavailable(f"cannot connect to Temporal at {self.where()}: {err or 'timed out'}") from None
        return AmendsClient(client, self.task_queue)

    def run(self, key: str | None, work: Callable[[AmendsClient], Awaitable[Any]]) -> Any:
        """Connect, do ``work``, and turn the engine's answers into messages and exit codes."""

        async def go() -> tuple[Any, click.ClickException | None]:
            # Every outcome is returned, not raised: an exception leaving
            # asyncio.run would keep the client alive in its traceback until
            # interpreter shutdown, where the SDK's native runtime aborts.
            try:
                amends = await self.client()
                return await asyncio.wait_for(work(amends), self.timeout), None
            except asyncio.TimeoutError:
                return None, Failure(
                    f"unavailable: no answer within {self.timeout:.0f}s: is a worker (`amends worker` or "
                    f"`amends dev`) polling task queue {self.task_queue!r} on {self.where()}? A step sent "
                    f"meanwhile may still be applied when one does; check with "
                    f"`amends incident show {key or 'KEY'}`.",
                    EXIT_UNAVAILABLE,
                )
            except click.ClickException as err:
                return None, err
            except Exception as err:
                failure = self.failure(err, key)
                if failure is None:
                    raise
                return None, failure

        value, failure = asyncio.run(go())
        if failure is not None:
            raise failure
        return value

    def failure(self, err: Exception, key: str | None) -> Failure | None:
        if isinstance(err, (StepRefused, IncidentClosed)):
            return Failure(f"refused: {err}", EXIT_REFUSED)
        if isinstance(err, ValidationError):
            return Failure(explain(err, hints=False), EXIT_INVALID)
        if isinstance(err, Unavailable):
            return Failure(f"unavailable: {err}", EXIT_UNAVAILABLE)
        if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
            return Failure(
                f"unavailable: the step was not accepted in time ({err}); check with `amends incident show {key}`",
                EXIT_UNAVAILABLE,
            )
        if isinstance(err, (WorkflowUpdateFailedError, WorkflowQueryFailedError)):
            cause = getattr(err, "cause", None) or err
            return Failure(f"failed: {getattr(cause, 'message', None) or cause}", EXIT_REFUSED)
        if isinstance(err, RPCError):
            if err.status == RPCStatusCode.NOT_FOUND and key is not None:
                return Failure(
                    f"not found: no incident with key {key!r} (workflow {workflow_id(key)}): {err.message}",
                    EXIT_REFUSED,
                )
            if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                return Failure(f"unavailable: {err.message}", EXIT_UNAVAILABLE)
            return Failure(f"error: {err.status.name if err.status else 'RPC'}: {err.message}", EXIT_REFUSED)
        return None


def summary_line(snap: Snapshot) -> str:
    parts = []
    if snap.deadline:
        parts.append(deadline_text(snap))
    parts.append("next: " + (", ".join(snap.allowed_steps) or "nothing (the clock takes the next step)"))
    return "; ".join(parts)


def deadline_text(snap: Snapshot, now: datetime | None = None) -> str:
    d = snap.deadline
    assert d is not None
    left = (d.due_at - (now or datetime.now(timezone.utc))).total_seconds()
    when = f"due in {human_duration(left)}" if left >= 0 else f"overdue by {human_duration(left)}"
    return f"{d.waiting_for} {when} ({utc(d.due_at)} UTC)"


def print_step_result(snap: Snapshot) -> None:
    click.echo(f"{snap.workflow_id} {snap.stage}")
    click.echo(summary_line(snap))


# ================================================================ the group


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="amends", prog_name="amends")
def cli() -> None:
    """amends: service recovery as durable Temporal workflows.

    Start with `amends dev` (everything on this machine, Web UI on http://localhost:8233), then
    `amends incident open --help`.
    """


# ================================================================ dev and worker


@cli.command(context_settings=CONTEXT, short_help="Run Temporal + UI, a Stripe fake, an SMTP sink and the worker.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".data"),
              show_default=True, help="Where incidents (SQLite), Stripe state, mail and logs are kept.")
@click.option("--port", type=int, default=7233, show_default=True, help="Temporal gRPC port.")
@click.option("--ui-port", type=int, default=8233, show_default=True, help="Temporal Web UI port.")
@click.option("--stripe-port", type=int, default=8420, show_default=True, help="localstripe port.")
@click.option("--smtp-port", type=int, default=1025, show_default=True, help="SMTP sink port.")
@click.option("--webhook-port", type=int, default=8425, show_default=True,
              help="Port of the webhook receiver that plays the backends.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9464, show_default=True,
              help="Port of the worker's Prometheus metrics (http://127.0.0.1:PORT/metrics); 0: none.")
def dev(data_dir: Path, port: int, ui_port: int, stripe_port: int, smtp_port: int, webhook_port: int,
        metrics_port: int) -> None:
    """Run the embedded runtime until Ctrl-C: Temporal dev server and Web UI, localstripe, an SMTP sink
    and the worker. Incidents survive a restart (they live in DATA/temporal.db)."""
    from worker.devserver import DevPorts, run

    _logging()
    code = run(data_dir, DevPorts(temporal=port, ui=ui_port, stripe=stripe_port, smtp=smtp_port,
                                  webhooks=webhook_port, metrics=metrics_port),
               out=lambda line: click.echo(line, err=line.startswith("amends dev:")))
    raise SystemExit(code)


def connection_options(f):
    f = click.option("--timeout", type=float, default=30.0, show_default=True,
                     help="Seconds to wait for Temporal and the worker to answer.")(f)
    f = click.option("--task-queue", envvar="AMENDS_TASK_QUEUE", default=DEFAULT_TASK_QUEUE, show_default=True,
                     help="Task queue of the amends worker [env AMENDS_TASK_QUEUE].")(f)
    f = click.option("--namespace", default=None,
                     help="Temporal namespace [env TEMPORAL_NAMESPACE, default: default].")(f)
    f = click.option("--address", default=None,
                     help="Temporal frontend host:port [env TEMPORAL_ADDRESS, default: localhost:7233].")(f)
    return f


@cli.command(context_settings=CONTEXT, short_help="Run the worker alone (config from the environment).")
@connection_options
def worker(address: str | None, namespace: str | None, task_queue: str, timeout: float) -> None:
    """Run the amends worker alone until Ctrl-C or SIGTERM.

    The connection comes from the environment as for the `temporal` CLI (TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE); mail and Stripe
    from AMENDS_* variables. With AMENDS_METRICS_BIND=HOST:PORT the worker serves Prometheus
    metrics at http://HOST:PORT/metrics (docs/metrics.md).
    """
    from worker.config import Settings
    from worker.main import run_worker

    if address:
        os.environ["TEMPORAL_ADDRESS"] = address
    if namespace:
        os.environ["TEMPORAL_NAMESPACE"] = namespace
    settings = Settings.from_env().model_copy(update={"task_queue": task_queue})
    _logging()

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    from worker.metrics import ENV, MetricsBindError

    try:
        asyncio.run(go())
    except MetricsBindError as err:
        fail(f"invalid: {ENV}: {err}", EXIT_INVALID)
    except RuntimeError as err:
        if "connect" not in str(err):
            raise
        fail(f"unavailable: cannot connect to Temporal: {err}", EXIT_UNAVAILABLE)
    logging.getLogger("amends").info("worker stopped")


@cli.command(context_settings=CONTEXT, short_help="Register amends' search attributes on the namespace.")
@click.option("--address", default=None,
              help="Temporal frontend host:port [env TEMPORAL_ADDRESS, default: localhost:7233].")
@click.option("--namespace", default=None, help="Temporal namespace [env TEMPORAL_NAMESPACE, default: default].")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for Temporal.")
def setup(address: str | None, namespace: str | None, timeout: float) -> None:
    """Register the search attributes amends' incidents upsert (RecoveryStage, Severity, ...) on the
    namespace of the configured server, once: only missing ones are added, so running it again is
    harmless. A name the namespace already has with another type is an error (exit 1), and nothing
    is added. `amends dev` needs none of this: it registers them itself.
    """
    from worker.config import connect
    from worker.setup import SearchAttributeConflict, register_search_attributes, type_name, wanted_type
    from workflows import search

    conn = Connection(address, namespace, DEFAULT_TASK_QUEUE, timeout)

    async def go():
        # Outcomes are returned, not raised (see Connection.run).
        try:
            client = await asyncio.wait_for(connect(address, namespace), timeout)
        except (RuntimeError, asyncio.TimeoutError) as err:
            return None, Failure(f"unavailable: cannot connect to Temporal at {conn.where()}: "
                                 f"{err or 'timed out'}", EXIT_UNAVAILABLE)
        try:
            return await asyncio.wait_for(register_search_attributes(client, namespace), timeout), None
        except SearchAttributeConflict as err:
            return None, Failure(f"refused: {err}", EXIT_REFUSED)
        except asyncio.TimeoutError:
            return None, Failure(f"unavailable: no answer from {conn.where()} within {timeout:.0f}s",
                                 EXIT_UNAVAILABLE)
        except RPCError as err:
            return None, conn.failure(err, None)

    result, failure = asyncio.run(go())
    if failure is not None:
        raise failure
    types = {k.name: type_name(wanted_type(k)) for k in search.ALL}
    click.echo(f"search attributes on namespace {result.namespace!r} at {conn.where()}:")
    for name in types:
        click.echo(f"  {'added' if name in result.added else 'present':<8} {name} ({types[name]})")
    click.echo(f"{len(result.added)} added, {len(result.present)} already present")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per SMTP command
    logging.getLogger("transitions").setLevel(logging.WARNING)  # a line per state callback


# ================================================================ incident


@cli.group(context_settings=CONTEXT, short_help="Open an incident, take its steps, show it.")
@connection_options
@click.pass_context
def incident(ctx: click.Context, address: str | None, namespace: str | None, task_queue: str, timeout: float) -> None:
    """Open an incident and take its steps, by its key (the workflow id is incident-KEY).

    Every step takes --by NAME (default $USER), --role and --channel. A step the playbook does not
    allow now prints `refused: <why>` and exits 1; invalid input prints `invalid: <field>: <rule>`
    and exits 2; an unreachable Temporal or worker exits 3.
    """
    ctx.obj = Connection(address, namespace, task_queue, timeout)


@cli.group(context_settings=CONTEXT, short_help="Lists of incidents for ops (visibility queries).")
@connection_options
@click.pass_context
def incidents(ctx: click.Context, address: str | None, namespace: str | None, task_queue: str, timeout: float) -> None:
    """Lists of incidents, from Temporal's visibility store (the same queries the Web UI runs)."""
    ctx.obj = Connection(address, namespace, task_queue, timeout)


STALLED_QUERY = 'ExecutionStatus="Running" AND WorkflowType="IncidentRecovery" AND StageDeadline < "{now}"'


async def stalled_incidents(client, now: datetime) -> list[dict]:
    """Running incidents past their stage deadline, most overdue first."""
    from workflows import search

    query = STALLED_QUERY.format(now=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    rows = []
    async for wf in client.list_workflows(query):
        attrs = wf.typed_search_attributes
        due = attrs.get(search.STAGE_DEADLINE)
        if due is None or due >= now:
            continue
        rows.append({
            "workflow_id": wf.id,
            "stage": attrs.get(search.RECOVERY_STAGE),
            "severity": attrs.get(search.SEVERITY),
            "customer_id": attrs.get(search.CUSTOMER_ID),
            "escalation_level": attrs.get(search.ESCALATION_LEVEL) or 0,
            "deadline": due,
            "overdue_seconds": int((now - due).total_seconds()),
        })
    return sorted(rows, key=lambda r: r["deadline"])


@incidents.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def stalled(ctx: click.Context, as_json: bool) -> None:
    """Incidents past their stage's deadline, most overdue first."""
    conn: Connection = ctx.obj

    async def work(amends: AmendsClient) -> list[dict]:
        return await stalled_incidents(amends.client, datetime.now(timezone.utc))

    rows = conn.run(None, work)
    if as_json:
        for row in rows:
            click.echo(json.dumps({**row, "deadline": row["deadline"].isoformat()}))
        return
    if not rows:
        click.echo("no stalled incidents")
        return
    for row in rows:
        click.echo(
            f"{row['workflow_id']}  {row['stage']:<15} {row['severity'] or '':<8} overdue "
            f"{human_duration(row['overdue_seconds'])}  level {row['escalation_level']}  "
            f"due {utc(row['deadline'])}  {row['customer_id'] or ''}"
        )


ROLE_CHOICES = click.Choice([r.value for r in Role if r is not Role.SYSTEM])


def actor_options(f):
    f = click.option("--update-id", default=None,
                     help="Idempotency key: a retried command with the same id is applied once.")(f)
    f = click.option("--channel", default=None, help="How it happened: email, phone, chat, backend, ...")(f)
    f = click.option("--role", type=ROLE_CHOICES, default=Role.AGENT.value, show_default=True,
                     help="The role of who takes the step.")(f)
    f = click.option("--by", "by_name", default=default_actor_name, show_default="$USER",
                     help="Who takes the step.")(f)
    return f


def step_data(by_name: str, role: str, channel: str | None, **fields: Any) -> dict:
    data: dict[str, Any] = {"by": {"name": by_name, "role": role}}
    if channel is not None:
        data["channel"] = channel
    data.update({k: v for k, v in fields.items() if v is not None})
    return data


def take_step(ctx: click.Context, key: str, method: str, model: type[BaseModel], data: dict,
              update_id: str | None) -> None:
    step = build(model, data)
    conn: Connection = ctx.obj
    snap = conn.run(key, lambda amends: getattr(amends, method)(key, step, update_id))
    print_step_result(snap)


@incident.command("open", context_settings=CONTEXT)
@click.option("--json", "json_file", type=click.File("r"), default=None,
              help="An IncidentReport as JSON (see schema/open.schema.json); - for stdin.")
@click.option("--key", help="Your own key for the incident, e.g. order-1001-late.")
@click.option("--customer-id")
@click.option("--customer-name")
@click.option("--email", help="The customer's email address.")
@click.option("--order-id")
@click.option("--amount", help="Amount paid, as a decimal: 80.00.")
@click.option("--currency", help="ISO 4217 code: USD, EUR, ...")
@click.option("--payment-ref", help="Stripe charge (ch_...) or payment intent (pi_...) that refunds go back to.")
@click.option("--category", type=click.Choice([c.value for c in Category]))
@click.option("--severity", type=click.Choice([s.value for s in Severity]))
@click.option("--what", help="What went wrong, in plain words (shown to the customer).")
@click.option("--impact", help="What it did to the customer (shown to the customer).")
@click.option("--detected-at", help="ISO 8601 time with a zone; default now (UTC).")
@click.option("--owner-name", help="Who is answerable internally; stalls escalate to them.")
@click.option("--owner-email")
@click.option("--staff", multiple=True, help="Staff connected with the failure (kept internal). Repeatable.")
@click.pass_context
def open_(ctx: click.Context, json_file, key, customer_id, customer_name, email, order_id, amount, currency,
          payment_ref, category, severity, what, impact, detected_at, owner_name, owner_email, staff) -> None:
    """Open an incident (or find the one already open under this key) and print its id and stage."""
    options = dict(key=key, customer_id=customer_id, customer_name=customer_name, email=email, order_id=order_id,
                   amount=amount, currency=currency, payment_ref=payment_ref, category=category, severity=severity,
                   what=what, impact=impact, detected_at=detected_at, owner_name=owner_name,
                   owner_email=owner_email)
    if json_file is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
        given += ["--staff"] if staff else []
        if given:
            raise click.UsageError(f"--json replaces the other options; drop {', '.join(given)}")
        try:
            data = json.load(json_file)
        except json.JSONDecodeError as err:
            fail(f"invalid: {json_file.name}: not JSON: {err}", EXIT_INVALID)
        report = build(IncidentReport, data, hints=False)
    else:
        if amount is not None and currency is None:
            raise click.UsageError("--amount needs --currency (to know its minor units)")
        data: dict[str, Any] = {
            "incident_key": key,
            "customer": {"customer_id": customer_id, "name": customer_name, "email": email},
            "order": {"order_id": order_id, "payment_reference": payment_ref},
            "category": category,
            "severity": severity,
            "what_happened": what,
            "impact": impact,
            "detected_at": detected_at or datetime.now(timezone.utc),
            "staff_involved": list(staff),
        }
        if amount is not None:
            data["order"]["amount_paid"] = {"amount": to_minor(amount, currency, "--amount"),
                                            "currency": currency.upper()}
        if owner_name or owner_email:
            data["owner"] = {"name": owner_name, "email": owner_email}
        report = build(IncidentReport, _drop_none(data))
    conn: Connection = ctx.obj
    snap = conn.run(report.incident_key, lambda amends: amends.open_incident(report))
    print_step_result(snap)


def _drop_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    return data


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@actor_options
@click.pass_context
def apologise(ctx, key, by_name, role, channel, update_id) -> None:
    """Apologise to the customer, first and fast: sends the apology notice."""
    take_step(ctx, key, "apologise", ApologyInput, step_data(by_name, role, channel), update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--needs", required=True, help="What the customer needs, in their own words.")
@actor_options
@click.pass_context
def needs(ctx, key, needs, by_name, role, channel, update_id) -> None:
    """Record what the customer needs to make it right (step record_needs)."""
    take_step(ctx, key, "record_needs", NeedsInput, step_data(by_name, role, channel, needs=needs), update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--refund", "refunds", multiple=True, metavar="AMOUNT",
              help="Money back, as a decimal (30.00) in the order's currency. Repeatable.")
@click.option("--currency", default=None, help="Currency of the amounts; default the order's.")
@click.option("--coupon", "coupons", multiple=True, metavar="AMOUNT", help="A coupon for an amount off. Repeatable.")
@click.option("--coupon-percent", "coupon_percents", multiple=True, type=click.IntRange(1, 100), metavar="N",
              help="A coupon for N% off. Repeatable.")
@click.option("--coupon-days", default=365, show_default=True, type=click.IntRange(1, 3660),
              help="How long the coupons are valid.")
@click.option("--waive", default=None, metavar="AMOUNT", help="Waive an outstanding balance (with --invoice).")
@click.option("--invoice", default=None, help="The invoice whose balance --waive waives.")
@click.option("--split-cost", default=None, metavar="AMOUNT", help="A cost both sides share (with --our-share).")
@click.option("--our-share", default=None, type=click.IntRange(1, 100), metavar="PERCENT",
              help="Our share of --split-cost, in percent.")
@click.option("--split-as", type=click.Choice(["refund", "coupon"]), default="refund", show_default=True,
              help="How we pay our share.")
@click.option("--split-description", default="the shared cost", show_default=True, help="What the cost is for.")
@click.option("--gift-coupon", default=None, metavar="AMOUNT", help="A goodwill gift voucher.")
@click.option("--gift-note", default=None, metavar="TEXT", help="A goodwill gift note.")
@click.option("--redo", multiple=True, metavar="TEXT", help="Redo the work. Repeatable.")
@click.option("--replacement", multiple=True, metavar="TEXT", help="Send a replacement. Repeatable.")
@click.option("--late-delivery", multiple=True, metavar="TEXT", help="Deliver what was ordered, late. Repeatable.")
@click.option("--upgrade", multiple=True, metavar="TEXT", help="An upgrade at no extra cost. Repeatable.")
@click.option("--items-json", type=click.File("r"), default=None, metavar="FILE",
              help="Items as a JSON list (any kind, see schema/propose_remedy.schema.json); '-' reads stdin.")
@click.option("--note", default=None, help="A note on the proposal.")
@actor_options
@click.pass_context
def propose(ctx, key, refunds, currency, coupons, coupon_percents, coupon_days, waive, invoice, split_cost,
            our_share, split_as, split_description, gift_coupon, gift_note, redo, replacement, late_delivery,
            upgrade, items_json, note, by_name, role, channel, update_id) -> None:
    """Propose a remedy (step propose_remedy): any mix of the remedies the playbook names."""
    conn: Connection = ctx.obj
    if (waive is None) != (invoice is None):
        raise click.UsageError("--waive and --invoice go together")
    if (split_cost is None) != (our_share is None):
        raise click.UsageError("--split-cost and --our-share go together")

    async def work(amends: AmendsClient) -> Snapshot:
        cur = currency
        if cur is None:
            cur = (await amends.snapshot(key)).report.order.amount_paid.currency
        cur = cur.upper()

        def m(text: str, option: str) -> dict:
            return {"amount": to_minor(text, cur, option), "currency": cur}

        items: list[dict] = [{"kind": "refund", "amount": m(r, "--refund")} for r in refunds]
        items += [{"kind": "coupon", "amount_off": m(c, "--coupon"), "valid_for_days": coupon_days} for c in coupons]
        items += [{"kind": "coupon", "percent_off": p, "valid_for_days": coupon_days} for p in coupon_percents]
        if waive is not None:
            items.append({"kind": "waive_balance", "amount": m(waive, "--waive"), "invoice_reference": invoice})
        if split_cost is not None:
            items.append({"kind": "split_cost", "cost": m(split_cost, "--split-cost"), "our_share_percent": our_share,
                          "paid_as": split_as, "description": split_description})
        if gift_coupon is not None or gift_note is not None:
            gift: dict = {"kind": "gift", "note": gift_note}
            if gift_coupon is not None:
                gift["coupon_amount"] = m(gift_coupon, "--gift-coupon")
            items.append(gift)
        for kind, texts in (("redo", redo), ("replacement", replacement), ("late_delivery", late_delivery),
                            ("upgrade", upgrade)):
            items += [{"kind": kind, "description": t} for t in texts]
        if items_json is not None:
            try:
                extra = json.load(items_json)
            except ValueError as err:
                raise click.BadParameter(f"not JSON: {err}", param_hint="--items-json") from None
            if not isinstance(extra, list):
                raise click.BadParameter("must be a JSON list of items", param_hint="--items-json")
            items += extra
        step = build(RemedyProposal, step_data(by_name, role, channel, items=items, note=note))
        return await amends.propose_remedy(key, step, update_id)

    print_step_result(conn.run(key, work))


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--note", default=None)
@actor_options
@click.pass_context
def approve(ctx, key, note, by_name, role, channel, update_id) -> None:
    """Approve the pending remedy, within your role's limit (step approve_remedy)."""
    take_step(ctx, key, "approve_remedy", ApprovalInput, step_data(by_name, role, channel, note=note), update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--on-behalf", is_flag=True, help="Record the customer's yes on their behalf (say --channel).")
@actor_options
@click.pass_context
def accept(ctx, key, on_behalf, by_name, role, channel, update_id) -> None:
    """The customer accepts the proposed remedy; delivery starts (step accept_remedy)."""
    data = step_data(by_name, role, channel, on_behalf_of_customer=on_behalf)
    take_step(ctx, key, "accept_remedy", AcceptInput, data, update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--reason", required=True)
@actor_options
@click.pass_context
def decline(ctx, key, reason, by_name, role, channel, update_id) -> None:
    """The customer declines the proposal: back to listening (step decline_remedy)."""
    take_step(ctx, key, "decline_remedy", DeclineInput, step_data(by_name, role, channel, reason=reason), update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.argument("item_id")
@click.option("--note", default=None, help="E.g. the tracking number.")
@actor_options
@click.pass_context
def confirm(ctx, key, item_id, note, by_name, role, channel, update_id) -> None:
    """Confirm that ITEM_ID of the agreed remedy (e.g. remedy-1/item-2) was delivered."""
    data = step_data(by_name, role, channel, item_id=item_id, note=note)
    take_step(ctx, key, "confirm_fulfilment", FulfilmentConfirmation, data, update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--reason", required=True)
@actor_options
@click.pass_context
def renegotiate(ctx, key, reason, by_name, role, channel, update_id) -> None:
    """The agreed remedy cannot be delivered: go back and agree another."""
    take_step(ctx, key, "renegotiate", RenegotiateInput, step_data(by_name, role, channel, reason=reason), update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--summary", default=None, help="Internal note on the outcome.")
@actor_options
@click.pass_context
def close(ctx, key, summary, by_name, role, channel, update_id) -> None:
    """Close the incident: tell the customer what was done, apologise once more."""
    take_step(ctx, key, "close", CloseInput, step_data(by_name, role, channel, summary=summary), update_id)


CONDITIONS = [c.value for c in SystemCondition]


def parse_factor(text: str) -> dict:
    """``"capacity:peak season doubled the parcels"`` is a contributing factor of kind capacity."""
    kind, sep, condition = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in CONDITIONS:
        raise click.BadParameter(
            f"{text!r} is not KIND:condition with KIND one of {', '.join(CONDITIONS)}", param_hint="--factor"
        )
    return {"kind": kind, "condition": condition.strip()}


def parse_owner(text: str) -> dict:
    """``"Ann Lee <ann@example.com>"``, or a bare address (then the address is the name too)."""
    name, address = parseaddr(text)
    address = address or text.strip()
    return {"name": name.strip() or address, "email": address}


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--what", required=True, help="What happened, internally and in plain words.")
@click.option("--category", type=click.Choice(CONDITIONS), required=True,
              help="Where the root cause lies: a condition of the system.")
@click.option("--root-cause", required=True, help="A condition of the system, not a person.")
@click.option("--factor", "factors", multiple=True, metavar="KIND:TEXT",
              help="A contributing factor, e.g. 'capacity:peak season doubled the parcels'. Repeatable.")
@click.option("--action", "actions", multiple=True, required=True, metavar="TEXT",
              help="A preventive action. Repeatable; each takes the --owner and --due in the same position.")
@click.option("--owner", "owners", multiple=True, metavar="'NAME <EMAIL>'",
              help="Owner of the preventive action in the same position ('Ann Lee <ann@example.com>' or an "
                   "email). Repeatable.")
@click.option("--due", "dues", multiple=True, metavar="YYYY-MM-DD",
              help="Due date of the preventive action in the same position (today or later). Repeatable.")
@actor_options
@click.pass_context
def postmortem(ctx, key, what, category, root_cause, factors, actions, owners, dues, by_name, role, channel,
               update_id) -> None:
    """Record the blameless post-mortem (step record_postmortem): what happened, the root cause and its
    category, contributing factors as conditions of the system, and preventive actions, each with an
    owner and a due date.

    \b
    amends incident postmortem order-1001-late --what "the parcel left with another order's label" \\
      --category process --root-cause "labels are printed by hand, away from the order system" \\
      --factor "capacity:peak season doubled the parcels per packer" \\
      --action "print labels from the order system" --owner "Ann Lee <ann@example.com>" --due 2026-12-15 \\
      --action "scan each label at packing" --owner ops@example.com --due 2027-01-31
    """
    if not len(actions) == len(owners) == len(dues):
        raise click.UsageError(
            f"--action, --owner and --due go together, in order: got {len(actions)} --action, "
            f"{len(owners)} --owner and {len(dues)} --due; give each --action its --owner and --due"
        )
    data = step_data(
        by_name, role, channel, what_happened=what, root_cause_category=category, root_cause=root_cause,
        contributing_factors=[parse_factor(f) for f in factors],
        preventive_actions=[{"action": a, "owner": parse_owner(o), "due": d} for a, o, d in zip(actions, owners, dues)],
    )
    take_step(ctx, key, "record_postmortem", PostmortemInput, data, update_id)


@incident.command("complete-action", context_settings=CONTEXT)
@click.argument("key")
@click.argument("action_id")
@click.option("--note", default=None, help="What was done, e.g. the change's reference.")
@actor_options
@click.pass_context
def complete_action(ctx, key, action_id, note, by_name, role, channel, update_id) -> None:
    """Mark preventive action ACTION_ID (e.g. action-1, see `show`) of the post-mortem done; its
    reminders stop (step complete_action)."""
    data = step_data(by_name, role, channel, action_id=action_id, note=note)
    take_step(ctx, key, "complete_action", CompleteActionInput, data, update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--reason", required=True)
@actor_options
@click.pass_context
def flag(ctx, key, reason, by_name, role, channel, update_id) -> None:
    """Red-flag the customer's account, internally (step flag_account)."""
    take_step(ctx, key, "flag_account", FlagInput, step_data(by_name, role, channel, reason=reason), update_id)


@incident.command(context_settings=CONTEXT)
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="The whole snapshot as JSON (schema/snapshot.schema.json).")
@click.pass_context
def show(ctx, key, as_json) -> None:
    """Show an incident: stage, deadline, remedy, money, flags, next steps and the timeline."""
    conn: Connection = ctx.obj
    snap: Snapshot = conn.run(key, lambda amends: amends.snapshot(key))
    click.echo(snap.model_dump_json(indent=2) if as_json else render(snap))


def render(s: Snapshot, now: datetime | None = None) -> str:
    r = s.report
    cur = r.order.amount_paid.currency
    rows: list[tuple[str, str]] = [
        ("Stage", str(s.stage)),
        ("Phase", s.phase + (" (after continue-as-new: the timeline keeps the milestones)"
                             if s.phase == "anniversary" else "")),
        ("Severity", f"{r.severity} · {r.category.replace('_', ' ')}"),
        ("Customer", f"{r.customer.name} <{r.customer.email}> ({r.customer.customer_id})"
                     + ("  RED-FLAGGED" if s.red_flagged else "")),
        ("Order", f"{r.order.order_id}, {format_money(r.order.amount_paid.amount, cur)} paid"
                  + (f" ({r.order.payment_reference})" if r.order.payment_reference else "")),
        ("What happened", r.what_happened),
        ("Impact", r.impact),
    ]
    if r.owner:
        rows.append(("Owner", f"{r.owner.name} <{r.owner.email}>"))
    rows.append(("Deadline", deadline_text(s, now) if s.deadline else "none"))
    rows.append(("Escalation", f"level {s.escalation_level}"))
    paused_since = s.clock.paused_since if s.clock else None
    if s.paused_total or paused_since:
        paused = f"{human_duration(s.paused_total.total_seconds())} waiting on the customer"
        if paused_since:
            paused += f"; paused now, since {utc(paused_since)} UTC"
        rows.append(("Paused", paused))
    for n, need in enumerate(s.needs):
        rows.append(("Needs" if n == 0 else "", need))
    rows.append(("Refunded", f"{format_money(s.refunded_total, cur)} of "
                             f"{format_money(r.order.amount_paid.amount, cur)} paid; "
                             f"{format_money(s.refundable_left, cur)} refundable left"))
    rows.append(("Flags", "; ".join(s.flags) if s.flags else ("red-flagged" if s.red_flagged else "none")))
    if s.closed_at:
        rows.append(("Closed", f"{utc(s.closed_at)} UTC"))
    if s.anniversary_due_at and s.stage != "anniversary":
        rows.append(("Anniversary", f"{utc(s.anniversary_due_at)[:10]}"))
    rows.append(("Next steps", ", ".join(s.allowed_steps) or "none (the clock takes the next step)"))
    width = max(len(label) for label, _ in rows)
    out = [f"{s.workflow_id}"]
    out += [f"  {label:<{width}}  {value}" for label, value in rows]

    if s.remedies:
        out.append("")
        out.append("Remedies")
        for rem in s.remedies:
            who = f"proposed by {rem.proposed_by.name} ({rem.proposed_by.role})"
            if rem.needs_approval_from and not rem.approved_by:
                who += f", awaiting approval by a {rem.needs_approval_from}"
            if rem.approved_by:
                who += f", approved by {rem.approved_by.name} ({rem.approved_by.role})"
            if rem.accepted_by:
                who += f", accepted by {rem.accepted_by.name} ({rem.accepted_by.role})"
            out.append(f"  #{rem.number} {rem.status}: {who}" + (f" — {rem.note}" if rem.note else ""))
            iw = max(len(i.item_id) for i in rem.items)
            for i in rem.items:
                if i.item.kind == "refund":
                    what = f"refund {format_money(i.item.amount.amount, i.item.amount.currency)}"
                else:
                    what = f"{i.item.kind.replace('_', ' ')}: {i.item.description}"
                extra = "".join(f" ({x})" for x in (i.reference, i.failure) if x)
                out.append(f"    {i.item_id:<{iw}}  {i.status:<21}  {what}{extra}")
    if s.money_moved:
        out.append("")
        out.append("Money moved")
        for m in s.money_moved:
            out.append(f"  {utc(m.at)}  {m.kind} {format_money(m.amount.amount, m.amount.currency)}  "
                       f"{m.item_id}  {m.reference}")

    if s.postmortem:
        pm = s.postmortem
        out += ["", "Post-mortem (blameless)"]
        pm_rows = [("What happened", pm.what_happened), ("Root cause", f"{pm.root_cause_category}: {pm.root_cause}")]
        pm_rows += [("Factor", f"{f.kind}: {f.condition}") for f in pm.contributing_factors]
        out += [f"  {label:<13}  {value}" for label, value in pm_rows]
    if s.actions:
        from worker.reporting import contact_text

        out += ["", "Preventive actions"]
        cells = [(a.action_id, contact_text(a.owner), f"due {a.due.isoformat()}",
                  a.status + (f" {utc(a.completed_at)[:16]}" if a.completed_at else "")
                  + (f" ({a.reminders} reminders)" if a.reminders and a.status == "open" else ""), a.action)
                 for a in s.actions]
        widths = [max(len(row[c]) for row in cells) for c in range(4)]
        out += ["  " + "  ".join(f"{row[c]:<{widths[c]}}" for c in range(4)) + f"  {row[4]}" for row in cells]

    out.append("")
    out.append("Timeline (UTC)")
    entries = [(utc(e.at), e.step, f"{e.by.name} ({e.by.role})", e.channel or "-", e.detail) for e in s.timeline]
    if entries:
        widths = [max(len(row[c]) for row in entries) for c in range(4)]
        for row in entries:
            cols = "  ".join(f"{row[c]:<{widths[c]}}" for c in range(4))
            out.append(f"  {cols}  {row[4]}".rstrip())
    return "\n".join(out)


# ================================================================ reading back: post-mortems and the report


@cli.group("postmortem", context_settings=CONTEXT, short_help="Read post-mortems back (Markdown export).")
@connection_options
@click.pass_context
def postmortem_group(ctx: click.Context, address: str | None, namespace: str | None, task_queue: str,
                     timeout: float) -> None:
    """Read an incident's blameless post-mortem back (record it with `amends incident postmortem`)."""
    ctx.obj = Connection(address, namespace, task_queue, timeout)


@postmortem_group.command("export", context_settings=CONTEXT)
@click.argument("key")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write the Markdown to FILE instead of stdout.")
@click.pass_context
def postmortem_export(ctx: click.Context, key: str, out_file: Path | None) -> None:
    """Write the post-mortem of incident KEY as Markdown: dates, severity and category, what happened,
    the root cause, contributing factors, preventive actions and their status, the remedy, money
    refunded and the milestones. Exits 1 when the incident has no post-mortem yet."""
    from worker.reporting import NoPostmortem, postmortem_markdown

    conn: Connection = ctx.obj
    snap: Snapshot = conn.run(key, lambda amends: amends.snapshot(key))
    try:
        text = postmortem_markdown(snap)
    except NoPostmortem as err:
        fail(f"refused: {err}", EXIT_REFUSED)
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.write_text(text)
        click.echo(str(out_file))


def parse_since(text: str) -> datetime:
    """``2026-11-01`` (midnight UTC) or an ISO 8601 time; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time", param_hint="--since")
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


REPORT_QUERY = 'WorkflowType="IncidentRecovery"'
QUERY_CONCURRENCY = 8


async def incident_snapshots(client, since: datetime | None, per_query_timeout: float,
                             warn: Callable[[str], None]) -> list[Snapshot]:
    """The snapshot of every incident visibility lists (started after ``since``), from its latest run.

    An incident that continued as new has two runs; it is counted once, and
    with ``since`` only when its first run is among those listed (it opened
    after ``since``). One that cannot be queried is skipped with a warning.
    """
    from temporalio.client import WorkflowExecutionStatus

    from workflows.incident import IncidentRecovery

    query = REPORT_QUERY
    if since is not None:
        query += f' AND StartTime > "{since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}"'
    runs: dict[str, list] = {}
    async for wf in client.list_workflows(query):
        runs.setdefault(wf.id, []).append(wf)
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def one(wid: str) -> Snapshot | None:
        async with gate:
            try:
                handle = client.get_workflow_handle(wid, result_type=Snapshot)  # no run id: the latest run
                return await asyncio.wait_for(handle.query(IncidentRecovery.snapshot), per_query_timeout)
            except asyncio.TimeoutError:
                warn(f"warning: skipped {wid}: no answer to the snapshot query within {per_query_timeout:.0f}s")
            except Exception as err:  # a failed, terminated or foreign workflow: report the rest
                warn(f"warning: skipped {wid}: {getattr(err, 'message', None) or err}")
            return None

    snaps = [s for s in await asyncio.gather(*(one(wid) for wid in runs)) if s is not None]
    if since is not None:
        continued = {wid for wid, listed in runs.items()
                     if any(w.status == WorkflowExecutionStatus.CONTINUED_AS_NEW for w in listed)}
        snaps = [s for s in snaps if s.phase == "recovery" or s.workflow_id in continued]
    return snaps


@cli.command(context_settings=CONTEXT, short_help="Summarise incidents: categories, root causes, stages, SLAs.")
@click.option("--since", default=None, metavar="DATE",
              help="Only incidents opened after DATE (YYYY-MM-DD, or an ISO 8601 time; UTC unless it says).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with one row per incident) instead of a table.")
@connection_options
def report(since: str | None, as_json: bool, address: str | None, namespace: str | None, task_queue: str,
           timeout: float) -> None:
    """Summarise incidents from Temporal's visibility store and each one's snapshot: counts by category,
    by root-cause category (from the post-mortem; "none yet" without one) and by stage, the median
    time from detection to apology (of those apologised for), and the deadlines breached (stages
    whose deadline was missed, summed). Incidents that cannot be queried are skipped with a warning
    on stderr."""
    from worker.reporting import report_text, summarise

    since_at = parse_since(since) if since else None
    conn = Connection(address, namespace, task_queue, timeout)
    warnings: list[str] = []

    async def work(amends: AmendsClient) -> list[Snapshot]:
        # Each query gets a third of the whole: a few that cannot answer still leave time for the rest.
        return await incident_snapshots(amends.client, since_at, min(10.0, timeout / 3), warnings.append)

    snaps = conn.run(None, work)
    for line in warnings:
        click.echo(line, err=True)
    summary = {"since": since_at.isoformat() if since_at else None, **summarise(snaps),
               "skipped": len(warnings)}
    click.echo(json.dumps(summary, indent=2) if as_json else report_text(summary))


# ================================================================ diagram and schema


@cli.command(context_settings=CONTEXT, short_help="Print the state diagram (Mermaid).")
def diagram() -> None:
    """Print the playbook's state diagram (Mermaid), rendered from the transition table."""
    from workflows.stages import mermaid_diagram

    click.echo(mermaid_diagram(), nl=False)


@cli.command(context_settings=CONTEXT, short_help="Write the JSON Schema of every input and the snapshot.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("schema"),
              show_default=True)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the files in --out are not up to date.")
def schema(out_dir: Path, check: bool) -> None:
    """Write the JSON Schema of every input (and of the snapshot), one file per update or query."""
    from workflows.schema import schema_files

    files = schema_files()
    if check:
        stale = [n for n, text in files.items() if not (out_dir / n).is_file() or (out_dir / n).read_text() != text]
        if stale:
            fail(f"out of date in {out_dir}: {', '.join(stale)}; run `amends schema --out {out_dir}`", 1)
        click.echo(f"{out_dir}: {len(files)} schema files up to date")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text)
        click.echo(str(out_dir / name))


def main(argv: list[str] | None = None) -> None:
    """The ``amends`` entry point."""
    try:
        cli.main(args=argv, prog_name="amends")
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    except Exception:
        traceback.print_exc()
        code = 1
    # Leave without interpreter finalization: the Temporal SDK's native
    # runtime can abort the process while its threads are torn down
    # ("PyGILState_Release", temporalio/sdk-python#300), turning a finished
    # command into exit 134. Everything this process started has been
    # stopped and waited for by now; only buffers remain to flush.
    if isinstance(code, str):
        click.echo(code, err=True)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    logging.shutdown()
    os._exit(code or 0)


if __name__ == "__main__":
    main()

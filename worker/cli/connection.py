"""Talking to Temporal from a command, and turning every answer into a message and an exit code.

Exit codes, so that scripts and agents can tell an answer from a fault:
0 done; 1 the engine said no (a guard refused the step, the incident is
closed, or there is no such incident); 2 the input is invalid (nothing was
sent); 3 Temporal could not be reached or did not answer in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import click
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from worker.cli.fields import explain
from workflows.client import (
    DEFAULT_TASK_QUEUE,
    AmendsClient,
    IncidentClosed,
    StepRefused,
    workflow_id,
)
from workflows.signing import CredentialUnavailable, Signer

EXIT_REFUSED, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 2, 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Unavailable(Exception):
    """Temporal could not be reached, or did not answer in time."""


class Failure(click.ClickException):
    """Print ``message`` as it is (no "Error:" prefix) and exit with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it on the class; each failure has its own

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def fail(message: str, code: int) -> NoReturn:
    raise Failure(message, code)


def build(model: type[BaseModel], data: dict, options: Mapping[str, list[str]] | None = None) -> Any:
    """The input, or exit 2 naming each broken field (and, given ``options``, the option that fills it)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        fail(explain(err, options or {}), EXIT_INVALID)


class Connection:
    def __init__(self, address: str | None, namespace: str | None, task_queue: str, timeout: float,
                 profile: str | None = None, config_file: str | None = None) -> None:
        from worker.config import Temporal

        self.address, self.namespace, self.task_queue, self.timeout = address, namespace, task_queue, timeout
        self.temporal = Temporal(address, namespace, profile, config_file)

    def where(self) -> str:
        """The address this command connects to: the command line's, else the profile's or TEMPORAL_ADDRESS."""
        return self.temporal.where()

    async def client(self, signer: Signer | None = None) -> AmendsClient:
        from worker.config import ConfigError, connect

        t = self.temporal
        try:
            client = await asyncio.wait_for(connect(t.address, t.namespace, profile=t.profile,
                                                    config_file=t.config_file), self.timeout)
        except ConfigError as err:
            raise Failure(f"invalid: {err}", EXIT_INVALID) from None
        except (TimeoutError, RuntimeError) as err:
            raise Unavailable(f"cannot connect to Temporal at {self.where()}: {err or 'timed out'}") from None
        return AmendsClient(client, self.task_queue, signer=signer)

    def run(self, key: str | None, work: Callable[[AmendsClient], Awaitable[Any]],
            signer: Signer | None = None) -> Any:
        """Connect, do ``work`` (its steps signed by ``signer``), and turn the answers into messages and exit codes."""

        async def go() -> tuple[Any, click.ClickException | None]:
            # Every outcome is returned, not raised: an exception leaving
            # asyncio.run would keep the client alive in its traceback until
            # interpreter shutdown, where the SDK's native runtime aborts.
            try:
                amends = await self.client(signer)
                return await asyncio.wait_for(work(amends), self.timeout), None
            except TimeoutError:
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
        from workflows.codec import CodecError

        if isinstance(err, CodecError):  # no key, or a payload sealed with a key this process lacks
            return Failure(f"keys: {err}", EXIT_INVALID)
        if isinstance(err, (StepRefused, IncidentClosed)):
            return Failure(f"refused: {err}", EXIT_REFUSED)
        if isinstance(err, ValidationError):
            return Failure(explain(err, {}), EXIT_INVALID)
        if isinstance(err, CredentialUnavailable):
            if "cannot be reached" in str(err):
                return Failure(f"unavailable: {err} (is `amends dev` running? AMENDS_ISSUER_URL names the issuer)",
                               EXIT_UNAVAILABLE)
            return Failure(f"refused: {err}; a session token expires: get a fresh one and set AMENDS_TOKEN",
                           EXIT_REFUSED)
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


def connection_options(f):
    f = click.option("--timeout", type=float, default=30.0, show_default=True,
                     help="Seconds to wait for Temporal and the worker to answer.")(f)
    f = click.option("--task-queue", envvar="AMENDS_TASK_QUEUE", default=DEFAULT_TASK_QUEUE, show_default=True,
                     help="Task queue of the amends worker [env AMENDS_TASK_QUEUE].")(f)
    return temporal_options(f)


def temporal_options(f):
    """Where Temporal is, as the ``temporal`` CLI takes it: a profile of a config file, the environment, or flags."""
    f = click.option("--config-file", default=None, metavar="PATH",
                     help="Temporal client config file (TOML) [env TEMPORAL_CONFIG_FILE, default: the user's "
                          "temporal.toml].")(f)
    f = click.option("--profile", default=None,
                     help="Profile of the config file [env TEMPORAL_PROFILE, default: default].")(f)
    f = click.option("--namespace", default=None,
                     help="Temporal namespace [env TEMPORAL_NAMESPACE, else the profile's, else default].")(f)
    f = click.option("--address", default=None,
                     help="Temporal frontend host:port [env TEMPORAL_ADDRESS, else the profile's, else "
                          "localhost:7233].")(f)
    return f


def connected_group(name: str, help: str, short_help: str) -> click.Group:
    """A group whose commands share one Connection (``ctx.obj``), made from the connection options."""

    @click.group(name, context_settings=CONTEXT, help=help, short_help=short_help)
    @connection_options
    @click.pass_context
    def group(ctx: click.Context, address: str | None, namespace: str | None, profile: str | None,
              config_file: str | None, task_queue: str, timeout: float) -> None:
        ctx.obj = Connection(address, namespace, task_queue, timeout, profile, config_file)

    return group

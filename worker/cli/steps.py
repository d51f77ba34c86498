"""The ``amends incident`` step commands, generated from the step registry (``workflows/steps.py``).

A step's command takes the incident KEY, the fields its ``Cli`` names as
arguments, an option for each other field of its input (``--field-name``
unless the ``Cli`` spells it), and the options every step shares
(``--channel``, ``--update-id``). Who takes the step is not an option: the
session token in ``AMENDS_TOKEN`` says it, and each step is sent with a
credential the issuer binds to it (``worker.cli.credentials``). Steps
marked ``custom`` build their input from options of their own
(``worker.cli.custom_steps``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from worker.cli.connection import CONTEXT, Connection, build
from worker.cli.credentials import step_signer
from worker.cli.fields import FieldArgument, FieldOption, option_for, to_minor
from worker.cli.render import print_step_result
from workflows.client import AmendsClient
from workflows.snapshot import StepResult
from workflows.steps import REGISTRY, Cli, StepSpec

# Fields of every step input that no option of their own fills: the credential
# (signed per step), who acts (from the credential) and the channel (below).
ACTOR_FIELDS = ("credential", "by", "channel")


def _not_yours_to_say(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        raise click.BadParameter(
            "who takes a step comes from the session token in AMENDS_TOKEN, not from an option: "
            'export AMENDS_TOKEN=$(amends token --name "Your Name" --role agent)', ctx=ctx, param=param)


# --by and --role are gone (the token says who acts); hidden, they say so to whoever still types them.
GONE = {"hidden": True, "expose_value": False, "default": None, "callback": _not_yours_to_say}

ACTOR_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--by",), GONE),
    (("--role",), GONE),
    (("--channel",), {"fills": "channel", "default": None,
                      "help": "How it happened: email, phone, chat, backend, ..."}),
    (("--update-id",), {"default": None,
                        "help": "Idempotency key: a retried command with the same id is applied once."}),
)


def actor_options(f):
    for decls, attrs in reversed(ACTOR_OPTIONS):
        f = click.option(*decls, cls=FieldOption, **attrs)(f)
    return f


def step_data(channel: str | None, **fields: Any) -> dict:
    data: dict[str, Any] = {}
    if channel is not None:
        data["channel"] = channel
    data.update({k: v for k, v in fields.items() if v is not None})
    return data


def take_step(ctx: click.Context, key: str, name: str, model: type[BaseModel], data: dict,
              update_id: str | None, amounts: tuple[str, ...] = ()) -> None:
    named = option_for(ctx.command)
    conn: Connection = ctx.obj
    given = [a for a in amounts if data.get(a) is not None]

    async def work(amends: AmendsClient) -> StepResult:
        if given:  # decimals in the order's currency: its exponent says how many minor units
            currency = (await amends.snapshot(key)).report.order.amount_paid.currency
            for field in given:
                data[field] = to_minor(data[field], currency, named.get(field, [f"--{field}"])[0])
        return await amends.step(key, name, build(model, data, named), update_id)

    if not given:
        build(model, data, named)  # refuse bad input before reaching for Temporal
    print_step_result(conn.run(key, work, signer=step_signer()))


# ================================================================ generated from the registry


def _scalar(annotation: Any) -> Any:
    """``str | None`` is ``str``: an option left out is the field's default; constraints are the model's."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _scalar(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return _scalar(rest[0])
    return annotation


def field_param(spec: StepSpec[Any], name: str, info: FieldInfo) -> click.Parameter:
    cli: Cli = spec.cli  # type: ignore[assignment]
    if name in cli.arguments:
        return FieldArgument([name], fills=name, required=info.is_required())
    kind = _scalar(info.annotation)
    attrs: dict[str, Any] = {"fills": name, "required": info.is_required(), "help": info.description}
    if kind is bool:
        attrs.update(is_flag=True, default=False)
    elif isinstance(kind, type) and issubclass(kind, Enum):
        attrs.update(type=click.Choice([str(m.value) for m in kind]))
    elif name in cli.amounts:
        attrs.update(type=str, metavar="AMOUNT")
        attrs["help"] = f"{info.description} Give it as a decimal in the order's currency, e.g. 600.00."
    elif kind in (str, int):
        attrs.update(type=kind)
    else:
        raise TypeError(f"step {spec.name}: field {name} ({info.annotation}) has no option of one value; "
                        f"give the step a command of its own (Cli(custom=True))")
    if not info.is_required() and kind is not bool:
        attrs["default"] = None  # left out: the model's own default applies
    return FieldOption([cli.options.get(name, "--" + name.replace("_", "-")), name], **attrs)


def step_command(spec: StepSpec[Any]) -> click.Command:
    assert spec.cli is not None and not spec.cli.custom
    fields = {n: f for n, f in spec.input.model_fields.items() if n not in ACTOR_FIELDS}
    unknown = set(spec.cli.arguments) - set(fields)
    if unknown:
        raise TypeError(f"step {spec.name}: Cli arguments {sorted(unknown)} are not fields of {spec.input.__name__}")
    ordered = [*spec.cli.arguments, *(n for n in fields if n not in spec.cli.arguments)]
    params: list[click.Parameter] = [click.Argument(["key"])]
    params += [field_param(spec, n, fields[n]) for n in ordered]
    params += [FieldOption(list(decls), **attrs) for decls, attrs in ACTOR_OPTIONS]

    @click.pass_context
    def take(ctx: click.Context, key: str, channel: str | None, update_id: str | None, **values: Any) -> None:
        take_step(ctx, key, spec.name, spec.input, step_data(channel, **values), update_id,
                  spec.cli.amounts if spec.cli else ())

    return click.Command(spec.cli.command, params=params, callback=take, help=_help(spec, fields),
                         context_settings=CONTEXT)


def _help(spec: StepSpec[Any], fields: Mapping[str, FieldInfo]) -> str:
    """The step's description; then its arguments, which click lists nowhere else; then its update's name."""
    assert spec.cli is not None
    paragraphs = [spec.description]
    paragraphs += [f"{n.upper()}: {fields[n].description}" for n in spec.cli.arguments if fields[n].description]
    paragraphs.append(f"(update {spec.name})")
    return "\n\n".join(paragraphs)


def step_commands(steps: Mapping[str, StepSpec[Any]] = REGISTRY) -> list[click.Command]:
    """A command for each step the CLI offers and does not build by hand."""
    return [step_command(spec) for spec in steps.values() if spec.cli is not None and not spec.cli.custom]

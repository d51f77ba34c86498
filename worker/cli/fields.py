"""Which option fills which field of the input, so that a validation error can name the option.

Every option or argument that feeds a model field says so where it is
declared (``fills``); ``option_for`` reads those declarations back from a
command, so there is no second list to keep in step with the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import click
from pydantic import ValidationError

from workflows.money import exponent


def _paths(fills: str | tuple[str, ...]) -> tuple[str, ...]:
    return (fills,) if isinstance(fills, str) else tuple(fills)


class FieldOption(click.Option):
    """An option that fills the field(s) ``fills``, dotted paths into the input, e.g. ``customer.email``."""

    def __init__(self, *args: Any, fills: str | tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fills = _paths(fills)


class FieldArgument(click.Argument):
    """A positional argument that fills the field(s) ``fills``."""

    def __init__(self, *args: Any, fills: str | tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fills = _paths(fills)


def field_option(*decls: str, fills: str | tuple[str, ...], **attrs: Any):
    return click.option(*decls, cls=FieldOption, fills=fills, **attrs)


def spelling(param: click.Parameter) -> str:
    """How a person types it: ``--email`` for an option, ``ITEM_ID`` for an argument."""
    if isinstance(param, click.Option):
        return next((o for o in param.opts if o.startswith("--")), param.opts[0])
    return param.human_readable_name


def option_for(command: click.Command | None) -> dict[str, list[str]]:
    """Field path -> the options that fill it, in the order the command declares them."""
    found: dict[str, list[str]] = {}
    for param in command.params if command is not None else ():
        for path in getattr(param, "fills", ()):
            found.setdefault(path, []).append(spelling(param))
    return found


def explain(err: ValidationError, options: Mapping[str, list[str]]) -> str:
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(input)"
        # List positions do not change the option: preventive_actions.0.due is --due.
        plain = ".".join(str(p) for p in e["loc"] if not isinstance(p, int))
        named = [k for k in options if plain == k or plain.startswith(k + ".")]
        hint = f" ({'/'.join(options[max(named, key=len)])})" if named else ""
        lines.append(f"invalid: {field}{hint}: {e['msg']} [{e['type']}]")
    return "\n".join(lines)


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

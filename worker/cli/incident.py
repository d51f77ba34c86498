"""``amends incident``: open an incident, take each step the registry offers, show it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from worker.cli.connection import connected_group
from worker.cli.custom_steps import CUSTOM_COMMANDS
from worker.cli.opening import open_
from worker.cli.render import show
from worker.cli.steps import step_commands
from workflows.steps import REGISTRY, StepSpec

HELP = """Open an incident and take its steps, by its key (the workflow id is incident-KEY).

Every step takes --by NAME (default $USER), --role and --channel. A step the playbook does not
allow now prints `refused: <why>` and exits 1; invalid input prints `invalid: <field>: <rule>`
and exits 2; an unreachable Temporal or worker exits 3.
"""


def incident_group(steps: Mapping[str, StepSpec[Any]] = REGISTRY) -> click.Group:
    """The group with a command for every step of ``steps`` the CLI offers, plus open and show."""
    group = connected_group("incident", help=HELP, short_help="Open an incident, take its steps, show it.")
    group.add_command(open_)
    group.add_command(show)
    for spec in steps.values():
        if spec.cli is not None and spec.cli.custom:
            if spec.cli.command not in CUSTOM_COMMANDS:
                raise LookupError(f"step {spec.name} is custom but no command {spec.cli.command!r} builds its input")
            group.add_command(CUSTOM_COMMANDS[spec.cli.command])
    for command in step_commands(steps):
        group.add_command(command)
    return group

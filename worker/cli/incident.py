"""``amends incident``: open an incident, take each step the registry offers, show it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from worker.cli.connection import connected_group
from worker.cli.custom_steps import CUSTOM_COMMANDS
from worker.cli.opening import open_
from worker.cli.render import export, show
from worker.cli.steps import step_commands
from workflows.steps import REGISTRY, StepSpec

HELP = """Open an incident and take its steps, by its key (the workflow id is incident-KEY).

Who takes a step is whoever the session token in AMENDS_TOKEN names; each step is sent with a
credential bound to it, from the issuer at AMENDS_ISSUER_URL (default: the one `amends dev`
runs). With `amends dev` running:

\b
  export AMENDS_TOKEN=$(amends token --name "Priya Shah" --role agent)

Every step takes --channel and --update-id. A step the playbook does not allow now prints
`refused: <why>` and exits 1; invalid input (or no AMENDS_TOKEN) prints `invalid: ...` and
exits 2; an unreachable Temporal, worker or issuer exits 3.
"""


def incident_group(steps: Mapping[str, StepSpec[Any]] = REGISTRY) -> click.Group:
    """The group with a command for every step of ``steps`` the CLI offers, plus open and show."""
    group = connected_group("incident", help=HELP, short_help="Open an incident, take its steps, show it.")
    group.add_command(open_)
    group.add_command(show)
    group.add_command(export)
    for spec in steps.values():
        if spec.cli is not None and spec.cli.custom:
            if spec.cli.command not in CUSTOM_COMMANDS:
                raise LookupError(f"step {spec.name} is custom but no command {spec.cli.command!r} builds its input")
            group.add_command(CUSTOM_COMMANDS[spec.cli.command])
    for command in step_commands(steps):
        group.add_command(command)
    return group

"""The ``amends`` command line: the embedded runtime, the worker, and every step of an incident.

Exit codes (``worker.cli.connection``): 0 done; 1 the engine said no; 2 the
input is invalid (nothing was sent); 3 Temporal could not be reached or did
not answer in time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback

import click

from worker.cli.codec import codec_key, codec_server
from worker.cli.connection import CONTEXT
from worker.cli.incident import incident_group
from worker.cli.reports import incidents, postmortem_group, report
from worker.cli.runtime import dev, setup, worker
from worker.cli.schema import diagram, schema
from worker.cli.token import token


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="amends", prog_name="amends")
def cli() -> None:
    """amends: service recovery as durable Temporal workflows.

    Start with `amends dev` (everything on this machine, Web UI on http://localhost:8233), then
    `amends token --help` (who you are) and `amends incident open --help`.
    """


for command in (dev, worker, setup, token, incident_group(), incidents, postmortem_group, report, diagram, schema,
                codec_server, codec_key):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """The ``amends`` entry point."""
    try:
        cli.main(args=argv, prog_name="amends")
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    except Exception:  # noqa: BLE001  (whatever escaped: its traceback, then exit 1 as below)
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
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream
            stream.flush()
    logging.shutdown()
    os._exit(code or 0)

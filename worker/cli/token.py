"""``amends token``: a session token, or one step's bound credential, signed with a local key ring.

A session token (``AMENDS_TOKEN``) says who someone is; the step commands
trade it at the issuer for a credential per step. The ``temporal`` CLI has
no issuer to talk to, so ``--incident``, ``--step`` and ``--input`` print
the credential itself: bound to that incident, that step and exactly the
JSON fields given, to send as the input's ``credential``.

It signs with the private keys of a key ring on this machine: the one
``amends dev`` keeps in its data directory, or any ring named by
``--keys`` (the tests point it at their own issuer's).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from pydantic import ValidationError

from worker.cli.connection import CONTEXT, EXIT_INVALID, fail
from worker.cli.fields import explain
from worker.issuer import DEV_ISSUER, DevIssuer, Issuer, KeyRing
from workflows.client import workflow_id
from workflows.credentials import checksum
from workflows.inputs import Actor, Role
from workflows.steps import REGISTRY

ROLES = click.Choice([r.value for r in Role if r is not Role.SYSTEM])


def _ring(data_dir: Path, keys: Path | None) -> KeyRing:
    ring = KeyRing(keys) if keys is not None else DevIssuer(data_dir).ring
    if not ring.private.is_file():
        if keys is not None:
            fail(f"invalid: --keys: no key ring in {keys} (no {ring.private.name}); point --keys at the directory "
                 f"of an issuer's signing-keys.json", EXIT_INVALID)
        fail(f"invalid: no signing keys in {ring.directory} (--data {data_dir}): run `amends dev` first (it makes "
             f"them in its data directory), or give the data directory it uses with --data or AMENDS_DATA",
             EXIT_INVALID)
    return ring


def _bound_checksum(step: str, text: str) -> str:
    spec = REGISTRY.get(step)
    if spec is None:
        fail(f"invalid: --step: no step {step!r}; steps: {', '.join(REGISTRY)}", EXIT_INVALID)
    if text == "-":
        text = sys.stdin.read()
    try:
        given = spec.input.model_validate_json(text)
    except ValidationError as err:
        fail(explain(err, {}).replace("invalid: ", "invalid: --input: ", 1), EXIT_INVALID)
    if given.by is not None:
        fail("invalid: --input: by: who acts comes from the credential (--name, --role); leave by out of the input",
             EXIT_INVALID)
    # Exactly the fields given: what the workflow reads from the same JSON.
    return checksum(given)


@click.command(context_settings=CONTEXT, short_help="Print a session token, or one step's credential.")
@click.option("--name", required=True, help="Who acts: the name the timeline records.")
@click.option("--role", type=ROLES, required=True, help="Their role; it sets what they may approve.")
@click.option("--incident", "incident_key", metavar="KEY", default=None,
              help="With --step and --input: a credential for this incident (workflow incident-KEY).")
@click.option("--step", default=None, help="The step (update name) the credential is for, e.g. apologise.")
@click.option("--input", "input_json", metavar="JSON", default=None,
              help="The step's input JSON as it will be sent, without credential; '-' reads stdin.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), envvar=DevIssuer.DATA_ENV,
              default=DevIssuer.DEFAULT_DATA, show_default=True,
              help="The data directory of `amends dev`, whose key ring signs [env AMENDS_DATA].")
@click.option("--keys", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sign with the key ring in this directory instead (signing-keys.json).")
@click.option("--issuer", default=DEV_ISSUER, show_default=True, help="The iss claim: the issuer's name.")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True, max=24), default=8, show_default=True,
              help="How long a session token lives.")
@click.option("--minutes", type=click.IntRange(1, 15), default=5, show_default=True,
              help="How long a step's credential lives.")
def token(name: str, role: str, incident_key: str | None, step: str | None, input_json: str | None,
          data_dir: Path, keys: Path | None, issuer: str, hours: float, minutes: int) -> None:
    """Print a session token for NAME acting as ROLE, signed by the local issuer of `amends dev`:

    \b
      export AMENDS_TOKEN=$(amends token --name "Priya Shah" --role agent)

    The step commands (`amends incident apologise ...`) trade it for a credential per step.

    With --incident, --step and --input, print instead a credential bound to that incident, that
    step and exactly the JSON fields given, for the `temporal` CLI:

    \b
      INPUT='{"channel": "phone"}'
      CRED=$(amends token --name "Priya Shah" --role agent --incident order-1001-late \\
                          --step apologise --input "$INPUT")
      temporal workflow update execute --workflow-id incident-order-1001-late --name apologise \\
        --input "{\\"channel\\": \\"phone\\", \\"credential\\": \\"$CRED\\"}"

    It is good once, for a few minutes; send the same fields (the credential aside), or it is refused.
    """
    bound = (incident_key, step, input_json)
    if any(v is not None for v in bound) and any(v is None for v in bound):
        raise click.UsageError("--incident, --step and --input go together: a credential is bound to all three")
    checksum_ = _bound_checksum(step, input_json) if step is not None and input_json is not None else None
    signer = Issuer(issuer, _ring(data_dir, keys), session_hours=hours, credential_seconds=minutes * 60)
    try:
        actor = Actor(name=name, role=Role(role))
    except ValidationError as err:
        fail(explain(err, {"name": ["--name"], "role": ["--role"]}), EXIT_INVALID)
    if incident_key is None or step is None or checksum_ is None:
        click.echo(signer.session_token(actor))
    else:
        click.echo(signer.step_credential(actor, workflow_id(incident_key), step, checksum_))

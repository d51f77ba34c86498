"""Who takes a step from the CLI: the session token in ``AMENDS_TOKEN``, exchanged at the issuer per step.

The step commands take no name or role: the session token says who acts,
and the issuer at ``AMENDS_ISSUER_URL`` (by default the one ``amends dev``
serves from the data directory, ``AMENDS_DATA`` or ``.data``) signs a
credential bound to each step's incident, name and input.
"""

from __future__ import annotations

import os

from worker.cli.connection import EXIT_INVALID, fail
from worker.issuer import DevIssuer
from workflows.signing import ExchangeSigner

TOKEN_ENV = "AMENDS_TOKEN"
ISSUER_URL_ENV = "AMENDS_ISSUER_URL"
HOW_TO_GET_ONE = 'export AMENDS_TOKEN=$(amends token --name "Your Name" --role agent)'


def issuer_url() -> str | None:
    return os.environ.get(ISSUER_URL_ENV) or DevIssuer.from_env().url()


def step_signer() -> ExchangeSigner:
    """The signer of this command's step, or exit 2 saying what is missing (nothing is sent)."""
    session = os.environ.get(TOKEN_ENV, "").strip()
    if not session:
        fail(f"invalid: {TOKEN_ENV} is not set: a step is taken by whoever its session token names. With "
             f"`amends dev` running, get one with\n  {HOW_TO_GET_ONE}\n(or from your identity provider)",
             EXIT_INVALID)
    url = issuer_url()
    if url is None:
        dev = DevIssuer.from_env()
        fail(f"invalid: {ISSUER_URL_ENV} is not set, and no `amends dev` serves an issuer from {dev.data_dir} "
             f"(no {dev.url_file.name} there; its data directory is AMENDS_DATA): set {ISSUER_URL_ENV} to the "
             f"issuer that exchanges your {TOKEN_ENV} for step credentials", EXIT_INVALID)
    return ExchangeSigner(url, session)

"""Credentials for the steps a client takes: a signer binds each step's input to who takes it.

The workflow verifies (``workflows/credentials.py``); a client only needs a
``Signer``, which turns (incident, step, input checksum) into a signed
credential:

- ``KeySigner``: a service's own key (a backend acting as itself, or for
  the customer), or any holder of an issuer's signing key;
- ``ExchangeSigner``: a person's session token, exchanged for each step at
  an issuer's ``/exchange`` endpoint (``amends issuer``, or the local one
  that ``amends dev`` runs).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol, TypeVar

import httpx
import jwt

from workflows.credentials import INCIDENT_CLAIM, INPUT_CLAIM, STEP_CLAIM, checksum
from workflows.inputs import Actor, StepInput
from workflows.trust import AUDIENCE, NAME_CLAIM, ROLE_CLAIM

S = TypeVar("S", bound=StepInput)


class Signer(Protocol):
    async def sign(self, workflow_id: str, step: str, input_checksum: str) -> str: ...


async def bind(signer: Signer, workflow_id: str, step_name: str, step: S) -> S:
    """``step`` carrying a credential from ``signer`` for this incident and step."""
    if step.by is not None:
        raise ValueError("by: who acts comes from the credential; leave by out of the input")
    credential = await signer.sign(workflow_id, step_name, checksum(step, as_sent=True))
    bound: S = step.model_copy(update={"credential": credential})
    return bound


class KeySigner:
    """Signs credentials with a private key (a JWK with its ``kid``) as one actor.

    A backend holds its own key and its issuer's entry in the workers'
    identity file lists the roles it may assert (``backend``, ``customer``).
    """

    def __init__(self, private_jwk: dict[str, Any], issuer: str, actor: Actor, *, audience: str = AUDIENCE,
                 lifetime_seconds: int = 300, name_claim: str = NAME_CLAIM, role_claim: str = ROLE_CLAIM) -> None:
        self.key = jwt.PyJWK(private_jwk)
        self.kid = private_jwk["kid"]
        self.issuer, self.actor, self.audience = issuer, actor, audience
        self.lifetime = lifetime_seconds
        self.name_claim, self.role_claim = name_claim, role_claim

    def claims(self, actor: Actor, at: float | None = None) -> dict[str, Any]:
        now = int(time.time() if at is None else at)
        return {
            "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex, "sub": actor.name, self.name_claim: actor.name, self.role_claim: actor.role.value,
        }

    def signed(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm=self.key.algorithm_name, headers={"kid": self.kid})

    def step_credential(self, actor: Actor, workflow_id: str, step: str, input_checksum: str,
                        at: float | None = None) -> str:
        claims = self.claims(actor, at) | {INCIDENT_CLAIM: workflow_id, STEP_CLAIM: step, INPUT_CLAIM: input_checksum}
        return self.signed(claims)

    async def sign(self, workflow_id: str, step: str, input_checksum: str) -> str:
        return self.step_credential(self.actor, workflow_id, step, input_checksum)


class CredentialUnavailable(Exception):
    """The issuer would not exchange the session token; ``str()`` says why."""


class ExchangeSigner:
    """Exchanges a person's session token for one credential per step, at an issuer's ``/exchange``."""

    def __init__(self, issuer_url: str, session_token: str) -> None:
        self.url = issuer_url.rstrip("/") + "/exchange"
        self.session_token = session_token

    async def sign(self, workflow_id: str, step: str, input_checksum: str) -> str:
        async with httpx.AsyncClient(timeout=10) as http:
            try:
                response = await http.post(
                    self.url, headers={"Authorization": f"Bearer {self.session_token}"},
                    json={"incident": workflow_id, "step": step, "input": input_checksum},
                )
            except httpx.HTTPError as err:
                raise CredentialUnavailable(f"the issuer at {self.url} cannot be reached: {err}") from None
        if response.status_code != 200:
            raise CredentialUnavailable(f"the issuer refused a credential for {step}: {response.text.strip()}")
        credential: str = response.json()["credential"]
        return credential

"""The issuers an incident trusts and their public keys, as recorded in its history.

The worker's identity configuration names the issuers, the roles each may
assert and where their keys are (a JWKS file or URL); the ``load_trust``
local activity reads the keys, and the incident keeps the answer, so that
every credential is verified against the same record on replay. Keys
rotate: ``refresh_trust`` records the issuer's current key set again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from workflows.basics import Contract
from workflows.inputs import Role

# The defaults every party shares: the audience of step credentials and the claims that name who acts.
AUDIENCE, NAME_CLAIM, ROLE_CLAIM = "amends", "name", "amends_role"


class TrustedIssuer(Contract):
    issuer: str = Field(description="The iss claim of its credentials.")
    roles: list[Role] = Field(description="The roles this issuer may assert; any other role claim is refused.")
    keys: list[dict[str, Any]] = Field(default_factory=list, description="Its public keys (JWKS 'keys').")


class Trust(BaseModel):
    """The issuers an incident trusts, recorded at open and on refresh_trust (public keys only)."""

    audience: str = AUDIENCE
    name_claim: str = NAME_CLAIM
    role_claim: str = ROLE_CLAIM
    max_lifetime: timedelta = Field(default=timedelta(minutes=15), description="Longest exp - iat accepted.")
    issuers: list[TrustedIssuer] = Field(default_factory=list)
    loaded_at: datetime | None = None

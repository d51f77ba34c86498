"""The trusted issuers' public keys, read from the worker's identity configuration (a local activity).

The answer is recorded in the incident's history (``Trust``): credentials
are verified against that record, so a replay or a restart never depends
on what a key file or a JWKS URL says today, and ``refresh_trust`` records
it anew when an issuer rotates its keys.
"""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.credentials import UnknownSigningKey, public_keys, verify_credential
from workflows.guards import Refused
from workflows.inputs import Role
from workflows.payloads import CredentialCheck, CredentialVerdict
from workflows.trust import AUDIENCE, NAME_CLAIM, ROLE_CLAIM, Trust, TrustedIssuer


class IssuerConfig(BaseModel):
    issuer: str = Field(min_length=1, description="The iss claim of its credentials.")
    jwks: str = Field(min_length=1, description="Its public keys: a JWKS file, or an https:// (or http:// local) URL.")
    roles: list[Role] = Field(min_length=1, description="The roles it may assert.")


class IdentityConfig(BaseModel):
    """Whose credentials the worker's incidents accept (``AMENDS_IDENTITY``, a TOML file)."""

    audience: str = AUDIENCE
    name_claim: str = NAME_CLAIM
    role_claim: str = ROLE_CLAIM
    max_lifetime_minutes: int = Field(default=15, ge=1, le=24 * 60)
    issuers: list[IssuerConfig] = Field(min_length=1)

    @classmethod
    def load(cls, path: Path | str) -> IdentityConfig:
        with open(path, "rb") as f:
            config = cls.model_validate(tomllib.load(f))
        # A relative key file is relative to the configuration that names it.
        for issuer in config.issuers:
            if "://" not in issuer.jwks and not Path(issuer.jwks).is_absolute():
                issuer.jwks = str(Path(path).resolve().parent / issuer.jwks)
        return config


async def read_jwks(source: str) -> dict[str, Any]:
    if source.startswith(("https://", "http://")):
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(source)
            response.raise_for_status()
            data = response.json()
    else:
        data = json.loads(Path(source).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a JWKS is a JSON object with 'keys'")
    return data


class IdentityActivities:
    def __init__(self, config: IdentityConfig | None) -> None:
        self.config = config

    @activity.defn(name="load_trust")
    async def load_trust(self) -> Trust:
        config = self.config
        if config is None:
            return Trust()  # trusts nobody: every step is refused, saying so
        issuers = []
        for issuer in config.issuers:
            try:
                keys = public_keys(await read_jwks(issuer.jwks))
            except (OSError, ValueError, httpx.HTTPError) as err:
                raise ApplicationError(f"the keys of issuer {issuer.issuer} ({issuer.jwks}): {err}",
                                       type="TrustUnavailable") from err
            issuers.append(TrustedIssuer(issuer=issuer.issuer, roles=issuer.roles, keys=keys))
        return Trust(
            audience=config.audience, name_claim=config.name_claim, role_claim=config.role_claim,
            max_lifetime=timedelta(minutes=config.max_lifetime_minutes), issuers=issuers,
        )


@activity.defn(name="verify_credential")
async def verify_first_step(check: CredentialCheck) -> CredentialVerdict:
    """The verdict on a first step's credential, against the trust the incident recorded (a local activity)."""
    try:
        actor = verify_credential(check.trust, check.credential, check.by_given, check.checksum, check.workflow_id,
                                  check.step, check.now, check.used)
    except UnknownSigningKey as refused:
        return CredentialVerdict(refusal=str(refused), unknown_key=True)
    except Refused as refused:
        return CredentialVerdict(refusal=str(refused))
    return CredentialVerdict(actor=actor)

"""Who took a step, verified: the signed credential every step carries.

A step's credential is a JWT signed by an issuer the worker trusts (the
company's identity provider, amends' own issuer, or a backend's service
key). It is bound to one use: to this incident (``amends_incident``, the
workflow id), to one step (``amends_step``), to a checksum of the step's
input (``amends_input``) and to a ``jti`` used once per incident, and it
lives minutes. A credential read from the history therefore cannot take any
other step, on this incident or another. The actor's name and role come
from its claims; the issuers, their keys and the roles each may assert
were recorded in the incident (``Trust``) by a local activity, so
verification is deterministic: signatures and claims are checked against
that record and ``workflow.now()``, never against the wall clock.

Nothing here does I/O: the validator calls ``verify`` and the update
handler ``verified_actor`` (replay never runs validators, so the handler
reads the claims of a credential that was verified when it was accepted).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.guards import Refused
from workflows.inputs import Actor, Role, StepInput
from workflows.trust import Trust, TrustedIssuer

# Asymmetric algorithms only: a shared secret would let every verifier sign.
ALGORITHMS = {"EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
# Private members of a JWK; a recorded key set keeps none of them.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
# Clocks of issuers and the Temporal server differ a little.
LEEWAY = timedelta(seconds=30)

INCIDENT_CLAIM, STEP_CLAIM, INPUT_CLAIM = "amends_incident", "amends_step", "amends_input"


class UnknownSigningKey(Refused):
    """The credential's key is not in the recorded key set: the issuer may have rotated (refresh_trust)."""


def checksum(step: StepInput, *, as_sent: bool = False) -> str:
    """SHA-256 (hex) of the step's input as sent, without its credential.

    The canonical form: the fields the caller sent (``exclude_unset``, so an
    optional field added later does not change what older callers sign), as
    amends reads them (``model_dump(mode="json")``), keys sorted, no
    whitespace, UTF-8. ``amends token --step … --input …`` prints a
    credential bound to it. A Python client's converter sends every field,
    defaults included: it signs ``as_sent``.
    """
    data = step.model_dump(mode="json", exclude_unset=not as_sent, exclude={"credential", "by"})
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _b64json(segment: str) -> dict[str, Any]:
    value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWT, read without checking anything."""
    try:
        header, claims, _signature = token.split(".")
        return _b64json(header), _b64json(claims)
    except (ValueError, UnicodeDecodeError) as err:
        raise Refused(f"credential: not a signed token (a compact JWT: header.claims.signature): {err}") from None


def _time(claims: dict[str, Any], name: str) -> datetime:
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise Refused(f"credential: the {name} claim must be a time in seconds since 1970")
    return datetime.fromtimestamp(value, UTC)


def _actor(trust: Trust, issuer: TrustedIssuer | None, claims: dict[str, Any]) -> Actor:
    name, role = claims.get(trust.name_claim), claims.get(trust.role_claim)
    if not isinstance(name, str) or not name.strip():
        raise Refused(f"credential: the {trust.name_claim} claim must name who acts")
    if role not in {r.value for r in Role} or role == Role.SYSTEM:
        raise Refused(f"credential: the {trust.role_claim} claim must be one of agent, manager, director, "
                      f"customer, backend; not {role!r}")
    if issuer is not None and role not in issuer.roles:
        allowed = ", ".join(issuer.roles) or "none"
        raise Refused(f"credential: issuer '{issuer.issuer}' may not assert the role {role} (it may assert: "
                      f"{allowed})")
    return Actor(name=name.strip()[:200], role=Role(role))


def verify(trust: Trust | None, step: StepInput, workflow_id: str, step_name: str, now: datetime,
           used: list[str]) -> Actor:
    """The verified actor of ``step``, or ``Refused`` saying what is wrong with its credential."""
    return verify_credential(trust, step.credential, step.by is not None, checksum(step), workflow_id, step_name,
                             now, used)


def verify_credential(trust: Trust | None, token: str | None, by_given: bool, expected: str, workflow_id: str,
                      step_name: str, now: datetime, used: list[str]) -> Actor:
    """``verify`` for a step known by its credential, whether it sent ``by``, and its input's checksum."""
    if by_given:
        raise Refused("by: who acts comes from the credential's verified claims, never from the input; leave by out")
    if token is None:
        raise Refused(f"credential: {step_name} needs a signed credential bound to this incident, this step and "
                      f"its input (see the README, 'Credentials'); none was given")
    if trust is None or not trust.issuers:
        raise UnknownSigningKey("credential: this incident has recorded no trusted issuer yet; send refresh_trust, "
                                "then the step again")
    header, claims = unverified(token)
    issuer = next((i for i in trust.issuers if i.issuer == claims.get("iss")), None)
    if issuer is None:
        raise Refused(f"credential: issuer {claims.get('iss')!r} is not trusted by this incident")
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise Refused(f"credential: algorithm {alg!r} is not accepted; sign with a public-key algorithm "
                      f"({', '.join(sorted(ALGORITHMS))})")
    jwk = next((k for k in issuer.keys if k.get("kid") == kid), None)
    if jwk is None:
        raise UnknownSigningKey(f"credential: key {kid!r} is not among the keys recorded for issuer "
                                f"'{issuer.issuer}'; if its keys rotated, send refresh_trust, then the step again")
    _signature_holds(token, jwk, alg)

    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if trust.audience not in audiences:
        raise Refused(f"credential: its audience must be '{trust.audience}', not {audience!r}")
    issued, expires = _time(claims, "iat"), _time(claims, "exp")
    if expires <= now - LEEWAY:
        raise Refused(f"credential: expired at {expires:%Y-%m-%d %H:%M:%S} UTC; ask for a fresh one")
    if issued > now + LEEWAY:
        raise Refused(f"credential: issued in the future ({issued:%Y-%m-%d %H:%M:%S} UTC)")
    if expires - issued > trust.max_lifetime:
        raise Refused(f"credential: lives {expires - issued}, longer than the {trust.max_lifetime} allowed")
    if claims.get(INCIDENT_CLAIM) != workflow_id:
        raise Refused(f"credential: issued for {claims.get(INCIDENT_CLAIM)!r}, not for {workflow_id}")
    if claims.get(STEP_CLAIM) != step_name:
        raise Refused(f"credential: issued for the step {claims.get(STEP_CLAIM)!r}, not for {step_name}")
    if claims.get(INPUT_CLAIM) != expected:
        raise Refused(f"credential: signed for another input (its {INPUT_CLAIM} is {claims.get(INPUT_CLAIM)!r}; "
                      f"this input's checksum is {expected})")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise Refused("credential: it needs a jti claim, unique to it")
    if jti in used:
        raise Refused(f"credential: already used on this incident (jti {jti}); each step needs a fresh credential")
    return _actor(trust, issuer, claims)


def _signature_holds(token: str, jwk: dict[str, Any], alg: str) -> None:
    import jwt  # PyJWT; imported here so that modules reading only claims need no cryptography

    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        # Only the signature: the claims (and the times, against workflow.now()) are checked above.
        jwt.PyJWS().decode_complete(token, key=key, algorithms=[alg])
    except jwt.InvalidSignatureError:
        raise Refused("credential: its signature does not verify") from None
    except jwt.PyJWTError as err:
        raise Refused(f"credential: cannot be verified: {err}") from None


def verified_actor(trust: Trust | None, step: StepInput) -> tuple[Actor, str | None]:
    """The actor and jti of a step the validator accepted (or, in histories from before credentials, its by)."""
    if step.credential is None:
        assert step.by is not None, "a step without a credential was accepted"
        return step.by, None
    _header, claims = unverified(step.credential)
    return _actor(trust or Trust(), None, claims), claims["jti"]


def public_keys(jwks: dict[str, Any]) -> list[dict[str, Any]]:
    """The public members of a JWKS's keys; a symmetric key (a shared secret) is refused."""
    keys = []
    for key in jwks.get("keys", []):
        if key.get("kty") == "oct":
            raise ValueError("a symmetric key (kty oct) is a shared secret: trust public keys only")
        if not key.get("kid"):
            raise ValueError("every key needs a kid, so that credentials can name it")
        keys.append({k: v for k, v in key.items() if k not in PRIVATE_MEMBERS})
    return keys

"""amends' own credential issuer: signing keys, session tokens and the per-step exchange.

People sign in once and hold a *session token* (``AMENDS_TOKEN``): who
they are and their role, for an hour. A step needs a *credential* bound to
one incident, one step and one input, so the CLI (``ExchangeSigner``)
trades the session token at ``POST /exchange`` for each step. The issuer
publishes its public keys at ``/.well-known/jwks.json`` and in a JWKS file,
which workers name in their identity file.

``amends dev`` runs one on loopback with a key ring in its data directory;
``amends token`` signs session tokens (and, for the ``temporal`` CLI, bound
credentials) with that ring. Rotation: ``KeyRing.rotate`` puts a new key
first (it signs from then on) and keeps the old one published until
``KeyRing.retire`` drops it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from workflows.credentials import public_keys
from workflows.inputs import Actor, Role
from workflows.signing import KeySigner
from workflows.trust import AUDIENCE, NAME_CLAIM, ROLE_CLAIM

SESSION_AUDIENCE = "amends-session"
STAFF_ROLES = (Role.AGENT, Role.MANAGER, Role.DIRECTOR)
# The iss of the local issuer: fixed, not its URL, so that a port change does
# not make the incidents opened before it distrust their own issuer.
DEV_ISSUER = "amends-dev"


def new_key() -> dict[str, Any]:
    """A fresh Ed25519 signing key as a private JWK, with a random kid."""
    jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate()))
    return jwk | {"kid": uuid.uuid4().hex[:16], "alg": "EdDSA", "use": "sig"}


class KeyRing:
    """Private keys in ``signing-keys.json`` (the first signs), the public ones in ``jwks.json`` beside it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.private = directory / "signing-keys.json"
        self.jwks = directory / "jwks.json"

    def keys(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = json.loads(self.private.read_text())["keys"]
        return keys

    def ensure(self) -> KeyRing:
        if not self.private.exists():
            self._write([new_key()])
        return self

    def rotate(self) -> dict[str, Any]:
        """A new key signs from now on; the old ones stay published so that what they signed still verifies."""
        key = new_key()
        self._write([key, *self.keys()])
        return key

    def retire(self, keep: int = 1) -> None:
        """Publish only the newest ``keep`` keys."""
        self._write(self.keys()[:keep])

    def _write(self, keys: list[dict[str, Any]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        secret = self.private.with_suffix(".tmp")
        secret.touch(mode=0o600)
        secret.write_text(json.dumps({"keys": keys}))
        secret.replace(self.private)
        self.jwks.write_text(json.dumps({"keys": public_keys({"keys": keys})}, indent=2))


class Issuer:
    def __init__(self, issuer: str, ring: KeyRing, *, audience: str = AUDIENCE,
                 session_hours: float = 8, credential_seconds: int = 300) -> None:
        self.issuer, self.ring, self.audience = issuer, ring, audience
        self.session_seconds = int(session_hours * 3600)
        self.credential_seconds = credential_seconds

    def signer(self, actor: Actor) -> KeySigner:
        return KeySigner(self.ring.keys()[0], self.issuer, actor, audience=self.audience,
                         lifetime_seconds=self.credential_seconds)

    def session_token(self, actor: Actor) -> str:
        signer = self.signer(actor)
        claims = signer.claims(actor) | {"aud": SESSION_AUDIENCE}
        claims["exp"] = claims["iat"] + self.session_seconds
        return signer.signed(claims)

    def step_credential(self, actor: Actor, workflow_id: str, step: str, input_checksum: str,
                        at: float | None = None) -> str:
        return self.signer(actor).step_credential(actor, workflow_id, step, input_checksum, at)

    def session_actor(self, token: str) -> Actor:
        """Who a session token names, once its signature, issuer, audience and expiry hold."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((k for k in self.ring.keys() if k["kid"] == kid), None)
            if key is None:
                raise jwt.InvalidTokenError(f"unknown key {kid!r}")
            claims = jwt.decode(token, jwt.PyJWK(key), algorithms=["EdDSA"], audience=SESSION_AUDIENCE,
                                issuer=self.issuer, options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as err:
            raise PermissionError(f"session token refused: {err}") from None
        return Actor(name=claims[NAME_CLAIM], role=Role(claims[ROLE_CLAIM]))

    def exchange(self, session_token: str, workflow_id: str, step: str, input_checksum: str) -> str:
        actor = self.session_actor(session_token)
        return self.step_credential(actor, workflow_id, step, input_checksum)

    def app(self) -> Any:
        from aiohttp import web

        async def jwks(_request: web.Request) -> web.Response:
            return web.json_response(json.loads(self.ring.jwks.read_text()))

        async def exchange(request: web.Request) -> web.Response:
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return web.Response(status=401, text="send the session token as Authorization: Bearer <token>")
            try:
                body = await request.json()
                bound = {k: str(body[k]) for k in ("incident", "step", "input")}
            except (ValueError, KeyError, TypeError):
                return web.Response(status=400, text='send JSON {"incident": …, "step": …, "input": <checksum>}')
            try:
                credential = self.exchange(auth.removeprefix("Bearer "), bound["incident"], bound["step"],
                                           bound["input"])
            except PermissionError as err:
                return web.Response(status=401, text=str(err))
            return web.json_response({"credential": credential, "expires_in": self.credential_seconds})

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", jwks)
        app.router.add_post("/exchange", exchange)
        return app


class DevIssuer:
    """Where ``amends dev`` keeps its issuer in its data directory (``--data``, ``AMENDS_DATA``).

    ``issuer/`` holds the key ring, ``identity.toml`` the worker's trust in it,
    and ``issuer.url``, while ``amends dev`` runs, the address it serves on,
    so that the step commands find it without ``AMENDS_ISSUER_URL``.
    """

    DATA_ENV = "AMENDS_DATA"
    DEFAULT_DATA = Path(".data")

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ring = KeyRing(data_dir / "issuer")
        self.identity_file = data_dir / "identity.toml"
        self.url_file = data_dir / "issuer.url"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DevIssuer:
        import os

        data = (os.environ if environ is None else environ).get(cls.DATA_ENV)
        return cls(Path(data) if data else cls.DEFAULT_DATA)

    def url(self) -> str | None:
        """The URL of the issuer ``amends dev`` serves from this data directory, while it runs."""
        try:
            return self.url_file.read_text().strip() or None
        except OSError:
            return None


def identity_toml(issuer: str, jwks: Path | str, roles: tuple[Role, ...] = (*STAFF_ROLES, Role.CUSTOMER,
                                                                             Role.BACKEND)) -> str:
    """An identity file for workers that trust ``issuer`` (used by ``amends dev`` for its local issuer)."""
    listed = ", ".join(f'"{r.value}"' for r in roles)
    return f'audience = "{AUDIENCE}"\n\n[[issuers]]\nissuer = "{issuer}"\njwks = "{jwks}"\nroles = [{listed}]\n'

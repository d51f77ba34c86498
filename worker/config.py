"""Configuration of the worker and the CLI, all from the environment.

Temporal's connection (address, namespace, TLS, API key, profiles in a TOML
file) is read by the SDK's own environment configuration, the same variables
the ``temporal`` CLI reads (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``, ``TEMPORAL_PROFILE``). amends' own
settings are ``AMENDS_*``.

Payloads are sealed with the key ring ``AMENDS_CODEC_KEYS`` (a key file) and
``AMENDS_CODEC_KEY_ID`` (its current key) name (``workflows.codec``); with
neither, the key ``amends dev`` made in its data directory, if there is one.
A process that finds no key does not connect: nothing is ever written to
Temporal in plaintext by accident.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from activities.clock import policy_as_of
from activities.identity import IdentityConfig
from activities.language import LANGUAGES, supported
from activities.notices import MailSettings
from activities.webhooks import DEV_WEBHOOK_SECRET, TARGETS, WebhookSettings, check_secret
from workflows.client import DEFAULT_TASK_QUEUE
from workflows.codec import KEYS_ENV, CodecError, KeyRing
from workflows.converter import encrypted_converter
from workflows.inputs import Contact
from workflows.sla import SlaPolicy

DEFAULT_SLA_POLICY = Path(__file__).with_name("sla_default.toml")


def load_policy(path: Path | str = DEFAULT_SLA_POLICY, *, today: date | None = None) -> SlaPolicy:
    """Read and validate an SLA policy file (TOML, or JSON); errors name the field and the rule.

    The business calendar (``country``, ``subdivision``) is checked against the
    ``holidays`` package and expanded into the public holidays of the years
    around ``today`` (the worker's date by default); each incident records its
    own expansion when it opens (``ClockActivities.load_sla_policy``).
    """
    if str(path).endswith(".json"):
        policy = SlaPolicy.model_validate_json(Path(path).read_text())
    else:
        with open(path, "rb") as f:
            policy = SlaPolicy.model_validate(tomllib.load(f))
    return policy_as_of(policy, today or datetime.now(UTC).date())

LOCAL_STRIPE_KEY = "sk_test_amends_local"  # the default: talks to localstripe


class Settings(BaseModel):
    task_queue: str = DEFAULT_TASK_QUEUE
    stripe_api_key: str = LOCAL_STRIPE_KEY
    stripe_api_base: str | None = "http://localhost:8420"
    mail: MailSettings = MailSettings()
    webhooks: WebhookSettings = WebhookSettings()
    sla_policy: SlaPolicy = load_policy()
    # Whose credentials incidents accept; None trusts nobody (every step is refused).
    identity: IdentityConfig | None = None
    # Whether AMENDS_CARE_EMAIL was given: pages with no owner go to the care contact, so a worker needs one.
    care_configured: bool = True
    # Whether webhook secrets were given: the development default is public, so a worker refuses it.
    webhook_secrets_configured: bool = True
    # Whether a Stripe key was given: the default talks to localstripe, which a worker refuses.
    stripe_configured: bool = True
    # How long a stopping worker lets sends in flight finish (AMENDS_GRACEFUL_SHUTDOWN, seconds); match it
    # with the deployment's termination grace period.
    graceful_shutdown: timedelta = timedelta(seconds=30)

    @property
    def stripe_is_local(self) -> bool:
        return self.stripe_api_key.startswith("sk_test_amends")  # LOCAL_STRIPE_KEY and the tests' keys

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        mail = MailSettings(
            host=e.get("AMENDS_SMTP_HOST", "localhost"),
            port=_port(e, "AMENDS_SMTP_PORT", 1025),
            username=e.get("AMENDS_SMTP_USERNAME") or None,
            password=e.get("AMENDS_SMTP_PASSWORD") or None,
            start_tls=_flag(e, "AMENDS_SMTP_STARTTLS", False),
            sender=_email(e, "AMENDS_MAIL_FROM", "care@example.com"),
            company=e.get("AMENDS_COMPANY", "Amends Demo Co."),
            executive=e.get("AMENDS_EXECUTIVE", "The founders"),
            care=Contact(
                name=e.get("AMENDS_CARE_NAME", "Customer care"),
                email=_email(e, "AMENDS_CARE_EMAIL", "care@example.com"),
            ),
            default_locale=_default_locale(e.get("AMENDS_DEFAULT_LOCALE") or "en"),
        )
        # A real key talks to real Stripe unless a base is given; the
        # default key talks to localstripe.
        key = e.get("AMENDS_STRIPE_API_KEY", LOCAL_STRIPE_KEY)
        base = e.get("AMENDS_STRIPE_API_BASE", "http://localhost:8420" if key == LOCAL_STRIPE_KEY else "")
        webhooks = WebhookSettings(
            secret=check_secret(e["AMENDS_WEBHOOK_SECRET"], "AMENDS_WEBHOOK_SECRET")
            if e.get("AMENDS_WEBHOOK_SECRET") else DEV_WEBHOOK_SECRET,
            # A receiver's own secrets, space-separated while one rotates (each signs every request).
            secrets={
                t: [check_secret(v, f"AMENDS_{t.upper()}_WEBHOOK_SECRET")
                    for v in e[f"AMENDS_{t.upper()}_WEBHOOK_SECRET"].split()]
                for t in TARGETS if e.get(f"AMENDS_{t.upper()}_WEBHOOK_SECRET")
            },
            urls={t: e[f"AMENDS_{t.upper()}_URL"] for t in TARGETS if e.get(f"AMENDS_{t.upper()}_URL")},
        )
        own = [t for t in TARGETS if t in webhooks.secrets]
        return cls(
            task_queue=e.get("AMENDS_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            stripe_api_key=key,
            stripe_api_base=base or None,
            mail=mail,
            webhooks=webhooks,
            sla_policy=load_policy(e.get("AMENDS_SLA_POLICY") or DEFAULT_SLA_POLICY),
            identity=IdentityConfig.load(e["AMENDS_IDENTITY"]) if e.get("AMENDS_IDENTITY") else None,
            care_configured=bool(e.get("AMENDS_CARE_EMAIL")),
            stripe_configured=bool(e.get("AMENDS_STRIPE_API_KEY")),
            webhook_secrets_configured=bool(e.get("AMENDS_WEBHOOK_SECRET")) or len(own) == len(TARGETS),
            graceful_shutdown=timedelta(seconds=_seconds(e, "AMENDS_GRACEFUL_SHUTDOWN", 30)),
        )


def _default_locale(tag: str) -> str:
    """The customers' default language: one amends has notices in, or the worker does not start."""
    if supported(tag) is None:
        raise ValueError(f"AMENDS_DEFAULT_LOCALE: {tag!r} is not a BCP 47 tag of a language amends writes notices "
                         f"in ({', '.join(sorted(LANGUAGES))}), e.g. en or de-DE")
    return tag


class ConfigError(ValueError):
    """A setting that cannot be used; the message starts with the variable's name and says the rule."""


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE or raw in FALSE:
        return raw in TRUE
    raise ConfigError(f"{name}: must be one of {', '.join(TRUE)} or {', '.join(FALSE)}, not {env[name]!r}")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}: must be a port number from 1 to 65535, not {raw!r}")
    return int(raw)


def _email(env: Mapping[str, str], name: str, default: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        validate_email(raw, check_deliverability=False)
    except EmailNotValidError as err:
        raise ConfigError(f"{name}: must be an e-mail address, not {raw!r} ({err})") from None
    return raw


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name}: must be 0 or more seconds, not {raw!r}")
    return value


DEV_KEYS = "codec-keys.toml"  # in `amends dev`'s data directory (AMENDS_DATA, default .data)


def dev_keys_file(env: Mapping[str, str] | None = None) -> Path:
    e = os.environ if env is None else env
    return Path(e.get("AMENDS_DATA") or ".data") / DEV_KEYS


def codec_keys(env: Mapping[str, str] | None = None) -> KeyRing:
    """The payload keys: ``AMENDS_CODEC_KEYS``, else `amends dev`'s; an error saying what to set if neither."""
    ring = KeyRing.from_env(env)
    if ring is not None:
        return ring
    dev = dev_keys_file(env)
    if dev.is_file():
        return KeyRing.load(dev)
    raise CodecError(f"no payload keys: set {KEYS_ENV} to a key file (`amends codec-key --help` makes one); "
                     f"payloads are never written to Temporal unencrypted")


async def connect(
    address: str | None = None, namespace: str | None = None, *, runtime: Runtime | None = None,
    keys: KeyRing | None = None,
) -> Client:
    """A client with amends' data converter, payloads sealed, configured like the ``temporal`` CLI.

    ``runtime``: the SDK runtime to report metrics through (``worker.metrics``);
    the default runtime serves none. ``keys``: the payload keys (default:
    ``codec_keys()``).
    """
    converter = encrypted_converter(keys or codec_keys())
    return await Client.connect(**_connect_config(address, namespace), data_converter=converter, runtime=runtime)


async def connect_operator(address: str | None = None, namespace: str | None = None) -> Client:
    """A client for the operator service only (search attributes): it carries no payload, so it needs no key."""
    return await Client.connect(**_connect_config(address, namespace))


def _connect_config(address: str | None, namespace: str | None) -> Any:
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    if address:
        config["target_host"] = address
    if namespace:
        config["namespace"] = namespace
    return config

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from activities.clock import policy_as_of
from activities.identity import IdentityConfig
from activities.notices import MailSettings
from activities.webhooks import DEV_WEBHOOK_SECRET, TARGETS, WebhookSettings
from worker.settings import ConfigError, read_default, read_env
from worker.tuning import WorkerTuning
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
LOCALHOSTS = ("localhost", "127.0.0.1", "::1")


def is_local(host: str) -> bool:
    """A relay on this machine: what crosses to it never leaves it."""
    return host.strip().lower() in LOCALHOSTS or host.startswith("127.")


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
    # Worker Versioning (AMENDS_DEPLOYMENT_NAME, AMENDS_BUILD_ID): None, the default, polls unversioned.
    deployment: WorkerDeploymentVersion | None = None
    # Where the worker serves Prometheus metrics (AMENDS_METRICS_BIND, HOST:PORT); None: nowhere.
    metrics_bind: str | None = None
    # How much the worker holds and runs at once (AMENDS_MAX_CACHED_WORKFLOWS and the rest).
    tuning: WorkerTuning = WorkerTuning(**{name: read_default(name) for name in WorkerTuning.model_fields})

    @property
    def stripe_is_local(self) -> bool:
        return self.stripe_api_key.startswith("sk_test_amends")  # LOCAL_STRIPE_KEY and the tests' keys

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``env`` (default: the environment) and the mounted secrets (``worker.settings``).

        A value that breaks its rule raises :class:`ConfigError` naming the variable.
        """
        v = read_env(env)
        tls = v.smtp_tls
        # STARTTLS unless said otherwise; a relay on this machine (the development sink) only if it offers it.
        start_tls = False if tls else v.smtp_starttls if v.smtp_starttls is not None else (
            None if is_local(v.smtp_host) else True)
        port = v.smtp_port or (465 if tls else 1025 if is_local(v.smtp_host) else 587)
        mail = MailSettings(
            host=v.smtp_host, port=port, username=v.smtp_username, password=v.smtp_password,
            start_tls=start_tls, use_tls=tls, sender=v.mail_from, company=v.company, executive=v.executive,
            care=Contact(name=v.care_name, email=v.care_email or "care@example.com"),
            default_locale=v.default_locale,
        )
        # A real key talks to real Stripe unless a base is given; the default key talks to localstripe.
        key = v.stripe_api_key or LOCAL_STRIPE_KEY
        base = v.stripe_api_base or ("http://localhost:8420" if key == LOCAL_STRIPE_KEY else None)
        own = {t: getattr(v, f"{t}_webhook_secret").split() for t in TARGETS if getattr(v, f"{t}_webhook_secret")}
        webhooks = WebhookSettings(
            secret=v.webhook_secret or DEV_WEBHOOK_SECRET,
            secrets=own,
            urls={t: getattr(v, f"{t}_url") for t in TARGETS if getattr(v, f"{t}_url")},
        )
        return cls(
            task_queue=v.task_queue,
            stripe_api_key=key,
            stripe_api_base=base,
            mail=mail,
            webhooks=webhooks,
            sla_policy=_loaded("AMENDS_SLA_POLICY", load_policy, v.sla_policy or DEFAULT_SLA_POLICY),
            identity=_loaded("AMENDS_IDENTITY", IdentityConfig.load, v.identity) if v.identity else None,
            care_configured=v.care_email is not None,
            stripe_configured=v.stripe_api_key is not None,
            webhook_secrets_configured=v.webhook_secret is not None or len(own) == len(TARGETS),
            graceful_shutdown=timedelta(seconds=v.graceful_shutdown),
            deployment=WorkerDeploymentVersion(v.deployment_name, v.build_id) if v.build_id else None,
            metrics_bind=v.metrics_bind,
            tuning=WorkerTuning(**{name: getattr(v, name) for name in WorkerTuning.model_fields}),
        )

    def refuse_development_defaults(self) -> None:
        """What ``amends worker`` checks before it connects (``amends dev`` never does): every setting that
        would quietly run on a development stand-in, or send in plain text, is a :class:`ConfigError` naming
        its variable."""
        if not self.stripe_configured:
            raise ConfigError(
                "AMENDS_STRIPE_API_KEY is not set: without it refunds and coupons would go to the development "
                "stand-in (localstripe); set your Stripe key"
            )
        if self.stripe_api_key == LOCAL_STRIPE_KEY:
            raise ConfigError(
                f"AMENDS_STRIPE_API_KEY is the development stand-in's key ({LOCAL_STRIPE_KEY}, localstripe); "
                f"set your Stripe key"
            )
        if not self.webhook_secrets_configured:
            raise ConfigError(
                "AMENDS_WEBHOOK_SECRET is not set: webhooks would be signed with the public development secret; "
                "set it (whsec_ and base64), or each receiver's AMENDS_<RECEIVER>_WEBHOOK_SECRET"
            )
        public = [f"AMENDS_{t.upper()}_WEBHOOK_SECRET" for t in TARGETS
                  if DEV_WEBHOOK_SECRET in self.webhooks.secrets_for(t)]
        if public:
            name = "AMENDS_WEBHOOK_SECRET" if self.webhooks.secret == DEV_WEBHOOK_SECRET else public[0]
            raise ConfigError(
                f"{name} is the public development secret (amends dev's): anyone could sign webhooks with it; "
                f"make one of your own (whsec_ and base64 of 24 random bytes)"
            )
        if not self.care_configured:
            raise ConfigError(
                "AMENDS_CARE_EMAIL is not set: pages for incidents without an owner go to the care contact "
                "(AMENDS_CARE_EMAIL, and AMENDS_CARE_NAME); set it so that no stalled incident pages nobody"
            )
        if self.identity is None:
            raise ConfigError(
                "AMENDS_IDENTITY is not set: name the identity file (TOML) that lists the issuers whose credentials "
                "incidents accept; without it every step would be refused (amends dev writes one for its local "
                "issuer)"
            )
        m = self.mail
        if not m.use_tls and not m.start_tls and not is_local(m.host):
            raise ConfigError(
                f"AMENDS_SMTP_STARTTLS is off for the relay {m.host}:{m.port}, another host, and AMENDS_SMTP_TLS is "
                f"off too: notices{' and the relay password' if m.password else ''} would cross the network in "
                f"plain text; turn on STARTTLS (the default) or AMENDS_SMTP_TLS (port 465)"
            )


def _loaded(name: str, load: Callable[[Any], Any], path: Path | str) -> Any:
    """A file's contents through ``load``; an error names the variable that named the file."""
    try:
        return load(path)
    except ConfigError:
        raise
    except (OSError, ValueError, tomllib.TOMLDecodeError) as err:
        text = str(err)
        raise ConfigError(text if text.startswith(name) else f"{name}: {path}: {text}") from None


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


@dataclass(frozen=True)
class Temporal:
    """Which Temporal to talk to, as the ``temporal`` CLI decides it.

    The SDK's environment configuration reads the profile (``--profile``, else
    ``TEMPORAL_PROFILE``, else ``default``) from the TOML file (``--config-file``,
    else ``TEMPORAL_CONFIG_FILE``, else the user's ``temporal.toml``), then the
    ``TEMPORAL_*`` variables over it; an ``--address`` or ``--namespace`` given
    on the command line wins over both.
    """

    address: str | None = None
    namespace: str | None = None
    profile: str | None = None
    config_file: str | None = None

    def connect_config(self) -> Any:
        if self.config_file and not Path(self.config_file).is_file():
            raise ConfigError(f"--config-file: no such file: {self.config_file!r}")
        try:
            config = ClientConfig.load_client_connect_config(profile=self.profile, config_file=self.config_file)
        except Exception as err:  # noqa: BLE001  (the SDK's native ConfigError: a missing profile, bad TOML)
            what = "--profile" if self.profile else "TEMPORAL_PROFILE" if os.environ.get("TEMPORAL_PROFILE") \
                else "--config-file" if self.config_file else "TEMPORAL_CONFIG_FILE"
            raise ConfigError(f"{what}: {err}") from None
        config.setdefault("target_host", "localhost:7233")
        if self.address:
            config["target_host"] = self.address
        if self.namespace:
            config["namespace"] = self.namespace
        return config

    def where(self) -> str:
        """The address actually used (a profile's, the environment's, or the command line's)."""
        try:
            return str(self.connect_config()["target_host"])
        except ConfigError:
            return self.address or "localhost:7233"


async def connect(
    address: str | None = None, namespace: str | None = None, *, runtime: Runtime | None = None,
    keys: KeyRing | None = None, profile: str | None = None, config_file: str | None = None,
) -> Client:
    """A client with amends' data converter, payloads sealed, configured like the ``temporal`` CLI (:class:`Temporal`).

    ``runtime``: the SDK runtime to report metrics through (``worker.metrics``);
    the default runtime serves none. ``keys``: the payload keys (default:
    ``codec_keys()``).
    """
    config = Temporal(address, namespace, profile, config_file).connect_config()
    converter = encrypted_converter(keys or codec_keys())
    return await Client.connect(**config, data_converter=converter, runtime=runtime)


async def connect_operator(address: str | None = None, namespace: str | None = None, *, profile: str | None = None,
                           config_file: str | None = None) -> Client:
    """A client for the operator service only (search attributes): it carries no payload, so it needs no key."""
    return await Client.connect(**Temporal(address, namespace, profile, config_file).connect_config())

"""Every ``AMENDS_*`` setting of the worker, declared once with its type, default and rule.

:class:`AmendsEnv` is read (``pydantic-settings``) from the environment and
from a directory of mounted secrets, one file per variable named like it
(``AMENDS_SECRETS_DIR``; default ``/run/secrets`` when it exists, where Docker
and Compose mount secrets; a Kubernetes Secret mounted as a volume works the
same way). The environment wins over a file. An empty variable counts as
unset.

A value that breaks its rule is a :class:`ConfigError` whose message starts
with the variable's name and says the rule (``AMENDS_SMTP_PORT: must be a port
number from 1 to 65535, not 'abc'``); the CLI prints it and exits 2.
``worker.config.Settings.from_env`` turns these values into the worker's
settings, and :func:`refuse_development_defaults` is what ``amends worker``
(never ``amends dev``) checks before it connects.

The table in ``docs/configuration.md`` is generated from this declaration
(``python -m worker.settings``); a test fails when it is stale.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, ValidationError
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from activities.language import LANGUAGES, supported
from activities.webhooks import TARGETS, check_secret

PREFIX = "AMENDS_"
SECRETS_DIR_ENV = "AMENDS_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")


class ConfigError(ValueError):
    """A setting that cannot be used; the message starts with the variable's name and says the rule."""


# ------------------------------------------------------------------ the rules

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _rule(message: str) -> PydanticCustomError:
    return PydanticCustomError("amends_rule", message)


def _flag(raw: Any) -> Any:
    if isinstance(raw, bool) or raw is None:
        return raw
    value = str(raw).strip().lower()
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise _rule(f"must be one of {', '.join(TRUE)} or {', '.join(FALSE)}, not {raw!r}")


def _port(raw: Any) -> Any:
    if isinstance(raw, int) or raw is None:
        return raw
    value = str(raw).strip()
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise _rule(f"must be a port number from 1 to 65535, not {raw!r}")
    return int(value)


def _seconds(raw: Any) -> Any:
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise _rule(f"must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise _rule(f"must be 0 or more seconds, not {raw!r}")
    return value


def _count(raw: Any) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        text = str(raw).strip()
        if not text.isdigit():
            raise _rule(f"must be a whole number of 1 or more, not {raw!r}")
        value = int(text)
    if value < 1:
        raise _rule(f"must be a whole number of 1 or more, not {raw!r}")
    return value


def _email(raw: Any) -> Any:
    from email_validator import EmailNotValidError, validate_email

    value = str(raw).strip()
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as err:
        raise _rule(f"must be an e-mail address, not {value!r} ({err})") from None
    return value


def _locale(raw: Any) -> Any:
    tag = str(raw).strip()
    if supported(tag) is None:
        raise _rule(f"{tag!r} is not a BCP 47 tag of a language amends writes notices in "
                    f"({', '.join(sorted(LANGUAGES))}), e.g. en or de-DE")
    return tag


def _secrets(raw: Any) -> Any:
    """One webhook secret, or several separated by spaces while one rotates (each signs every request)."""
    value = str(raw).strip()
    for one in value.split():
        try:
            check_secret(one, "")
        except ValueError as err:
            raise _rule(str(err).removeprefix(": ")) from None
    return value


def _secret(raw: Any) -> Any:
    value = _secrets(raw)
    if len(value.split()) != 1:
        raise _rule("must be one webhook secret (whsec_ and base64)")
    return value


def _url(raw: Any) -> Any:
    value = str(raw).strip()
    if not re.match(r"^https?://[^/\s]+", value):
        raise _rule(f"must be an http:// or https:// URL, not {value!r}")
    return value


def _file(raw: Any) -> Any:
    path = Path(str(raw).strip())
    if not path.is_file():
        raise _rule(f"no such file: {str(path)!r}")
    return path


def _bind(raw: Any) -> Any:
    value = str(raw).strip()
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise _rule(f"must be HOST:PORT (e.g. 0.0.0.0:9464), not {value!r}")
    return value


def _name(what: str, dots: bool) -> Any:
    pattern = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$" if dots else r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

    def check(raw: Any) -> Any:
        value = str(raw).strip()
        if not pattern.match(value) or len(value) > 200:
            allowed = "letters, digits, '.', '_' and '-'" if dots else "letters, digits, '_' and '-' (no '.')"
            raise _rule(f"must be a {what} of {allowed}, not {value!r}")
        return value

    return check


Flag = Annotated[bool, BeforeValidator(_flag)]
Port = Annotated[int, BeforeValidator(_port)]
Seconds = Annotated[float, BeforeValidator(_seconds)]
Count = Annotated[int, BeforeValidator(_count)]
Email = Annotated[str, BeforeValidator(_email)]
Locale = Annotated[str, BeforeValidator(_locale)]
WebhookSecrets = Annotated[str, BeforeValidator(_secrets)]
WebhookSecret = Annotated[str, BeforeValidator(_secret)]
Url = Annotated[str, BeforeValidator(_url)]
File = Annotated[Path, BeforeValidator(_file)]
Bind = Annotated[str, BeforeValidator(_bind)]
DeploymentName = Annotated[str, BeforeValidator(_name("deployment name", dots=False))]
BuildId = Annotated[str, BeforeValidator(_name("build id", dots=True))]


def _doc(text: str, kind: str, *, secret: bool = False) -> dict[str, Any]:
    return {"description": text, "json_schema_extra": {"kind": kind, "secret": secret}}


# ---------------------------------------------------------- the declaration


class AmendsEnv(BaseSettings):
    """The worker's ``AMENDS_*`` variables; each field is ``AMENDS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, case_sensitive=False, env_ignore_empty=True, extra="ignore",
        validate_default=False,
    )
    # The mapping read instead of os.environ (Settings.from_env(env)); set for one construction.
    environ: ClassVar[contextvars.ContextVar[Mapping[str, str] | None]] = contextvars.ContextVar(
        "amends_environ", default=None)

    secrets_dir: str | None = Field(None, **_doc(
        "Directory of secret files named like the variables (a variable set in the environment wins). "
        f"Unset: {DEFAULT_SECRETS_DIR} if it exists.", "directory"))
    # Temporal
    task_queue: str = Field("amends", **_doc("Task queue the worker polls and the CLI sends to.", "text"))
    deployment_name: DeploymentName = Field("amends", **_doc(
        "Worker Versioning: the deployment this worker belongs to (docs/deploying-versions.md).", "name"))
    build_id: BuildId | None = Field(None, **_doc(
        "Worker Versioning: this worker's build id (e.g. the image tag or git commit). Unset: versioning off.",
        "build id"))
    graceful_shutdown: Seconds = Field(30.0, **_doc(
        "Seconds a stopping worker lets activities in flight finish; match the termination grace period.",
        "seconds"))
    metrics_bind: Bind | None = Field(None, **_doc(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (docs/metrics.md). Unset: none.", "HOST:PORT"))
    # Capacity of one worker process (docs/performance.md, "Scale on one machine": measured by bench.scale)
    max_cached_workflows: Count = Field(1000, **_doc(
        "Incidents a worker keeps in memory between their steps (the sticky cache); one evicted replays its "
        "history on its next step.", "count"))
    max_concurrent_workflow_tasks: Count = Field(20, **_doc(
        "Workflow tasks a worker runs at once (the SDK's 100 stalled a burst of opens on 2 cores: "
        "docs/performance.md).", "count"))
    max_concurrent_activities: Count = Field(100, **_doc(
        "Activities (notices, refunds, webhooks, pages) a worker runs at once.", "count"))
    max_concurrent_local_activities: Count = Field(100, **_doc(
        "Local activities (the SLA policy, trusted keys, the business clock, credentials) a worker runs at once.",
        "count"))
    workflow_task_pollers: Count = Field(5, **_doc(
        "Most long polls a worker keeps open for workflow tasks.", "count"))
    activity_task_pollers: Count = Field(5, **_doc(
        "Most long polls a worker keeps open for activity tasks.", "count"))
    # Policy and trust
    sla_policy: File | None = Field(None, **_doc(
        "The SLA policy file (TOML or JSON). Unset: the built-in worker/sla_default.toml.", "file"))
    identity: File | None = Field(None, **_doc(
        "Identity file (TOML): the issuers whose credentials incidents accept. Required by `amends worker`.",
        "file"))
    codec_keys: File | None = Field(None, **_doc(
        "Payload key file (`amends codec-key`); every payload is sealed with it. Required outside `amends dev`.",
        "file"))
    codec_key_id: str | None = Field(None, **_doc(
        "The key of AMENDS_CODEC_KEYS that seals new payloads. Unset: the file's last key.", "text"))
    # Stripe
    stripe_api_key: str | None = Field(None, **_doc(
        "Stripe secret key for refunds and coupons. Required by `amends worker`; the development "
        "stand-in's key is refused.", "secret", secret=True))
    stripe_api_base: Url | None = Field(None, **_doc(
        "Stripe API base URL. Unset: api.stripe.com (localstripe for the development key).", "URL"))
    # Mail
    smtp_host: str = Field("localhost", **_doc("Mail relay host.", "host"))
    smtp_port: Port | None = Field(None, **_doc(
        "Mail relay port. Unset: 465 with AMENDS_SMTP_TLS, 587 for another host, 1025 (the development sink) "
        "on this machine.", "port"))
    smtp_username: str | None = Field(None, **_doc("Mail relay user name.", "text"))
    smtp_password: str | None = Field(None, **_doc("Mail relay password.", "secret", secret=True))
    smtp_starttls: Flag | None = Field(None, **_doc(
        "Upgrade the relay connection with STARTTLS, and refuse a relay that cannot. Unset: on for a relay "
        "on another host; on this machine, if the relay offers it. `amends worker` refuses off to another "
        "host unless AMENDS_SMTP_TLS is on.", "boolean"))
    smtp_tls: Flag = Field(False, **_doc("Implicit TLS from the first byte (SMTPS, port 465).", "boolean"))
    mail_from: Email = Field("care@example.com", **_doc("Sender address of every notice.", "e-mail"))
    company: str = Field("Amends Demo Co.", **_doc("The company's name in notices.", "text"))
    executive: str = Field("The founders", **_doc("Who signs the executive apology.", "text"))
    care_name: str = Field("Customer care", **_doc("Name of the care contact.", "text"))
    care_email: Email | None = Field(None, **_doc(
        "Care contact: customers' replies, and pages of incidents without an owner. Required by "
        "`amends worker`.", "e-mail"))
    default_locale: Locale = Field("en", **_doc(
        "Customers' language when a report gives none (a language amends has notices in).", "BCP 47 tag"))
    # Webhooks
    webhook_secret: WebhookSecret | None = Field(None, **_doc(
        "Standard Webhooks secret (whsec_ and base64) signing the requests of every receiver without secrets "
        "of its own. Required by `amends worker` unless every receiver has its own.",
        "secret", secret=True))
    work_orders_webhook_secret: WebhookSecrets | None = Field(None, **_doc(
        "The work-order receiver's own secrets (space-separated while one rotates: each signs every "
        "request).", "secret", secret=True))
    billing_webhook_secret: WebhookSecrets | None = Field(None, **_doc(
        "The billing receiver's own secret(s).", "secret", secret=True))
    notices_webhook_secret: WebhookSecrets | None = Field(None, **_doc(
        "The notices receiver's own secret(s).", "secret", secret=True))
    crm_webhook_secret: WebhookSecrets | None = Field(None, **_doc(
        "The CRM receiver's own secret(s).", "secret", secret=True))
    escalations_webhook_secret: WebhookSecrets | None = Field(None, **_doc(
        "The escalation pages receiver's own secret(s).", "secret", secret=True))
    work_orders_url: Url | None = Field(None, **_doc("Where work orders go. Unset: none sent.", "URL"))
    billing_url: Url | None = Field(None, **_doc("Where balance waivers go.", "URL"))
    notices_url: Url | None = Field(None, **_doc("Where notices for SMS and in-app messages go.", "URL"))
    crm_url: Url | None = Field(None, **_doc("Where red flags go.", "URL"))
    escalations_url: Url | None = Field(None, **_doc("Where escalation pages go by webhook.", "URL"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = cls.environ.get()
        env = os.environ if environ is None else environ
        sources: list[PydanticBaseSettingsSource] = [init_settings, _MappingSource(settings_cls, env)]
        folder = secrets_dir(env)
        if folder is not None:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=folder))
        return tuple(sources)

    @staticmethod
    def variable(field: str) -> str:
        return PREFIX + field.upper()


class _MappingSource(EnvSettingsSource):
    """The environment source of pydantic-settings, reading a given mapping (os.environ, or a test's dict)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._env.items() if v != ""}


def secrets_dir(env: Mapping[str, str]) -> Path | None:
    """``AMENDS_SECRETS_DIR`` (which must exist), else ``/run/secrets`` if it exists, else none."""
    named = env.get(SECRETS_DIR_ENV, "").strip()
    if named:
        if not Path(named).is_dir():
            raise ConfigError(f"{SECRETS_DIR_ENV}: no such directory: {named!r}")
        return Path(named)
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


def read_env(env: Mapping[str, str] | None = None) -> AmendsEnv:
    """The worker's variables from ``env`` (default: the environment) and the secrets directory, checked."""
    token = AmendsEnv.environ.set(env)
    try:
        return AmendsEnv()
    except ValidationError as err:
        raise ConfigError("; ".join(_explain(e) for e in err.errors())) from None
    finally:
        AmendsEnv.environ.reset(token)


def read_default(field: str) -> Any:
    """The declared default of ``field``: one source for the settings built without the environment."""
    return AmendsEnv.model_fields[field].default


def _explain(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = AmendsEnv.variable(field)
    if error["type"] == "amends_rule":
        return f"{name}: {error['msg']}"
    info = AmendsEnv.model_fields.get(field)
    secret = bool(info and isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret"))
    shown = "" if secret else f", not {error.get('input')!r}"
    return f"{name}: {error['msg']}{shown}"


# ------------------------------------------------------------ the reference


def _default(field: str) -> str:
    value = AmendsEnv.model_fields[field].default
    if value is None:
        return ""
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def table() -> str:
    """The Markdown table of every variable: name, kind, default, what it does (docs/configuration.md)."""
    rows = ["| variable | kind | default | what |", "|---|---|---|---|"]
    for field, info in AmendsEnv.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        rows.append(f"| `{AmendsEnv.variable(field)}` | {extra.get('kind', '')} | {_default(field)} | "
                    f"{info.description or ''} |")
    return "\n".join(rows) + "\n"


DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
BEGIN, END = "<!-- begin: generated by python -m worker.settings -->\n", "<!-- end: generated -->\n"


def render_doc(text: str) -> str:
    """``text`` (docs/configuration.md) with the generated table between its markers replaced by today's."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + BEGIN + table() + END + tail


# Every receiver has its pair of variables in the declaration.
assert all(f"{t}_webhook_secret" in AmendsEnv.model_fields and f"{t}_url" in AmendsEnv.model_fields
           for t in TARGETS)

if __name__ == "__main__":
    DOC.write_text(render_doc(DOC.read_text()))
    print(f"wrote the table of {len(AmendsEnv.model_fields)} variables in {DOC}")

"""A worker with a setting it cannot use exits 2 naming the variable and the rule, without a traceback.

Every rule lives in the one declaration of the variables (``worker.settings``); the checks that only
``amends worker`` makes (missing secrets, development defaults) in ``Settings.refuse_development_defaults``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from activities.webhooks import DEV_WEBHOOK_SECRET
from tests.support.codec import ENV as CODEC_ENV
from tests.support.identity import IDENTITY_FILE
from worker.cli import cli
from worker.config import LOCAL_STRIPE_KEY, Settings
from worker.processes import free_port
from worker.settings import DOC, render_doc

AMENDS = Path(sys.executable).parent / "amends"
GOOD = {
    "AMENDS_IDENTITY": str(IDENTITY_FILE), "AMENDS_CARE_EMAIL": "care@example.com",
    "AMENDS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
    "AMENDS_STRIPE_API_KEY": "sk_test_amends_config", "AMENDS_STRIPE_API_BASE": "http://127.0.0.1:9",
}


@pytest.mark.parametrize(("variable", "value", "rule"), [
    ("AMENDS_SMTP_PORT", "abc", "must be a port number from 1 to 65535, not 'abc'"),
    ("AMENDS_SMTP_STARTTLS", "maybe", "must be one of 1, true, yes, on or 0, false, no, off, not 'maybe'"),
    ("AMENDS_CARE_EMAIL", "care-at-example", "must be an e-mail address, not 'care-at-example'"),
    ("AMENDS_MAIL_FROM", "@example.com", "must be an e-mail address"),
    ("AMENDS_GRACEFUL_SHUTDOWN", "-1", "must be 0 or more seconds"),
    ("AMENDS_WEBHOOK_SECRET", "hunter2", "a webhook secret starts with whsec_"),
    ("AMENDS_CARE_EMAIL", None, "is not set"),
    ("AMENDS_WEBHOOK_SECRET", None, "is not set"),
    ("AMENDS_IDENTITY", None, "is not set"),
    ("AMENDS_STRIPE_API_KEY", None, "is not set"),
    # Every kind of value has its rule, named with its variable.
    ("AMENDS_SMTP_TLS", "sometimes", "must be one of 1, true, yes, on or 0, false, no, off, not 'sometimes'"),
    ("AMENDS_SMTP_PORT", "70000", "must be a port number from 1 to 65535, not '70000'"),
    ("AMENDS_GRACEFUL_SHUTDOWN", "soon", "must be a number of seconds, not 'soon'"),
    ("AMENDS_DEFAULT_LOCALE", "fr", "'fr' is not a BCP 47 tag of a language amends writes notices in"),
    ("AMENDS_IDENTITY", "/nonexistent/identity.toml", "no such file: '/nonexistent/identity.toml'"),
    ("AMENDS_SLA_POLICY", "/nonexistent/sla.toml", "no such file"),
    ("AMENDS_BILLING_URL", "billing.example.com", "must be an http:// or https:// URL, not 'billing.example.com'"),
    ("AMENDS_CRM_WEBHOOK_SECRET", "hunter2", "a webhook secret starts with whsec_"),
    ("AMENDS_METRICS_BIND", "9464", "must be HOST:PORT (e.g. 0.0.0.0:9464), not '9464'"),
    ("AMENDS_BUILD_ID", "v1 beta", "must be a build id of letters, digits"),
    ("AMENDS_DEPLOYMENT_NAME", "amends.prod", "(no '.')"),
    ("AMENDS_SECRETS_DIR", "/nonexistent/secrets", "no such directory: '/nonexistent/secrets'"),
    ("AMENDS_MAX_CACHED_WORKFLOWS", "lots", "must be a whole number of 1 or more, not 'lots'"),
    ("AMENDS_WORKFLOW_TASK_POLLERS", "0", "must be a whole number of 1 or more, not '0'"),
    # Development defaults, given explicitly, are refused outside `amends dev`.
    ("AMENDS_STRIPE_API_KEY", LOCAL_STRIPE_KEY, "is the development stand-in's key"),
    ("AMENDS_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET, "is the public development secret"),
])
def test_a_setting_it_cannot_use_exits_2_naming_the_variable(variable, value, rule, monkeypatch):
    """In process (the CLI's own command), so that the cases cost no interpreter each."""
    ran = _worker(monkeypatch, {variable: value})
    assert ran.exit_code == 2, ran.output
    assert f"invalid: {variable}" in ran.output and rule in ran.output
    assert ran.exception is None or isinstance(ran.exception, SystemExit)  # a message, not a crash


def _worker(monkeypatch, changes: dict[str, str | None], *args: str):
    """``amends worker`` in process with the good settings, ``changes`` applied (None: unset)."""
    for name in [k for k in os.environ if k.startswith(("AMENDS_", "TEMPORAL_"))]:
        monkeypatch.delenv(name)
    for name, setting in (CODEC_ENV | GOOD).items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # never reached: the settings stop it first
    for name, setting in changes.items():
        if setting is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, setting)
    return CliRunner().invoke(cli, ["worker", *args])


def test_smtp_in_plain_text_to_another_host_is_refused_and_names_the_variable(monkeypatch):
    ran = _worker(monkeypatch, {"AMENDS_SMTP_HOST": "smtp.example.com", "AMENDS_SMTP_STARTTLS": "off"})
    assert ran.exit_code == 2, ran.output
    assert ran.output.startswith("invalid: AMENDS_SMTP_STARTTLS is off for the relay smtp.example.com:587")
    assert "plain text" in ran.output
    assert ran.exception is None or isinstance(ran.exception, SystemExit)


def test_smtp_uses_starttls_or_implicit_tls_by_default_and_the_local_sink_stays_plain():
    remote = Settings.from_env({"AMENDS_SMTP_HOST": "smtp.example.com"}).mail
    assert (remote.start_tls, remote.use_tls, remote.port) == (True, False, 587)  # STARTTLS required
    smtps = Settings.from_env({"AMENDS_SMTP_HOST": "smtp.example.com", "AMENDS_SMTP_TLS": "yes"}).mail
    assert (smtps.start_tls, smtps.use_tls, smtps.port) == (False, True, 465)
    # The development sink on this machine offers no STARTTLS: used only if offered (aiosmtplib's None).
    local = Settings.from_env({}).mail
    assert (local.host, local.port, local.start_tls, local.use_tls) == ("localhost", 1025, None, False)
    Settings.from_env(GOOD | {"AMENDS_SMTP_STARTTLS": "off"}).refuse_development_defaults()  # local may be plain


def test_secrets_come_from_a_mounted_directory_and_the_environment_wins(tmp_path):
    billing, shared = "whsec_" + base64.b64encode(os.urandom(24)).decode(), GOOD["AMENDS_WEBHOOK_SECRET"]
    (tmp_path / "AMENDS_WEBHOOK_SECRET").write_text(shared + "\n")  # as Docker and Kubernetes mount them
    (tmp_path / "AMENDS_BILLING_WEBHOOK_SECRET").write_text(billing)
    (tmp_path / "AMENDS_STRIPE_API_KEY").write_text("sk_live_from_a_file\n")
    env = {"AMENDS_SECRETS_DIR": str(tmp_path), "AMENDS_STRIPE_API_KEY": "sk_live_from_the_environment"}
    settings = Settings.from_env(env)
    assert settings.webhooks.secret == shared and settings.webhooks.secrets_for("billing") == [billing]
    assert settings.stripe_api_key == "sk_live_from_the_environment"
    (tmp_path / "AMENDS_SMTP_PORT").write_text("submission")
    with pytest.raises(ValueError, match="^AMENDS_SMTP_PORT: must be a port number from 1 to 65535, not 'submission'$"):
        Settings.from_env(env)


def test_a_bad_secret_is_named_but_never_shown(tmp_path):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"AMENDS_WEBHOOK_SECRET": "whsec_not base64 at all!"})
    assert str(refused.value).startswith("AMENDS_WEBHOOK_SECRET: ") and "not base64 at all" not in str(refused.value)


def test_the_connection_error_shows_the_address_of_the_profile(monkeypatch, tmp_path):
    """--profile and --config-file as the `temporal` CLI takes them; the message names the address used."""
    closed = f"127.0.0.1:{free_port()}"
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.default]\naddress = "127.0.0.9:1"\n\n[profile.prod]\naddress = "{closed}"\n')
    # TEMPORAL_ADDRESS would win over the profile's address, as it does for the `temporal` CLI.
    ran = _worker(monkeypatch, {"TEMPORAL_ADDRESS": None}, "--profile", "prod", "--config-file", str(config))
    assert ran.exit_code == 3, ran.output
    assert ran.output.startswith(f"unavailable: cannot connect to Temporal at {closed}: ")
    shown = CliRunner().invoke(cli, ["incident", "--profile", "prod", "--config-file", str(config),
                                     "--timeout", "5", "show", "k"])
    assert shown.exit_code == 3 and f"cannot connect to Temporal at {closed}" in shown.output, shown.output


def test_a_profile_that_is_not_there_exits_2(monkeypatch, tmp_path):
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.default]\naddress = "127.0.0.1:1"\n')
    ran = _worker(monkeypatch, {}, "--profile", "staging", "--config-file", str(config))
    assert ran.exit_code == 2 and ran.output.startswith("invalid: --profile: Profile 'staging' not found"), ran.output
    ran = _worker(monkeypatch, {}, "--config-file", str(tmp_path / "missing.toml"))
    assert ran.exit_code == 2 and "invalid: --config-file: no such file" in ran.output, ran.output


def test_the_configuration_reference_is_generated_from_the_declaration():
    """docs/configuration.md lists every variable with its kind and default; `python -m worker.settings` writes it."""
    assert DOC.read_text() == render_doc(DOC.read_text()), "stale: run `python -m worker.settings`"


async def test_the_worker_process_itself_exits_2_without_a_traceback(dev_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AMENDS_"))} | CODEC_ENV | GOOD
    env |= {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host, "AMENDS_SMTP_PORT": "abc"}
    worker = await asyncio.create_subprocess_exec(str(AMENDS), "worker", env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(worker.communicate(), 60)
    assert worker.returncode == 2
    assert err.decode().strip() == "invalid: AMENDS_SMTP_PORT: must be a port number from 1 to 65535, not 'abc'"


def test_booleans_take_the_usual_spellings():
    for value, meant in [("on", True), ("Yes", True), ("1", True), ("off", False), ("no", False), ("0", False)]:
        assert Settings.from_env({"AMENDS_SMTP_STARTTLS": value}).mail.start_tls is meant


def test_the_worker_is_tuned_from_the_environment():
    tuning = Settings.from_env({"AMENDS_MAX_CACHED_WORKFLOWS": "250", "AMENDS_ACTIVITY_TASK_POLLERS": "2"}).tuning
    assert (tuning.max_cached_workflows, tuning.activity_task_pollers) == (250, 2)
    assert Settings().tuning == Settings.from_env({}).tuning  # one default, whichever way the settings are made


def test_amends_dev_checks_the_same_rules_before_it_starts_anything(monkeypatch, tmp_path):
    monkeypatch.setenv("AMENDS_SMTP_STARTTLS", "perhaps")
    ran = CliRunner().invoke(cli, ["dev", "--data", str(tmp_path)])
    assert ran.exit_code == 2 and ran.output.startswith("invalid: AMENDS_SMTP_STARTTLS: must be one of"), ran.output
    assert not (tmp_path / "temporal.db").exists()

"""A worker with a setting it cannot use exits 2 naming the variable and the rule, without a traceback."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.codec import ENV as CODEC_ENV
from tests.support.identity import IDENTITY_FILE
from worker.cli import cli
from worker.config import Settings

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
])
def test_a_setting_it_cannot_use_exits_2_naming_the_variable(variable, value, rule, monkeypatch):
    """In process (the CLI's own command), so that eleven cases cost no eleven interpreters."""
    for name in [k for k in os.environ if k.startswith("AMENDS_")]:
        monkeypatch.delenv(name)
    for name, setting in (CODEC_ENV | GOOD).items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # never reached: the settings stop it first
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    ran = CliRunner().invoke(cli, ["worker"])
    assert ran.exit_code == 2, ran.output
    assert f"invalid: {variable}" in ran.output and rule in ran.output
    assert ran.exception is None or isinstance(ran.exception, SystemExit)  # a message, not a crash


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

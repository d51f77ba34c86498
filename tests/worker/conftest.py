"""Fixtures for the command-line tests: the environment an ``amends`` subprocess runs in."""

from __future__ import annotations

import pytest

from tests.support.cli import base_env


@pytest.fixture(scope="module")
def cli_env(dev_env, dev_worker, settings) -> dict[str, str]:
    return base_env(dev_env.client.service_client.config.target_host, settings.task_queue)

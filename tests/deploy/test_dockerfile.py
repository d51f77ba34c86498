"""deploy/Dockerfile passes hadolint with no finding at all, and hadolint does fail a broken copy."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.support.deploy import BIN, DEPLOY, hadolint
from worker.metrics import DEV_PORT

DOCKERFILE = DEPLOY / "Dockerfile"


def test_hadolint_is_the_binary_of_the_wheel():
    # Installed by the test extra into this virtualenv: nothing to download when the checks run.
    assert (BIN / "hadolint").is_file()
    assert shutil.which("hadolint", path=str(BIN)) == str(BIN / "hadolint")


def test_the_dockerfile_has_no_hadolint_finding():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_an_image_that_runs_as_root(tmp_path: Path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"))
    result = hadolint(broken)
    assert result.returncode != 0
    assert "DL3002" in result.stdout  # Last USER should not be root


def test_hadolint_fails_an_unpinned_install(tmp_path: Path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace('"uv==${UV_VERSION}"', "uv"))
    result = hadolint(broken)
    assert result.returncode != 0
    assert "DL3013" in result.stdout  # Pin versions in pip


def test_the_image_runs_the_worker_as_a_user_and_serves_metrics_where_it_says():
    text = DOCKERFILE.read_text()
    final = text.split("\nFROM ")[-1]  # the runtime stage
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert 'ENTRYPOINT ["amends"]' in final and 'CMD ["worker"]' in final
    assert "tzdata" in final
    port = re.search(r"AMENDS_METRICS_BIND=0\.0\.0\.0:(\d+)", final)
    assert port and int(port.group(1)) == DEV_PORT
    assert re.search(rf"^EXPOSE {DEV_PORT}$", final, re.M)
    assert f"http://127.0.0.1:{DEV_PORT}/metrics" in final  # the HEALTHCHECK asks the worker's endpoint

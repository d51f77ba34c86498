"""uv.lock is the lock every install takes: it matches pyproject.toml, and a dependency changed in
pyproject.toml without `make lock` stops the install, saying what to run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.deploy import BIN, ROOT, run


def uv_lock_check(project: Path, offline: bool = True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    # Offline, a lock that matches is checked from the lock and pyproject.toml alone, never the index.
    return run(BIN / "uv", "lock", "--check", *(["--offline"] if offline else []), cwd=project,
               env={**env, "UV_PYTHON_DOWNLOADS": "never"})


def test_the_lock_matches_pyproject():
    result = uv_lock_check(ROOT)
    assert result.returncode == 0, result.stderr


def test_a_dependency_changed_without_updating_the_lock_is_caught(tmp_path: Path):
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "Babel>=2.12",\n', ""))
    # A lock that no longer matches is resolved again to say so: that reads the package index (reachable
    # wherever the install itself is), which a fresh machine's empty uv cache cannot stand in for.
    result = uv_lock_check(tmp_path, offline=False)
    assert result.returncode != 0
    assert "uv.lock` needs to be updated" in result.stderr and "uv lock" in result.stderr


def test_the_makefile_installs_from_the_lock_with_the_uv_it_pins():
    dry = run("make", "-n", "--always-make", ".venv/.installed-test", cwd=ROOT)
    assert dry.returncode == 0, dry.stderr
    assert "uv sync --locked" in dry.stdout
    locked = next(line for line in (ROOT / "uv.lock").read_text().split("[[package]]") if '\nname = "uv"\n' in line)
    version = locked.split('version = "', 1)[1].split('"', 1)[0]
    assert f"'uv=={version}'" in dry.stdout

"""The image's build context installs from the lock and starts, in a clean virtualenv, exactly as
deploy/Dockerfile's build stage does it: the files its COPY lines take (and its .dockerignore lets
through), its ENV, then its `uv sync` RUN lines; uv's cache is the one the Makefile's install warmed."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.deploy import BIN, DEPLOY, ROOT, run

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions(stage: int) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one stage of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        word, _, args = line.strip().partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((word.upper(), args.strip()))
    return stages[stage]


def ignored(path: str) -> bool:
    """Whether deploy/Dockerfile.dockerignore keeps ``path`` out of the build context (last match wins)."""
    out = False
    for rule in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        keep = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            out = not keep
    return out


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory) -> Path:
    context = tmp_path_factory.mktemp("context")
    venv = tmp_path_factory.mktemp("image") / "amends"
    build = instructions(0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_", "PYTHON"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"  # the uv of the test extra: the version the image pins
    for word, args in build:
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
        elif word == "COPY":
            *sources, _dest = shlex.split(args)
            assert not any(s.startswith("--") for s in sources)  # no COPY --from in the build stage
            for source in sources:
                src = source.rstrip("/")
                assert not ignored(src), f"the Dockerfile copies {src}, which its .dockerignore leaves out"
                target = context / src
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(ROOT / src, target)
        elif word == "RUN" and args.startswith("uv sync"):
            # The image's environment goes to a temporary directory, its Python is the one running the tests.
            # Byte-compiling and copying out of uv's cache make the image start faster, not install anything
            # else; here they would only triple the time.
            env.update(UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON=sys._base_executable)
            env.pop("UV_COMPILE_BYTECODE", None)
            env.pop("UV_LINK_MODE", None)
            result = run("bash", "-c", args, cwd=context, env=env, timeout=300)
            assert result.returncode == 0, result.stderr
    return venv


def test_the_image_pins_the_uv_the_lock_pins():
    arg = next(a for w, a in instructions(0) if w == "ARG" and a.startswith("UV_VERSION="))
    locked = re.search(r'^name = "uv"\nversion = "(.*)"$', (ROOT / "uv.lock").read_text(), re.M)
    assert locked and arg == f"UV_VERSION={locked.group(1)}"


def test_the_worker_starts_from_the_image_environment(image_venv: Path):
    result = run(image_venv / "bin" / "amends", "worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "Run the amends worker alone" in result.stdout


def test_the_image_environment_holds_amends_itself_not_the_source_tree(image_venv: Path):
    # amends is installed (not linked to the source tree), with its SLA policy and notice templates.
    result = run(image_venv / "bin" / "python", "-c",
                 "import pathlib, activities, worker; from worker.config import DEFAULT_SLA_POLICY; "
                 "print(worker.__file__, DEFAULT_SLA_POLICY.is_file(), "
                 "any(pathlib.Path(activities.__file__).parent.joinpath('templates').iterdir()))", cwd=image_venv)
    assert result.returncode == 0, result.stderr
    where, policy, templates = result.stdout.split()
    assert where.startswith(str(image_venv)) and "site-packages" in where
    assert (policy, templates) == ("True", "True")


def test_the_codec_server_has_what_it_needs_in_the_image(image_venv: Path):
    # Without the token it refuses, with its rule and exit 2: it got past importing its web server.
    env = {"PATH": os.environ["PATH"], "HOME": str(image_venv)}
    result = run(image_venv / "bin" / "amends", "codec-server", env=env, cwd=image_venv)
    assert result.returncode == 2, result.stderr
    assert "AMENDS_CODEC_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_the_image_ships_no_test_or_dev_tools(image_venv: Path):
    for module in ("pytest", "localstripe", "aiosmtpd"):
        result = run(image_venv / "bin" / "python", "-c", f"import {module}", cwd=image_venv)
        assert result.returncode != 0, f"{module} is installed in the image"


IMAGE_PLATFORMS = ("x86_64", "aarch64")  # linux/amd64 and linux/arm64
GLIBC_MINOR = 41  # Debian 13 (trixie), the base image's


def test_every_locked_package_of_the_image_has_a_wheel_for_its_python_and_platforms():
    """The image's Python (ARG PYTHON_VERSION) is not the one running these tests: each package it
    installs has a wheel for it on amd64 and arm64, so building the image compiles nothing."""
    import tomllib

    from packaging.markers import Marker
    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import canonicalize_name, parse_wheel_filename

    python = re.search(r"^ARG PYTHON_VERSION=(\d+)\.(\d+)$", DOCKERFILE.read_text(), re.M)
    assert python
    py = (int(python.group(1)), int(python.group(2)))
    exported = run(BIN / "uv", "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header",
                   "--no-annotate", cwd=ROOT)
    assert exported.returncode == 0, exported.stderr
    environment = {"python_version": f"{py[0]}.{py[1]}", "python_full_version": f"{py[0]}.{py[1]}.0",
                   "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    lock = {canonicalize_name(p["name"]): p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    for arch in IMAGE_PLATFORMS:
        platforms = [f"manylinux_2_{m}_{arch}" for m in range(GLIBC_MINOR, 16, -1)] + [f"manylinux2014_{arch}",
                                                                                        f"linux_{arch}"]
        supported = {*cpython_tags(py, platforms=platforms), *compatible_tags(py, platforms=platforms)}
        for line in exported.stdout.splitlines():
            requirement, _, marker = line.partition(" ; ")
            if not requirement or (marker and not Marker(marker).evaluate({**environment,
                                                                           "platform_machine": arch})):
                continue
            name = canonicalize_name(requirement.split("==")[0])
            wheels = [parse_wheel_filename(w["url"].rsplit("/", 1)[1])[3] for w in lock[name].get("wheels", [])]
            assert any(tag in supported for tags in wheels for tag in tags), \
                f"{requirement}: no wheel for Python {py[0]}.{py[1]} on linux/{arch}"

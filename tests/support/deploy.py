"""The checkers of deploy/ as the test command runs them, each a tool shipped by a wheel of the
``test`` extra (nothing is fetched at run time), and the few things they share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent  # the virtualenv's scripts: hadolint, check-jsonschema, uv

# Kubernetes versions the manifests must be valid for: the oldest minor we support and the newest
# whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    """hadolint with every finding an error, down to style."""
    return run(BIN / "hadolint", "--no-color", "--failure-threshold", "style", dockerfile)


def check_compose(compose: Path) -> subprocess.CompletedProcess[str]:
    """The compose file against the Compose Specification's JSON schema (vendored by check-jsonschema)."""
    return run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", compose)


class KustomizeError(Exception):
    """The kustomization cannot be built: a file it names is missing, or it uses what this build does not know."""


# What render() understands; any other field of a kustomization is refused rather than ignored.
KNOWN = {"apiVersion", "kind", "labels", "resources", "images", "configMapGenerator"}


def render(base: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build base`` yields, for the fields this base uses (no kustomize binary
    ships on PyPI): the resources it lists, the ConfigMaps it generates (without the hash suffix), its
    labels on every object's metadata and its image tags."""
    kz = yaml.safe_load((base / "kustomization.yaml").read_text())
    unknown = set(kz) - KNOWN
    if unknown:
        raise KustomizeError(f"kustomization.yaml: fields these checks cannot build: {sorted(unknown)}")

    def read(name: str) -> str:
        path = base / name
        if not path.is_file():
            raise KustomizeError(f"kustomization.yaml names {name}, which does not exist in {base}")
        return path.read_text()

    objects: list[dict[str, Any]] = []
    for name in kz.get("resources", []):
        objects += [doc for doc in yaml.safe_load_all(read(name)) if doc]
    for gen in kz.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for f in gen.get("files", []):
            key, _, src = f.partition("=")
            data[key if src else Path(key).name] = read(src or key)
        for f in gen.get("envs", []):
            for line in read(f).splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    k, sep, v = line.partition("=")
                    if not sep:
                        raise KustomizeError(f"{f}: {line!r} is not KEY=VALUE")
                    data[k.strip()] = v
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    for label in kz.get("labels", []):
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    tags = {i["name"]: i.get("newTag") for i in kz.get("images", [])}
    for obj in objects:
        for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if c["image"] in tags:
                c["image"] = f"{c['image']}:{tags[c['image']]}"
    return objects


def validate_k8s(objects: list[dict[str, Any]], version: str) -> list[str]:
    """Every object against the Kubernetes schemas of ``version``, strictly (an unknown field is an error)."""
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            errors.append(f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}: {err.message}")
    return errors

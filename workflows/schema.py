"""The JSON Schema of every input, for backends in other languages (``amends schema``).

One file per update (named after it, from the step registry), ``open`` for
the workflow's start input, ``opened`` for the update an open is sent with
(update-with-start) and ``snapshot`` for the query's answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from workflows.inputs import IncidentReport, Opening
from workflows.snapshot import Snapshot, StepResult
from workflows.steps import REGISTRY, StepSpec

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def models(steps: Mapping[str, StepSpec[Any]] = REGISTRY) -> dict[str, tuple[type[BaseModel], str]]:
    """File stem -> (model, mode): inputs as accepted, the snapshot as sent."""
    out: dict[str, tuple[type[BaseModel], str]] = {"open": (IncidentReport, "validation"),
                                                   "opened": (Opening, "validation")}
    out.update({name: (spec.input, "validation") for name, spec in steps.items()})
    out["snapshot"] = (Snapshot, "serialization")
    out["step_result"] = (StepResult, "serialization")  # what every step's update answers
    return out


def schema_files(steps: Mapping[str, StepSpec[Any]] = REGISTRY) -> dict[str, str]:
    files = {}
    for name, (model, mode) in models(steps).items():
        schema = model.model_json_schema(mode="serialization" if mode == "serialization" else "validation")
        files[f"{name}.schema.json"] = json.dumps({"$schema": JSON_SCHEMA_DIALECT, **schema}, indent=2) + "\n"
    return files

"""Payloads for the bad-input tests: documents drawn from the exported JSON Schemas, then broken.

A small generator over the JSON Schema keywords pydantic writes (objects,
strings with lengths, patterns and formats, integers with bounds, enums,
unions, references, arrays), so that a valid document exists for every
input; ``mutated`` then breaks one place of it the way a careless backend
would: a wrong type, a null, an extreme, unicode or control characters, a
missing or an extra field.
"""

from __future__ import annotations

import functools
import json
import string
from typing import Any

from hypothesis import strategies as st

from workflows.schema import schema_files

Json = Any


@functools.cache
def _schema_texts() -> dict[str, str]:
    return schema_files()  # every input's schema, generated anew by each call: once is enough


def schema(name: str) -> dict[str, Any]:
    return json.loads(_schema_texts()[f"{name}.schema.json"])  # a fresh copy: a draw may change it


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " .,-", min_size=1, max_size=30).filter(str.strip)


def valid(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Json]:
    node = _resolve(node, root)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    for union in ("anyOf", "oneOf"):
        if union in node:
            return st.one_of([valid(n, root) for n in node[union]])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        required = set(node.get("required", ()))
        fields = {k: valid(v, root) for k, v in props.items() if k in required}
        optional = {k: valid(v, root) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(fields, optional=optional)
    if kind == "array":
        low, high = node.get("minItems", 0), min(node.get("maxItems", 3), 3)
        return st.lists(valid(node.get("items", {}), root), min_size=low, max_size=max(low, high))
    if kind == "integer":
        return st.integers(node.get("minimum", node.get("exclusiveMinimum", -1) + 1),
                           min(node.get("maximum", 10**6), 10**6))
    if kind == "number":
        return st.floats(0, 1)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        fmt = node.get("format")
        if fmt == "email":
            return st.sampled_from(["alex@example.com", "care@example.org"])
        if fmt == "date-time":
            return st.sampled_from(["2026-11-20T09:30:00Z", "2026-11-24T17:00:00+01:00"])
        if fmt == "date":
            return st.sampled_from(["2027-01-15", "2027-06-30"])
        if "pattern" in node:
            if node["pattern"] == "^[A-Z]{3}$":
                return st.sampled_from(["USD", "EUR", "JPY"])
            return st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: len(s) <= node.get("maxLength", 200))
        return _TEXT
    return st.just("x")


BREAKERS: list[Json] = [
    None, 50.0, "50.00", "5000", True, -1, 0, 10**15, "", "   ", "a\r\nb", "\u0000", "x" * 12_000,
    "Zoë 🚚 ☃", [], {}, [1] * 60, {"unexpected": 1},
]


@functools.cache
def valid_document(name: str) -> st.SearchStrategy[Json]:
    """Valid documents for input ``name``: the strategy built once per input, not once per draw. Each draw
    is a new document (its leaves from the schema are strings, never shared containers)."""
    root = schema(name)
    return valid(root, root)


@st.composite
def mutated(draw: st.DrawFn, name: str) -> Json:
    """A valid document for input ``name`` with one place broken."""
    doc = draw(valid_document(name))
    paths: list[tuple[Any, Any]] = []

    def walk(node: Json) -> None:
        if isinstance(node, dict):
            for key in list(node):
                paths.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for i in range(len(node)):
                paths.append((node, i))
                walk(node[i])

    walk(doc)
    how = draw(st.sampled_from(["replace", "replace", "drop", "extra"]))
    if how == "extra" or not paths:
        target = doc if isinstance(doc, dict) else {}
        target["not_in_the_contract"] = draw(st.sampled_from(BREAKERS))
        return doc
    parent, key = draw(st.sampled_from(paths))
    if how == "drop" and isinstance(parent, dict):
        del parent[key]
    else:
        parent[key] = draw(st.sampled_from(BREAKERS))
    return doc

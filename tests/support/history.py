"""Reading a workflow's history in tests, and keeping it for the replay test."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

from temporalio.converter import decode_search_attributes

from tests.support.codec import opened_history, opened_json

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def recorded_search_attributes(handle) -> dict:
    """The search attributes as the history recorded them (start, then every upsert).

    Read from the history because the time-skipping server cannot describe a
    workflow whose Datetime attribute was unset.
    """
    seen: dict = {}
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind == "workflow_execution_started_event_attributes":
            attrs = event.workflow_execution_started_event_attributes.search_attributes
        elif kind == "upsert_workflow_search_attributes_event_attributes":
            attrs = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        else:
            continue
        for name, payload in attrs.indexed_fields.items():
            if payload.data in (b"", b"null"):
                seen.pop(name, None)
            else:
                seen[name] = decode_search_attributes(type(attrs)(indexed_fields={name: payload}))[name]
    return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in seen.items()}


async def history_length(handle) -> int:
    return len([e async for e in handle.fetch_history_events()])


async def history_kinds(handle) -> list[str]:
    """The kinds of the events in a workflow's history, e.g. ``timer_started``."""
    return [e.WhichOneof("attributes").removesuffix("_event_attributes") async for e in handle.fetch_history_events()]


WORKFLOW_TASK = ["workflow_task_scheduled", "workflow_task_started", "workflow_task_completed"]


def unwritten(before: list[str], after: list[str]) -> bool:
    """Refused updates wrote nothing between ``before`` and ``after``: no event at all, or only the one workflow
    task the dev server rejects on after an update-with-start open (instead of a speculative one)."""
    return after in (before, before + WORKFLOW_TASK)


async def settled(handle) -> list[str]:
    """Wait until the workflow has no activity in flight and its history stops growing."""
    last: list[str] = []
    for _ in range(400):
        kinds = await history_kinds(handle)
        scheduled = kinds.count("activity_task_scheduled")
        finished = sum(kinds.count(k) for k in ("activity_task_completed", "activity_task_failed",
                                                 "activity_task_timed_out"))
        # A workflow task scheduled or started (say, the first of a run continued as new) is not settled.
        if kinds == last and scheduled == finished and kinds[-1] not in ("workflow_task_scheduled",
                                                                         "workflow_task_started"):
            return kinds
        last = kinds
        await asyncio.sleep(0.05)
    raise AssertionError(f"history did not settle: {last[-5:]}")


async def keep_history(handle, name: str) -> None:
    """With AMENDS_RECORD_HISTORIES=1, store the run's history for the replay test as ``<name>.json``.

    Stored histories are how long-lived incidents are protected from code
    changes: every history kept here must still replay (tests/workflows/test_replay.py).
    A stored history is never overwritten: after a change of the workflow's
    commands, record under a new name and keep the old file beside it.
    It is stored opened (the suite's test keys seal it on the server): what
    replay checks is the workflow's commands, and the codec passes through
    payloads that are not sealed.
    """
    path = HISTORIES / f"{name}.json"
    if os.environ.get("AMENDS_RECORD_HISTORIES") == "1" and not path.exists():
        history = opened_history(await handle.fetch_history())
        path.write_text(without_signatures(history).to_json())


def without_signatures(history):
    """The history with each step's credential cut to its header and claims.

    Replay reads who acted from the claims (validators do not run on
    replay); without its signature a credential is no bearer token, so none
    is committed to the repository.
    """
    for event in history.events:
        if not event.HasField("workflow_execution_update_accepted_event_attributes"):
            continue
        for payload in event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads:
            step = json.loads(payload.data)
            # A step's own update, or the first step an opening takes (in its input).
            for holder in (step, step.get("input")) if isinstance(step, dict) else ():
                if isinstance(holder, dict) and str(holder.get("credential")).count(".") == 2:
                    header, claims, _signature = holder["credential"].split(".")
                    holder["credential"] = f"{header}.{claims}."
            payload.data = json.dumps(step, separators=(",", ":")).encode()
    return history


def nodes(value) -> Iterator[dict]:
    """Every JSON object in ``value``, at any depth."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from nodes(v)
    elif isinstance(value, list):
        for v in value:
            yield from nodes(v)


def _decoded(node: dict) -> str:
    return base64.b64decode(node["data"]).decode("utf-8", "replace")


def raw_text(history_json: str) -> str:
    """The history as anyone with history access reads it: its JSON, and every payload's data base64-decoded."""
    data = [_decoded(n) for n in nodes(json.loads(history_json)) if isinstance(n.get("data"), str)]
    return "\n".join([history_json, *data])


def sealed_payloads(history_json: str) -> list[dict]:
    """The payloads of a history that the codec sealed."""
    return [n for n in nodes(json.loads(history_json))
            if isinstance(n.get("metadata"), dict) and isinstance(n.get("data"), str)
            and base64.b64decode(n["metadata"].get("encoding", "")) == b"binary/encrypted"]


def decoded_payloads(history_json: str) -> str:
    """Every payload of a history (its JSON form), opened and decoded: what anyone with history access and the
    payload keys (through the codec server, say) can read."""
    return "\n".join(_decoded(n) for n in nodes(json.loads(opened_json(history_json)))
                     if "metadata" in n and isinstance(n.get("data"), str))


def commands_by_activation(history) -> list[list[str]]:
    """The events each workflow activation's commands wrote, by event type name (a task's activations split
    where a local activity's marker comes back); an upsert names the attributes it set,
    ``UPSERT_WORKFLOW_SEARCH_ATTRIBUTES(RecoveryStage,StageDeadline)``."""
    from temporalio.api.enums.v1 import EventType

    tasks: list[list[str]] = []  # one list per activation
    for event in history.events:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        if kind == "WORKFLOW_TASK_COMPLETED" or (
                kind == "MARKER_RECORDED" and event.marker_recorded_event_attributes.marker_name != "core_patch"):
            # A local activity's result comes back in an activation of its own, within the same task.
            tasks.append([])
        elif tasks and not kind.startswith(("WORKFLOW_TASK_", "ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED",
                                            "TIMER_FIRED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED")):
            if kind == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
                names = sorted(event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
                kind += "(" + ",".join(names) + ")"
            tasks[-1].append(kind)
    return tasks


def markers(history) -> list[str]:
    """The markers of a history: ``patch:<id>`` for each patch, ``local_activity`` for each local activity."""
    out = []
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            m = event.marker_recorded_event_attributes
            if m.marker_name == "core_patch":
                out.append("patch:" + json.loads(m.details["patch-data"].payloads[0].data)["id"])
            else:
                out.append("local_activity")
    return out

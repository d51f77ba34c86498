"""The suite-wide privacy check: no history any test recorded holds a personal word or a secret in plaintext.

Every Temporal server the suite starts for itself is scanned as it shuts down: the session dev server
(``dev_env``) lists its workflows; the time-skipping servers cannot, so their client records every workflow it
starts (``Started``, a client interceptor) and the scan follows each one's continue-as-new chain back to its first
run. A history is read as anyone with history access reads it (``raw_text``: its JSON, each string unescaped and
each base64 field decoded), and searched for

- the words the tests use (``PRIVATE_WORDS``: the customer's and every member of staff's names, the texts of the
  report, the routing key, the webhook URLs of the session's sink and its secret), any e-mail address of a test
  domain, and
- the personal values the history's own payloads carry, opened with the suite's keys (``carried``): names,
  e-mail addresses, phone numbers and every free-text field of the public contract, whatever a test sent.

One plaintext hit fails the run, naming the workflow and the words. The check's own control is
tests/workflows/test_privacy.py: the same scan on an incident recorded without the codec finds them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Iterable

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)

from tests.support.codec import opened_json
from tests.support.factories import CUSTOMER, EVERY_STAFF_NAME, REDO, report
from tests.support.history import nodes, raw_text

_SAMPLE = report(None)
# The personal words and secrets every test takes from the factories; the sink's URLs and secret are added by
# ``watch_sink`` (they are made per session).
PRIVATE_WORDS: set[str] = {
    _SAMPLE.customer.name, _SAMPLE.what_happened, _SAMPLE.impact, REDO["description"], *EVERY_STAFF_NAME,
    "R0UT1NGKEY",
} - {CUSTOMER.name}
# Any address at a test domain: customers', owners' and escalation targets' e-mails.
TEST_DOMAIN = re.compile(r"@example\.(?:com|org|net)\b")
LOCAL_PART = re.compile(r"[\w.+-]+$")
# The fields of the public contract that carry a person or free text (workflows/inputs.py).
PERSONAL_FIELDS = frozenset({
    "name", "email", "phone", "known_as", "staff_involved", "what_happened", "impact", "needs", "note", "reason",
    "description", "root_cause", "condition", "action", "summary",
})
MACHINES = ("system", "backend")  # actors that are no person: amends itself ("amends"), a shop's backend
SHORTEST = 6  # shorter values (an enum, "Bob") would match ids and type names by chance


def watch_sink(url: str, secret: str) -> None:
    """The session's webhook receiver: its URLs and its secret must never be in a history."""
    PRIVATE_WORDS.update({url, secret})


def readable(history_json: str) -> str:
    """What anyone with history access reads: ``raw_text`` (the JSON and every payload's data decoded), every
    string unescaped, and every other base64 field (metadata, memo, headers) decoded."""
    strings = []
    for value in _strings(json.loads(history_json)):
        strings.append(value)
        try:
            strings.append(base64.b64decode(value, validate=True).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            pass
    return "\n".join([raw_text(history_json), *strings])


def _strings(value) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def carried(history_json: str) -> set[str]:
    """The names, e-mail addresses and free texts the history's payloads carry, opened with the suite's keys."""
    found: set[str] = set()
    for node in nodes(json.loads(opened_json(history_json))):
        if not (isinstance(node.get("metadata"), dict) and isinstance(node.get("data"), str)):
            continue
        try:
            value = json.loads(base64.b64decode(node["data"]))
        except (ValueError, binascii.Error):
            continue
        for obj in nodes(value):
            for key, field in obj.items():
                if key not in PERSONAL_FIELDS or (key == "name" and obj.get("role") in MACHINES):
                    continue
                for text in field if isinstance(field, list) else [field]:
                    if isinstance(text, str) and len(text) >= SHORTEST:
                        found.add(text)
    return found


def plaintext_hits(history_json: str, words: Iterable[str] = ()) -> dict[str, int]:
    """Each personal word or secret readable in the history, with its count: ``words``, ``PRIVATE_WORDS``, the
    values its own payloads carry, and any e-mail address of a test domain."""
    text = readable(history_json)
    hits = {w: text.count(w) for w in {*words, *PRIVATE_WORDS, *carried(history_json)} if w and w in text}
    for address in test_emails(text):
        hits[address] = text.count(address)
    return hits


def test_emails(text: str) -> set[str]:
    """Every address at a test domain in ``text`` (found from the domain back: a pattern that starts at every
    character is quadratic on kilobytes of base64)."""
    found = set()
    for at in TEST_DOMAIN.finditer(text):
        local = LOCAL_PART.search(text, max(0, at.start() - 64), at.start())
        if local:
            found.add(local.group() + at.group())
    return found


class Started(Interceptor):
    """Records every workflow its client starts (the time-skipping server cannot list them)."""

    def __init__(self) -> None:
        self.runs: set[tuple[str, str | None]] = set()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Recording(next, self.runs)


class _Recording(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, runs: set[tuple[str, str | None]]) -> None:
        super().__init__(next)
        self._runs = runs

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle:
        handle = await super().start_workflow(input)
        # The latest run (its continue-as-new chain is followed back) and this one (should the id be reused).
        self._runs.update({(handle.id, None), (handle.id, handle.result_run_id)})
        return handle

    async def start_update_with_start_workflow(self, input: StartWorkflowUpdateWithStartInput) -> WorkflowUpdateHandle:
        self._runs.add((input.start_workflow_input.id, None))
        return await super().start_update_with_start_workflow(input)


async def listed_runs(client: Client) -> set[tuple[str, str | None]]:
    """Every run a server that lists workflows holds (the dev server)."""
    return {(wf.id, wf.run_id) async for wf in client.list_workflows()}


async def histories(client: Client, runs: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """The JSON history of each run (``None``: the latest), and of every run it continued as new from, by
    ``"<workflow id> <run id>"``."""
    found: dict[str, str] = {}
    gate = asyncio.Semaphore(8)

    async def fetch(workflow_id: str, run_id: str | None) -> None:
        async with gate:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        if not history.events:
            return
        started = history.events[0].workflow_execution_started_event_attributes
        found[f"{workflow_id} {started.original_execution_run_id or run_id}"] = history.to_json()
        previous = started.continued_execution_run_id
        if previous and f"{workflow_id} {previous}" not in found:
            await fetch(workflow_id, previous)

    await asyncio.gather(*(fetch(workflow_id, run_id) for workflow_id, run_id in set(runs)))
    return found


async def assert_sealed(client: Client, runs: Iterable[tuple[str, str | None]], server: str) -> int:
    """Fail, listing the hits, when any history of ``runs`` holds a personal word or secret in plaintext; return
    how many histories were read."""
    import sys, time; t0 = time.perf_counter()
    found = await histories(client, runs)
    t1 = time.perf_counter()
    leaks = {run: hits for run, history in found.items() if (hits := plaintext_hits(history))}
    assert not leaks, f"plaintext personal data or secrets in {len(leaks)} of {len(found)} histories on {server}:\n" + \
        "\n".join(f"  {run}: {hits}" for run, hits in sorted(leaks.items()))
    print(f"SCAN {server}: {len(found)} histories {sum(map(len, found.values()))} bytes fetch {t1-t0:.3f}s scan {time.perf_counter()-t1:.3f}s", file=sys.stderr)
    return len(found)

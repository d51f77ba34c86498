"""The suite-wide privacy check: no history any test recorded holds a personal word or a secret in plaintext.

Every Temporal server the suite starts for itself is scanned as it shuts down: the session dev server
(``dev_env``) and the browser tests' dev servers list their workflows; the time-skipping servers cannot, so their
client records every workflow it starts (``Started``, a client interceptor) and the scan follows each one's
continue-as-new chain back to its first run.

A history is read as anyone with history access reads it, every field of every event: ``readable`` is its
protobuf form as stored, where each string stands as it is and each bytes field (payload data, metadata, memo,
headers: base64 in the JSON form the Web UI and ``temporal workflow show`` print) stands decoded. It is searched for

- the words the tests use (``PRIVATE_WORDS``: the customer's and every member of staff's names, the texts of the
  report, the routing key, the webhook URLs of the session's sink and its secret), any e-mail address of a test
  domain, and
- the personal values the history's inputs carry (the open, every update and signal), opened with the suite's
  keys (``carried``): names, e-mail addresses, phone numbers and every free-text field of the public contract,
  whatever a test sent;

each also as base64 (standard and URL-safe, at each of the three alignments), should some field carry it encoded
once more (a token's claims, a JSON payload holding base64).

One plaintext hit fails the run, naming the workflow and the words. The check's own control is
tests/workflows/test_privacy.py: the same check on an incident recorded without the codec fails.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterable, Iterator

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from tests.support.codec import CODEC
from tests.support.factories import CUSTOMER, EVERY_STAFF_NAME, REDO, report
from tests.support.history import nodes

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
BASE64_SHORTEST = 10  # a shorter piece of base64 turns up in kilobytes of base64 ciphertext by chance


def watch_sink(url: str, secret: str) -> None:
    """The session's webhook receiver: its URLs (``url`` and a path) and its secret must never be in a history."""
    PRIVATE_WORDS.update({f"{url}/", secret})


def readable(history: WorkflowHistory) -> str:
    """Every field of every event as stored: strings as they are, bytes decoded (ciphertext reads as noise)."""
    return b"".join(event.SerializeToString() for event in history.events).decode("utf-8", "replace")


def _inputs(history: WorkflowHistory) -> Iterator[Payload]:
    """The payloads that came from outside: the open, every update and every signal."""
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind == "workflow_execution_started_event_attributes":
            yield from event.workflow_execution_started_event_attributes.input.payloads
        elif kind == "workflow_execution_update_accepted_event_attributes":
            yield from event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads
        elif kind == "workflow_execution_signaled_event_attributes":
            yield from event.workflow_execution_signaled_event_attributes.input.payloads


def carried(history: WorkflowHistory) -> set[str]:
    """The names, e-mail addresses and free texts the history's inputs carry, opened with the suite's keys."""
    found: set[str] = set()
    for payload in _inputs(history):
        try:
            value = json.loads(CODEC.open(payload).data)
        except ValueError:
            continue
        for obj in nodes(value):
            for key, field in obj.items():
                if key not in PERSONAL_FIELDS or (key == "name" and obj.get("role") in MACHINES):
                    continue
                for text in field if isinstance(field, list) else [field]:
                    if isinstance(text, str) and len(text) >= SHORTEST:
                        found.add(text)
    return found


def encodings(word: str) -> set[str]:
    """``word`` as it reads inside base64, standard or URL-safe, at each of the three byte alignments (the
    characters that also depend on a neighbouring byte left out); none shorter than ``BASE64_SHORTEST``."""
    raw = word.encode()
    found = set()
    for offset, skip in ((0, 0), (1, 2), (2, 3)):
        whole = (offset + len(raw)) // 3 * 4
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            piece = encode(b"\0" * offset + raw)[skip:whole].decode()
            if len(piece) >= BASE64_SHORTEST:
                found.add(piece)
    return found


def plaintext_hits(history: WorkflowHistory, words: Iterable[str] = ()) -> dict[str, int]:
    """Each personal word or secret readable in the history, with its count: ``words``, ``PRIVATE_WORDS``, the
    values its own inputs carry, and any e-mail address of a test domain; plain or base64."""
    text = readable(history)
    hits: dict[str, int] = {}
    for word in {*words, *PRIVATE_WORDS, *carried(history)}:
        if not word:
            continue
        count = text.count(word) + sum(text.count(piece) for piece in encodings(word))
        if count:
            hits[word] = count
    for address in emails_at_test_domains(text):
        hits[address] = text.count(address)
    return hits


def emails_at_test_domains(text: str) -> set[str]:
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


async def histories(client: Client, runs: Iterable[tuple[str, str | None]]) -> dict[str, WorkflowHistory]:
    """The history of each run (``None``: the latest), and of every run it continued as new from, by
    ``"<workflow id> <run id>"``."""
    found: dict[str, WorkflowHistory] = {}
    gate = asyncio.Semaphore(8)

    async def fetch(workflow_id: str, run_id: str | None) -> None:
        try:
            async with gate:
                history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:  # a run that no longer exists holds nothing
                return
            raise
        if not history.events:
            return
        started = history.events[0].workflow_execution_started_event_attributes
        found[f"{workflow_id} {started.original_execution_run_id or run_id}"] = history
        previous = started.continued_execution_run_id
        if previous and f"{workflow_id} {previous}" not in found:
            await fetch(workflow_id, previous)

    await asyncio.gather(*(fetch(workflow_id, run_id) for workflow_id, run_id in set(runs)))
    return found


async def assert_sealed(client: Client, runs: Iterable[tuple[str, str | None]], server: str) -> int:
    """Fail, listing the hits, when any history of ``runs`` holds a personal word or secret in plaintext; return
    how many histories were read."""
    found = await histories(client, runs)
    leaks = {run: hits for run, history in found.items() if (hits := plaintext_hits(history))}
    assert not leaks, f"plaintext personal data or secrets in {len(leaks)} of {len(found)} histories on {server}:\n" + \
        "\n".join(f"  {run}: {hits}" for run, hits in sorted(leaks.items()))
    return len(found)

"""The test suite's payload keys: every server, worker, client and CLI process of the suite seals with them.

``tests/conftest.py`` puts ``ENV`` into the environment before anything
connects, so in-process ``worker.config.connect`` and every ``amends``
subprocess seal and open as a deployment would; ``data_converter`` is the
converter the session's servers and clients use (``workflows.converter`` plus
these keys). Histories stored for the replay test are kept opened
(``opened_history``): readable in review, and replayed through the codec's
pass-through for payloads that are not sealed.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import tempfile
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from workflows.codec import CURRENT_ENV, KEYS_ENV, EncryptionCodec, KeyRing
from workflows.converter import encrypted_converter

CURRENT = "test-1"


def _keys_file() -> Path:
    """The suite's keys, made afresh for each test session (no key is committed); a child process of the
    suite finds the parent's in its environment."""
    inherited = os.environ.get(KEYS_ENV)
    if inherited and Path(inherited).name == "codec-keys.toml" and Path(inherited).exists():
        return Path(inherited)
    directory = Path(tempfile.mkdtemp(prefix="amends-test-codec-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "codec-keys.toml"
    keys = {name: base64.b64encode(os.urandom(32)).decode() for name in ("test-1", "test-2")}
    path.write_text("".join(f'{name} = "{key}"\n' for name, key in keys.items()))
    path.chmod(0o600)
    return path


KEYS_FILE = _keys_file()
ENV = {KEYS_ENV: str(KEYS_FILE), CURRENT_ENV: CURRENT}
RING = KeyRing.load(KEYS_FILE, CURRENT)
CODEC = EncryptionCodec(RING)
data_converter = encrypted_converter(RING)
CODEC_TOKEN = base64.urlsafe_b64encode(os.urandom(18)).decode()  # per session, like the keys above


def opened_json(history_json: str) -> str:
    """A history's JSON with every sealed payload opened (protobuf JSON: base64 metadata and data)."""
    data = json.loads(history_json)

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("metadata"), dict) and isinstance(node.get("data"), str):
                meta = {k: base64.b64decode(v) for k, v in node["metadata"].items()}
                payload = Payload(metadata=meta, data=base64.b64decode(node["data"]))
                opened = CODEC.open(payload)
                if opened is not payload:
                    node = {**node, "metadata": {k: base64.b64encode(v).decode() for k, v in opened.metadata.items()},
                            "data": base64.b64encode(opened.data).decode()}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(data))


def opened_history(history: WorkflowHistory) -> WorkflowHistory:
    """``history`` with every sealed payload opened."""
    return WorkflowHistory.from_json(history.workflow_id, opened_json(history.to_json()))

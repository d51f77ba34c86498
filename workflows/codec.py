"""Payload encryption: every payload amends writes to Temporal is sealed with AES-GCM.

Temporal keeps each incident's history (its inputs, results, update
arguments, failure messages, the UI's summaries) for the namespace's
retention, readable by anyone with history access. The codec seals each
payload before it leaves the process and opens it when it comes back, so the
server only ever holds ciphertext; the codec server (``amends codec-server``)
opens them for the Web UI and the ``temporal`` CLI of authorised people.

The format, for a codec in another language:

- the sealed payload's metadata is ``encoding: binary/encrypted`` and
  ``encryption-key-id: <id>``;
- its data is a fresh 96-bit nonce followed by
  ``AES-GCM(key, nonce, <the original Payload, protobuf-serialised>)`` with no
  associated data, so the original metadata (``encoding: json/plain``) is
  sealed too;
- with ``compression: deflate-d1`` in the metadata, what was sealed is that
  serialised Payload compressed with raw DEFLATE (RFC 1951; no zlib header
  or checksum: AES-GCM already authenticates it) with the preset dictionary
  ``workflows.codec_dictionary.DEFLATE_D1``: JSON shrinks to a third or
  less, and every byte of history is stored, sent and visited again for as
  long as the incident is retained. A payload that would not gain is sealed
  uncompressed, without the entry.

Keys are named by id (``KeyRing``): new payloads are sealed with the current
one, and any key of the ring opens what it sealed, so a key is rotated
without downtime by adding the new key everywhere first, then making it
current, and removing the old one only once no retained history needs it.
A payload that is not sealed (a history from before encryption, a backend
that sent plain JSON) passes through as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tomllib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from workflows import codec_dictionary

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
COMPRESSION = "compression"
DEFLATE_D1 = b"deflate-d1"
COMPRESS_FROM = 64  # bytes: shorter ones never shrink by more than the metadata entry costs
ENTRY_COST = len(COMPRESSION) + len(DEFLATE_D1) + 4  # what the metadata entry adds to the sealed payload
NONCE_BYTES = 12  # 96 bits: GCM's native nonce, fresh and random for every payload
KEY_SIZES = (16, 24, 32)  # AES-128/192/256; `amends codec-key` makes 256-bit keys

KEYS_ENV = "AMENDS_CODEC_KEYS"
CURRENT_ENV = "AMENDS_CODEC_KEY_ID"


class CodecError(ValueError):
    """A payload or a key ring that cannot be used; the message says which and why."""


class UnknownKey(CodecError):
    """A payload sealed with a key this process does not hold."""


def new_key() -> str:
    """A fresh 256-bit key, base64-encoded as a key file holds it."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _valid_id(key_id: str) -> bool:
    return bool(key_id) and key_id.isascii() and key_id.isprintable() and " " not in key_id


@dataclass(frozen=True)
class KeyRing:
    """Keys by id, and the id of the current one (the one that seals)."""

    keys: Mapping[str, bytes]
    current: str
    source: str = field(default="the key ring", compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise CodecError(f"{self.source}: holds no key")
        for key_id, key in self.keys.items():
            if not _valid_id(key_id):
                raise CodecError(f"{self.source}: key id {key_id!r} must be printable ASCII without spaces")
            if len(key) not in KEY_SIZES:
                raise CodecError(f"{self.source}: key {key_id!r} is {len(key)} bytes; an AES key is 16, 24 or 32 "
                                 f"bytes (32 recommended)")
        if self.current not in self.keys:
            raise CodecError(f"{self.source}: the current key {self.current!r} is not among its keys "
                             f"({', '.join(sorted(self.keys))})")

    @property
    def ids(self) -> list[str]:
        return sorted(self.keys)

    @classmethod
    def parse(cls, entries: Mapping[str, object], current: str | None, source: str) -> KeyRing:
        """From ``{id: base64 key}``; ``current`` may be omitted when there is one key only."""
        keys: dict[str, bytes] = {}
        for key_id, value in entries.items():
            if not isinstance(value, str):
                raise CodecError(f"{source}: key {key_id!r} must be a base64 string")
            try:
                keys[key_id] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise CodecError(f"{source}: key {key_id!r} is not valid base64") from None
        if not keys:
            raise CodecError(f"{source}: holds no key")
        if not current:
            if len(keys) != 1:
                raise CodecError(f"{source}: holds {len(keys)} keys ({', '.join(sorted(keys))}); name the current "
                                 f"one in {CURRENT_ENV}")
            [current] = keys
        return cls(keys, current, source)

    @classmethod
    def load(cls, path: Path | str, current: str | None = None) -> KeyRing:
        """A key file: TOML (``id = "base64"`` lines) or JSON (``{"id": "base64"}``)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise CodecError(f"{KEYS_ENV}: cannot read the key file {path}: {err.strerror}") from None
        try:
            entries = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as err:
            raise CodecError(f"{KEYS_ENV}: {path} is not a valid key file: {err}") from None
        if not isinstance(entries, dict):
            raise CodecError(f"{KEYS_ENV}: {path} must map key ids to base64 keys")
        return cls.parse(entries, current, f"key file {path}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KeyRing | None:
        """The ring ``AMENDS_CODEC_KEYS`` (a key file) and ``AMENDS_CODEC_KEY_ID`` name; None if unset."""
        e = os.environ if env is None else env
        path = e.get(KEYS_ENV)
        return cls.load(path, e.get(CURRENT_ENV) or None) if path else None


def is_sealed(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


class EncryptionCodec(PayloadCodec):
    """Seals every payload with the ring's current key; opens any payload sealed with a key of the ring."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    def seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        plain = payload.SerializeToString()
        metadata = {"encoding": ENCODING, KEY_ID: self.ring.current.encode()}
        if len(plain) >= COMPRESS_FROM:
            # Compressed before it is sealed (ciphertext does not compress). Its length tells no more than the
            # plain one did to someone who can both write into a payload and read the history: no secret
            # shares a payload with a caller's text (secrets never enter history).
            deflate = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=codec_dictionary.DEFLATE_D1)
            packed = deflate.compress(plain) + deflate.flush()
            if len(packed) + ENTRY_COST < len(plain):
                plain, metadata[COMPRESSION] = packed, DEFLATE_D1
        sealed = self._ciphers[self.ring.current].encrypt(nonce, plain, None)
        return Payload(metadata=metadata, data=nonce + sealed)

    def open(self, payload: Payload) -> Payload:
        if not is_sealed(payload):
            return payload  # written before encryption, or plain JSON from a backend: nothing to open
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKey(f"payload sealed with key {key_id!r}, which this process does not hold (it holds: "
                             f"{', '.join(self.ring.ids)}); add it to the key file ({KEYS_ENV})")
        if len(payload.data) <= NONCE_BYTES:
            raise CodecError(f"payload sealed with key {key_id!r} is truncated")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        except InvalidTag:
            raise CodecError(f"payload sealed with key {key_id!r} does not open with the key of that id held "
                             f"here: the key or the payload was changed") from None
        compression = payload.metadata.get(COMPRESSION)
        if compression is not None:
            if compression != DEFLATE_D1:
                raise CodecError(f"payload sealed with key {key_id!r} is compressed with "
                                 f"{compression.decode('utf-8', 'replace')!r}; this codec opens deflate-d1 only")
            try:
                inflate = zlib.decompressobj(-15, zdict=codec_dictionary.DEFLATE_D1)
                plain = inflate.decompress(plain) + inflate.flush()
            except zlib.error as err:
                raise CodecError(f"payload sealed with key {key_id!r} does not decompress: {err}") from None
        return Payload.FromString(plain)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

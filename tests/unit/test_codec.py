"""The payload codec, its keys, the sealed data converter and the codec server, without a Temporal server."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from worker.codec_server import CodecServer
from worker.config import codec_keys
from workflows.codec import (
    COMPRESSION,
    ENCODING,
    KEY_ID,
    NONCE_BYTES,
    CodecError,
    EncryptionCodec,
    KeyRing,
    UnknownKey,
    new_key,
)
from workflows.codec_dictionary import DEFLATE_D1
from workflows.converter import data_converter, encrypted_converter
from workflows.inputs import Contact, NeedsInput

EMAIL = "alex.rivera@example.com"
K1, K2 = base64.b64decode(new_key()), base64.b64decode(new_key())
ONE = KeyRing({"k1": K1}, "k1")
ROTATED = KeyRing({"k1": K1, "k2": K2}, "k2")
ONLY_NEW = KeyRing({"k2": K2}, "k2")
PLAIN = data_converter.payload_converter.to_payload(Contact(name="Alex Rivera", email=EMAIL))


def test_a_sealed_payload_names_its_key_and_hides_the_data_and_its_encoding():
    sealed = EncryptionCodec(ONE).seal(PLAIN)
    assert sealed.metadata["encoding"] == ENCODING == b"binary/encrypted"
    assert sealed.metadata[KEY_ID] == b"k1"
    assert set(sealed.metadata) <= {"encoding", KEY_ID, COMPRESSION}  # json/plain is sealed with the data
    assert EMAIL.encode() not in sealed.data and b"json/plain" not in sealed.data
    assert EncryptionCodec(ONE).open(sealed) == PLAIN


def test_a_large_payload_is_compressed_before_it_is_sealed_and_opens_whole():
    needs = NeedsInput(needs="A tent that works before Friday, and the poles that were missing from the first one. " * 20)
    plain = data_converter.payload_converter.to_payload(needs)
    sealed = EncryptionCodec(ONE).seal(plain)
    assert sealed.metadata[COMPRESSION] == b"deflate-d1"
    assert len(sealed.data) < len(plain.data) / 4  # what the history stores
    assert b"tent" not in sealed.data
    assert EncryptionCodec(ROTATED).open(sealed) == plain
    # What was sealed without compression (before it existed, or too short to gain) opens as it did.
    short = data_converter.payload_converter.to_payload("ok")
    assert COMPRESSION not in EncryptionCodec(ONE).seal(short).metadata
    assert EncryptionCodec(ONE).open(EncryptionCodec(ONE).seal(short)) == short
    tampered = Payload(metadata={**sealed.metadata, COMPRESSION: b"lz4"}, data=sealed.data)
    with pytest.raises(CodecError, match="compressed with 'lz4'; this codec opens deflate-d1 only"):
        EncryptionCodec(ONE).open(tampered)


def test_the_compression_dictionary_never_changes():
    """Payloads compressed with deflate-d1 open only with the very same dictionary, for as long as any history
    holds one: a better dictionary is a new entry beside it (workflows/codec_dictionary.py)."""
    assert len(DEFLATE_D1) == 2400
    assert hashlib.sha256(DEFLATE_D1).hexdigest() == "faac9219d2dbfabc80ec03770c5248aef12f8eaa079f4bde4090b30f8b43999e"


def test_every_payload_gets_a_fresh_nonce():
    codec = EncryptionCodec(ONE)
    sealed = [codec.seal(PLAIN) for _ in range(50)]
    assert len({s.data[:NONCE_BYTES] for s in sealed}) == 50
    assert len({s.data for s in sealed}) == 50


async def test_after_a_rotation_the_new_key_seals_and_the_old_one_still_opens():
    old = await EncryptionCodec(ONE).encode([PLAIN])
    rotated = EncryptionCodec(ROTATED)
    assert await rotated.decode(old) == [PLAIN]
    [new] = await rotated.encode([PLAIN])
    assert new.metadata[KEY_ID] == b"k2"
    assert await EncryptionCodec(ONLY_NEW).decode([new]) == [PLAIN]


async def test_a_payload_sealed_with_a_key_not_held_is_an_error_naming_that_key():
    old = await EncryptionCodec(ONE).encode([PLAIN])
    with pytest.raises(UnknownKey, match=r"sealed with key 'k1', which this process does not hold \(it holds: k2\)"):
        await EncryptionCodec(ONLY_NEW).decode(old)


def test_a_changed_payload_does_not_open():
    sealed = EncryptionCodec(ONE).seal(PLAIN)
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(CodecError, match="does not open"):
        EncryptionCodec(ONE).open(tampered)
    wrong = KeyRing({"k1": K2}, "k1")  # the same id, another key
    with pytest.raises(CodecError, match="does not open"):
        EncryptionCodec(wrong).open(sealed)


async def test_payloads_that_were_never_sealed_pass_through():
    # Histories from before encryption, and plain JSON from a backend that has no codec.
    assert await EncryptionCodec(ONE).decode([PLAIN]) == [PLAIN]


def test_key_files_in_toml_and_json(tmp_path):
    toml = tmp_path / "keys.toml"
    toml.write_text(f'k1 = "{base64.b64encode(K1).decode()}"\nk2 = "{base64.b64encode(K2).decode()}"\n')
    ring = KeyRing.load(toml, "k2")
    assert ring.ids == ["k1", "k2"] and ring.current == "k2" and ring.keys["k1"] == K1
    as_json = tmp_path / "keys.json"
    as_json.write_text(json.dumps({"only": base64.b64encode(K1).decode()}))
    assert KeyRing.load(as_json).current == "only"  # one key: it is the current one
    with pytest.raises(CodecError, match="holds 2 keys .*name the current one in AMENDS_CODEC_KEY_ID"):
        KeyRing.load(toml)
    with pytest.raises(CodecError, match=r"the current key 'k3' is not among its keys \(k1, k2\)"):
        KeyRing.load(toml, "k3")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('k1 = "not base64!"', "key 'k1' is not valid base64"),
        (f'k1 = "{base64.b64encode(b"short").decode()}"', "key 'k1' is 5 bytes; an AES key is 16, 24 or 32"),
        ("k1 = 3", "key 'k1' must be a base64 string"),
        ("", "holds no key"),
        ("k1 = ", "is not a valid key file"),
    ],
)
def test_a_bad_key_file_is_refused_saying_why(tmp_path, content, error):
    path = tmp_path / "keys.toml"
    path.write_text(content)
    with pytest.raises(CodecError, match=error):
        KeyRing.load(path)


def test_keys_come_from_the_environment_else_from_amends_dev_else_nothing_connects(tmp_path):
    keys = tmp_path / "k.toml"
    keys.write_text(f'prod-1 = "{new_key()}"\n')
    assert codec_keys({"AMENDS_CODEC_KEYS": str(keys)}).current == "prod-1"
    (tmp_path / "codec-keys.toml").write_text(f'dev-1 = "{new_key()}"\n')
    assert codec_keys({"AMENDS_DATA": str(tmp_path)}).current == "dev-1"
    with pytest.raises(CodecError, match="no payload keys: set AMENDS_CODEC_KEYS"):
        codec_keys({"AMENDS_DATA": str(tmp_path / "none")})
    with pytest.raises(CodecError, match="cannot read the key file"):
        codec_keys({"AMENDS_CODEC_KEYS": str(tmp_path / "missing.toml")})


async def test_the_sealed_converter_keeps_explaining_bad_input():
    converter = encrypted_converter(ONE)
    [sealed] = await converter.encode([NeedsInput(needs="a refund")])
    assert sealed.metadata["encoding"] == ENCODING and b"a refund" not in sealed.data
    assert await converter.decode([sealed], [NeedsInput]) == [NeedsInput(needs="a refund")]
    bad = await converter.encode([{"needs": ""}])
    in_workflow = converter.with_context(WorkflowSerializationContext(namespace="default", workflow_id="incident-x"))
    with pytest.raises(ApplicationError, match="needs: String should have at least 1 character") as refused:
        await in_workflow.decode(bad, [NeedsInput])
    assert refused.value.type == "InvalidInput"


async def test_failure_messages_and_stack_traces_are_sealed_too():
    converter = encrypted_converter(ONE)
    failure = Failure()
    try:
        raise ApplicationError(f"mail to {EMAIL} bounced", type="MailRefused")
    except ApplicationError as err:
        await converter.encode_failure(err, failure)
    assert EMAIL not in failure.message and EMAIL not in failure.stack_trace
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    assert EMAIL.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and decoded.message == f"mail to {EMAIL} bounced"


# ---------------------------------------------------------------- the codec server

TOKEN = "a-token-of-sixteen-or-more"
UI = "http://localhost:8233"


def payloads_json(*payloads: Payload) -> dict:
    return {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                          "data": base64.b64encode(p.data).decode()} for p in payloads]}


def from_json(body: dict) -> list[Payload]:
    return [Payload(metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
                    data=base64.b64decode(p.get("data", ""))) for p in body["payloads"]]


@pytest.fixture
async def codec_http():
    client = TestClient(TestServer(CodecServer(EncryptionCodec(ROTATED), TOKEN, [UI]).app()))
    await client.start_server()
    yield client
    await client.close()


async def test_the_codec_server_decodes_and_encodes_for_the_token_only(codec_http):
    sealed = EncryptionCodec(ONE).seal(PLAIN)
    bearer = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}
    decoded = await codec_http.post("/decode", json=payloads_json(sealed), headers=bearer)
    assert decoded.status == 200
    assert from_json(await decoded.json()) == [PLAIN]
    encoded = await codec_http.post("/encode", json=payloads_json(PLAIN), headers=bearer)
    [again] = from_json(await encoded.json())
    assert again.metadata[KEY_ID] == b"k2" and EncryptionCodec(ROTATED).open(again) == PLAIN
    # The token as the endpoint's path, as the Web UI of `amends dev` is given it; any depth before the action.
    assert (await codec_http.post(f"/{TOKEN}/decode", json=payloads_json(sealed))).status == 200
    for refused in (
        codec_http.post("/decode", json=payloads_json(sealed)),
        codec_http.post("/decode", json=payloads_json(sealed), headers={"Authorization": "Bearer wrong"}),
        codec_http.post("/decode", json=payloads_json(sealed), headers={"Authorization": TOKEN}),
        codec_http.post("/wrong/decode", json=payloads_json(sealed)),
        codec_http.post(f"/{TOKEN}x/decode", json=payloads_json(sealed)),
    ):
        response = await refused
        assert response.status == 401
        assert EMAIL not in await response.text()
    assert (await codec_http.post("/other", json={}, headers=bearer)).status == 404
    assert (await codec_http.post("/decode", data="nope", headers=bearer)).status == 400


async def test_the_codec_server_answers_the_web_uis_preflight_and_no_other_origin(codec_http):
    preflight = await codec_http.options("/decode", headers={
        "Origin": UI, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization,x-namespace"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == UI
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization, X-Namespace"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    answered = await codec_http.post("/decode", json=payloads_json(PLAIN),
                                     headers={"Origin": UI, "Authorization": f"Bearer {TOKEN}"})
    assert answered.headers["Access-Control-Allow-Origin"] == UI
    refused = await codec_http.post("/decode", json=payloads_json(PLAIN), headers={"Origin": UI})
    assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == UI  # the UI sees why
    other = await codec_http.options("/decode", headers={"Origin": "http://evil.example",
                                                         "Access-Control-Request-Method": "POST"})
    assert other.status == 403 and "Access-Control-Allow-Origin" not in other.headers


async def test_a_payload_the_server_cannot_open_stays_sealed_and_the_rest_show(codec_http):
    foreign = EncryptionCodec(KeyRing({"k0": K1}, "k0")).seal(PLAIN)
    ours = EncryptionCodec(ONE).seal(PLAIN)
    decoded = await codec_http.post("/decode", json=payloads_json(foreign, ours),
                                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert from_json(await decoded.json()) == [foreign, PLAIN]


def test_the_codec_server_needs_a_token():
    with pytest.raises(ValueError, match="needs a token"):
        CodecServer(EncryptionCodec(ONE), "")

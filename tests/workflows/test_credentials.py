"""Verified actors: a step counts only with a credential from a trusted issuer, bound to this incident,
this step and this input, used once; who acted is what the credential says, and the token goes no further.

Each refusal names what is wrong and leaves the history as it was (on the dev server, a rejected update
writes nothing at all).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta

import jwt
import pytest

from activities.identity import IdentityConfig
from tests.support.factories import AGENT, DIRECTOR, report
from tests.support.history import HISTORIES, decoded_payloads
from tests.support.identity import (
    ISSUER,
    SERVICE_ISSUER,
    TEST_ISSUER,
    Amends,
    signed,
)
from tests.support.servers import time_skipping
from tests.support.steps import STEP_INPUTS, assert_refused, opened, take
from worker.issuer import Issuer, KeyRing, identity_toml, new_key
from workflows.client import AmendsClient, StepRefused, workflow_id
from workflows.credentials import checksum
from workflows.inputs import Actor, ApologyInput, NeedsInput, Role
from workflows.signing import KeySigner
from workflows.stages import Stage

# A compact JWT with a signature: what must never be stored or shown.
BEARER = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{20,}")


@pytest.fixture
def amends(dev_env, dev_worker, settings):
    client = Amends(dev_env.client, settings.task_queue)
    client.speculative_tasks = True  # type: ignore[attr-defined]
    return client


def bare(step):
    """The input without its by, as a caller that carries a credential sends it."""
    return step.model_copy(update={"by": None})


def credential(key: str, step_name: str, step, *, actor: Actor = AGENT, issuer: Issuer = TEST_ISSUER,
               **changes) -> str:
    """A credential for ``step`` with some of its claims changed (None drops a claim)."""
    signer = issuer.signer(actor)
    claims = signer.claims(actor) | {
        "amends_incident": workflow_id(key), "amends_step": step_name, "amends_input": checksum(step, as_sent=True),
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return signer.signed(claims)


def carrying(step, token: str):
    return bare(step).model_copy(update={"credential": token})


async def test_a_self_asserted_director_is_refused(amends, dev_env, settings):
    key = await opened(amends)
    # What an outsider with raw JSON would send: the input says who acts, and brings no credential.
    outsider = AmendsClient(dev_env.client, settings.task_queue)
    outsider.speculative_tasks = True  # type: ignore[attr-defined]
    await assert_refused(outsider, key, "apologise", ApologyInput(by=DIRECTOR),
                         match="by: who acts comes from the credential's verified claims")
    await assert_refused(outsider, key, "apologise", ApologyInput(),
                         match="credential: apologise needs a signed credential")
    # With an agent's credential, a by that claims more is refused all the same.
    step = bare(STEP_INPUTS["apologise"])
    token = credential(key, "apologise", step)
    await assert_refused(amends, key, "apologise", step.model_copy(update={"credential": token, "by": DIRECTOR}),
                         match="by: who acts comes from the credential's verified claims")


@pytest.mark.parametrize(("changes", "reason"), [
    ({"aud": "someone-else"}, "credential: its audience must be 'amends'"),
    ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "credential: expired at"),
    ({"exp": int(time.time()) + 86_400}, "longer than the 0:15:00 allowed"),
    ({"iss": "https://evil.example"}, "credential: issuer 'https://evil.example' is not trusted"),
    ({"amends_step": "close"}, "credential: issued for the step 'close', not for apologise"),
    ({"amends_incident": "incident-someone-else"}, "issued for 'incident-someone-else'"),
    ({"amends_input": "0" * 64}, "credential: signed for another input"),
    ({"jti": None}, "credential: it needs a jti claim"),
    ({"amends_role": "ceo"}, "the amends_role claim must be one of"),
    ({"name": None}, "the name claim must name who acts"),
])
async def test_a_credential_with_a_wrong_claim_is_refused(amends, changes, reason):
    key = await opened(amends)
    step = bare(STEP_INPUTS["apologise"])
    await assert_refused(amends, key, "apologise", carrying(step, credential(key, "apologise", step, **changes)),
                         match=reason)


async def test_a_forged_or_unsigned_credential_is_refused(amends):
    key = await opened(amends)
    step = bare(STEP_INPUTS["apologise"])
    good = credential(key, "apologise", step)
    header, claims, _ = good.split(".")
    # The trusted key's id, someone else's key: the signature does not hold.
    forger = new_key() | {"kid": jwt.get_unverified_header(good)["kid"]}
    forged = KeySigner(forger, ISSUER, DIRECTOR).step_credential(DIRECTOR, workflow_id(key), "apologise",
                                                                   checksum(step, as_sent=True))
    await assert_refused(amends, key, "apologise", carrying(step, forged), match="its signature does not verify")
    # Claims raised to director under the agent's signature.
    raised = json.loads(jwt.utils.base64url_decode(claims)) | {"amends_role": "director"}
    tampered = f"{header}.{jwt.utils.base64url_encode(json.dumps(raised).encode()).decode()}.{good.split('.')[2]}"
    await assert_refused(amends, key, "apologise", carrying(step, tampered), match="its signature does not verify")
    unsigned = jwt.encode(jwt.decode(good, options={"verify_signature": False}), None, algorithm="none")
    await assert_refused(amends, key, "apologise", carrying(step, unsigned), match="algorithm 'none' is not accepted")
    shared = jwt.encode(jwt.decode(good, options={"verify_signature": False}), "a-shared-secret-of-32-bytes-long!",
                        algorithm="HS256", headers={"kid": forger["kid"]})
    await assert_refused(amends, key, "apologise", carrying(step, shared), match="algorithm 'HS256' is not accepted")
    await assert_refused(amends, key, "apologise", carrying(step, "not-a-token"), match="not a signed token")


async def test_an_issuer_may_assert_only_the_roles_its_entry_lists(amends):
    key = await opened(amends)
    step = bare(STEP_INPUTS["apologise"])
    await assert_refused(
        amends, key, "apologise", carrying(step, credential(key, "apologise", step, actor=DIRECTOR,
                                                            issuer=SERVICE_ISSUER)),
        match="credential: issuer 'orders-service' may not assert the role director (it may assert: backend, "
              "customer)")


async def test_a_credential_from_the_history_cannot_be_used_again_here_or_elsewhere(amends):
    key = await opened(amends)
    other = await opened(amends)
    step = bare(STEP_INPUTS["apologise"])
    token = credential(key, "apologise", step)
    snap = await amends.apologise(key, carrying(step, token))
    assert snap.stage == Stage.APOLOGISED
    # Read back from the incident's history, as anyone with history access could.
    history = await amends.handle(key).fetch_history()
    assert token in decoded_payloads(history.to_json())
    # Not for another incident, even for the very same input ...
    await assert_refused(amends, other, "apologise", carrying(step, token),
                         match=f"credential: issued for '{workflow_id(key)}', not for {workflow_id(other)}")
    # ... nor for another step or input of this one ...
    needs = bare(NeedsInput(by=AGENT, needs="a refund"))
    await assert_refused(amends, key, "record_needs", carrying(needs, token),
                         match="credential: issued for the step 'apologise', not for record_needs")
    # ... nor twice: its jti is spent (the table would also refuse a second apology; the credential goes first).
    await assert_refused(amends, key, "apologise", carrying(step, token),
                         match="credential: already used on this incident")


async def test_who_acted_is_the_verified_name_and_role_and_no_token_is_kept(amends, caplog):
    key = await opened(amends)
    caplog.set_level("DEBUG")
    tokens = []
    for step_name in ("apologise", "record_needs"):
        step = bare(STEP_INPUTS[step_name])
        tokens.append(credential(key, step_name, step, actor=Actor(name="Zoë Adams", role=Role.MANAGER)))
        await amends.step(key, step_name, carrying(step, tokens[-1]))
    backend = Actor(name="orders backend", role=Role.BACKEND)
    await take(amends, key, "propose_remedy")
    accept = bare(STEP_INPUTS["accept_remedy"])
    tokens.append(credential(key, "accept_remedy", accept, actor=backend, issuer=SERVICE_ISSUER))
    snap = await amends.accept_remedy(key, carrying(accept, tokens[-1]))
    who = {e.step: (e.by.name, e.by.role) for e in snap.timeline}
    assert who["apologise"] == who["record_needs"] == ("Zoë Adams", Role.MANAGER)
    assert who["propose_remedy"] == (AGENT.name, Role.AGENT)
    assert who["accept_remedy"] == ("orders backend", Role.BACKEND)
    assert snap.agreed_remedy.accepted_by == backend
    shown = snap.model_dump_json() + (await amends.snapshot(key)).model_dump_json()
    assert not BEARER.search(shown) and not any(t.split(".")[1] in shown for t in tokens)
    assert not any(t.split(".")[2] in caplog.text for t in tokens)


def test_no_stored_history_holds_a_bearer_token():
    """Histories kept for the replay test carry credentials without their signatures (tests/support/history.py)."""
    files = sorted(HISTORIES.glob("*.json"))
    assert files
    for path in files:
        text = path.read_text()
        decoded = decoded_payloads(text)
        assert not BEARER.search(decoded), path.name


async def test_after_a_key_rotation_new_keys_are_accepted_on_incidents_opened_before(settings, tmp_path):
    ring = KeyRing(tmp_path / "rotating").ensure()
    issuer = Issuer("https://rotating.amends.test", ring)
    (tmp_path / "identity.toml").write_text(identity_toml(issuer.issuer, ring.jwks))
    rotating = settings.model_copy(update={
        "identity": IdentityConfig.load(tmp_path / "identity.toml"),
        "task_queue": f"amends-rotation-{uuid.uuid4().hex[:6]}",
    })
    async with time_skipping(rotating) as env:
        amends = Amends(env.client, rotating.task_queue, env=env)
        rep = report(None)
        key = rep.incident_key
        await amends.open_incident(rep)
        old = ring.keys()[0]["kid"]

        async def as_agent(step_name, step):
            at = (await env.get_current_time()).timestamp()
            return await amends.step(key, step_name, signed(key, step_name, step, issuer=issuer, at=at))

        await as_agent("apologise", ApologyInput(by=AGENT))
        # The issuer rotates: a new key signs from now on, the old one is still published.
        ring.rotate()
        assert ring.keys()[0]["kid"] != old
        await env.sleep(timedelta(minutes=2))
        # The incident recorded only the old key: the client has it record the keys again, then the step counts.
        snap = await as_agent("record_needs", NeedsInput(by=AGENT, needs="a working tent"))
        assert snap.stage == Stage.NEEDS_GATHERED
        # Later the old key is dropped, and the incident records the keys again (what ops do after
        # retiring a key): the new key still signs, and what the old one signs is refused.
        old_key = next(k for k in ring.keys() if k["kid"] == old)
        ring.retire()
        await env.sleep(timedelta(minutes=2))
        assert await amends.refresh_trust(key) == "1 trusted issuers, 1 keys"
        # Recorded within the minute: a second refresh is refused and writes nothing.
        assert await amends.refresh_trust(key) is None
        at = (await env.get_current_time()).timestamp()
        proposal = bare(STEP_INPUTS["propose_remedy"])
        stale = KeySigner(old_key, issuer.issuer, AGENT).step_credential(
            AGENT, workflow_id(key), "propose_remedy", checksum(proposal, as_sent=True), at)
        with pytest.raises(StepRefused, match=f"credential: key '{old}' is not among the keys recorded"):
            await amends.propose_remedy(key, carrying(proposal, stale))
        snap = await as_agent("propose_remedy", STEP_INPUTS["propose_remedy"])
        assert snap.remedies[-1].proposed_by == AGENT
        kinds = (await amends.handle(key).fetch_history()).to_json()
        assert kinds.count('"refresh_trust"') >= 2

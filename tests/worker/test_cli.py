"""The ``amends`` command line against real servers.

Commands run as real processes (``amends``: ``python -m worker.cli``) talking
to the session's Temporal dev server and worker, at least one per kind of
command and outcome: a step taken, refused (exit 1) and invalid (exit 2),
JSON from stdin, ``show`` and ``show --json``, ``token``, ``diagram`` and
``schema``. The longer walks (a refund, every kind of remedy, who may act)
run the same command tree in this process (``invoke``: click's CliRunner),
without a process start per command. Assertions check both what the command
printed and what the server recorded. The last test starts ``amends dev``
itself, restarts it, and stops it with SIGINT.

Both are awaited with asyncio: the worker of these tests runs on the
session's event loop, which must stay free while a command waits for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import sys
import typing
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.cli import BIN, REPO, amends, base_env, invoke, open_options, run, signed_in
from tests.support.factories import AGENT, paid_intent, report
from tests.support.identity import ISSUER, RING, TEST_ISSUER, Amends
from tests.support.steps import last_entry, wait_for
from worker.cli.fields import to_minor
from worker.processes import free_port
from workflows.inputs import Actor, ApologyInput, IncidentReport, Role
from workflows.schema import models
from workflows.snapshot import Snapshot
from workflows.stages import Stage

SCHEMAS = {name: model for name, (model, _) in models().items()}


@pytest.fixture
async def apologised(dev_env, dev_worker, settings, stripe) -> str:
    """An incident already apologised for, opened through the typed client."""
    amends_client = Amends(dev_env.client, settings.task_queue)
    rep = report(await paid_intent(stripe, 8_000))
    await amends_client.open_incident(rep)
    await amends_client.apologise(rep.incident_key, ApologyInput(by=AGENT, channel="phone"))
    # Settled: the apology's e-mail has gone out and is on the timeline.
    await wait_for(amends_client, rep.incident_key, lambda s: s.timeline[-1].step == "notice")
    return rep.incident_key


# ---------------------------------------------------------------- incident commands


async def test_open_apologise_show(cli_env, dev_env, settings, stripe):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    opened = await amends("incident", "open", *open_options(key, await paid_intent(stripe, 8_000)), env=cli_env)
    assert opened.code == 0, opened.err
    assert opened.out.splitlines()[0] == f"incident-{key} detected"
    assert "apology due in" in opened.out

    step = await amends("incident", "apologise", key, "--channel", "phone", env=cli_env)  # as AMENDS_TOKEN says
    assert step.code == 0, step.err
    assert step.out.splitlines()[0] == f"incident-{key} apologised"

    shown = await amends("incident", "show", key, env=cli_env)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == f"incident-{key}"
    assert any(line.split() == ["Stage", "apologised"] for line in lines)
    assert "customer's needs due in" in shown.out
    timeline = lines[lines.index("Timeline (UTC)") + 1:]
    # The written apology's e-mail may have gone out already: it is recorded when it does.
    assert [line.split()[2] for line in timeline][:2] == ["detected", "apologise"]
    assert [line.split()[2] for line in timeline][2:] in ([], ["notice"])
    assert "Priya Shah (agent)" in timeline[1] and "phone" in timeline[1]
    assert "Next steps     record_needs, flag_account" in shown.out

    # What the server holds: the decimal amount became minor units, the step its actor.
    snap = await Amends(dev_env.client, settings.task_queue).snapshot(key)
    assert snap.stage == Stage.APOLOGISED
    assert snap.report.order.amount_paid.amount == 8_000
    assert snap.report.staff_involved == ["Kevin Lomax"]
    taken = next(e for e in snap.timeline if e.step == "apologise")
    assert taken.by.name == "Priya Shah" and taken.channel == "phone"


async def test_a_skipped_step_is_refused_and_names_the_stage(cli_env, apologised, dev_env, settings):
    before = await Amends(dev_env.client, settings.task_queue).snapshot(apologised)
    closed = await amends("incident", "close", apologised, env=cli_env)
    assert closed.code == 1
    assert closed.err.startswith("refused: ")
    assert "stage 'apologised'" in closed.err
    assert closed.out == ""
    after = await Amends(dev_env.client, settings.task_queue).snapshot(apologised)
    assert after.timeline == before.timeline  # a refused update writes nothing


# ---------------------------------------------------------------- who acts: the session token


async def test_a_step_without_a_session_token_is_refused_naming_amends_token(cli_env, apologised, dev_env, settings):
    before = await Amends(dev_env.client, settings.task_queue).snapshot(apologised)
    anonymous = {k: v for k, v in cli_env.items() if k != "AMENDS_TOKEN"}
    refused = await invoke("incident", "needs", apologised, "--needs", "a tent", env=anonymous)
    assert refused.code == 2
    assert refused.err.startswith("invalid: AMENDS_TOKEN is not set")
    assert "amends token --name" in refused.err and refused.out == ""
    # Who acts is not the caller's to say: the options are gone.
    claimed = await invoke("incident", "needs", apologised, "--needs", "a tent", "--by", "Boss", env=cli_env)
    assert claimed.code == 2 and "'--by': who takes a step comes from the session token in AMENDS_TOKEN" in claimed.err
    # A token the issuer did not sign is refused by the issuer, before Temporal hears of the step.
    forged = await invoke("incident", "needs", apologised, "--needs", "a tent",
                          env=cli_env | {"AMENDS_TOKEN": "not.a.token"})
    assert forged.code == 1 and forged.err.startswith("refused: the issuer refused a credential for record_needs")
    # No issuer to ask: named, and nothing sent.
    lost = await invoke("incident", "needs", apologised, "--needs", "a tent",
                        env={k: v for k, v in cli_env.items() if k != "AMENDS_ISSUER_URL"} | {"AMENDS_DATA": "/nowhere"})
    assert lost.code == 2 and lost.err.startswith("invalid: AMENDS_ISSUER_URL is not set")
    after = await Amends(dev_env.client, settings.task_queue).snapshot(apologised)
    assert after.timeline == before.timeline


async def test_amends_token_signs_a_session_token_that_the_steps_act_as(cli_env, apologised, dev_env, settings):
    keys = ["--keys", str(RING.directory), "--issuer", ISSUER]
    printed = await amends("token", "--name", "Marcus Webb", "--role", "manager", *keys, env=cli_env)
    assert printed.code == 0, printed.err
    session = printed.out.strip()
    assert TEST_ISSUER.session_actor(session) == Actor(name="Marcus Webb", role=Role.MANAGER)
    step = await invoke("incident", "needs", apologised, "--needs", "a tent by Friday",
                        env=cli_env | {"AMENDS_TOKEN": session})
    assert step.code == 0, step.err
    snap = await Amends(dev_env.client, settings.task_queue).snapshot(apologised)
    assert next(e for e in reversed(snap.timeline) if e.step == "record_needs").by == Actor(
        name="Marcus Webb", role=Role.MANAGER)

    nowhere = await invoke("token", "--name", "Marcus Webb", "--role", "manager", "--data", "/nowhere", env=cli_env)
    assert nowhere.code == 2 and "run `amends dev` first" in nowhere.err and "/nowhere" in nowhere.err
    half = await invoke("token", "--name", "M", "--role", "agent", "--step", "apologise", *keys, env=cli_env)
    assert half.code == 2 and "--incident, --step and --input go together" in half.err


async def test_opening_the_same_key_twice_gives_the_same_incident(cli_env, dev_env, stripe):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    options = open_options(key, await paid_intent(stripe, 8_000))
    first = await invoke("incident", "open", *options, env=cli_env)
    second = await invoke("incident", "open", *options, env=cli_env)
    assert first.code == second.code == 0, first.err + second.err
    assert first.out.split()[0] == second.out.split()[0] == f"incident-{key}"
    for _ in range(50):  # visibility trails the start by a moment
        runs = [w async for w in dev_env.client.list_workflows(f'WorkflowId = "incident-{key}"')]
        if runs:
            break
        await asyncio.sleep(0.1)
    assert len(runs) == 1


async def test_open_from_json_on_stdin(cli_env):
    rep = report(None)
    opened = await amends("incident", "open", "--json", "-", env=cli_env, stdin=rep.model_dump_json())
    assert opened.code == 0, opened.err
    assert opened.out.split()[:2] == [f"incident-{rep.incident_key}", "detected"]


async def test_show_json_is_a_snapshot(cli_env, apologised):
    shown = await amends("incident", "show", apologised, "--json", env=cli_env)
    assert shown.code == 0, shown.err
    snap = Snapshot.model_validate_json(shown.out)
    assert snap.workflow_id == f"incident-{apologised}"
    assert snap.stage == Stage.APOLOGISED


async def test_invalid_input_names_the_field_and_rule(cli_env):
    bad = await amends(
        "incident", "open", *open_options("order-bad-email", "pi_x"), "--email", "not-an-address", env=cli_env
    )
    assert bad.code == 2
    assert bad.err.startswith("invalid: customer.email (--email): value is not a valid email address")
    assert "[value_error]" in bad.err

    unknown = await amends("incident", "show", f"nobody-{uuid.uuid4().hex[:6]}", env=cli_env)
    assert unknown.code == 1
    assert unknown.err.startswith("not found: ")


async def test_a_remedy_with_a_refund_through_the_cli(cli_env, stripe):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    opened = await invoke("incident", "open", *open_options(key, await paid_intent(stripe, 8_000)), env=cli_env)
    assert opened.code == 0, opened.err
    customer, shop = signed_in(cli_env, "Alex Rivera", "customer"), signed_in(cli_env, "shop", "backend")
    for args, env in (
        (["apologise", key], cli_env),
        (["needs", key, "--needs", "My money back for the tent, and a tent that works."], cli_env),
        (["propose", key, "--refund", "30.00", "--replacement", "a new tent, sent by express"], cli_env),
        (["accept", key, "--remedy", "1", "--channel", "email"], customer),
        (["confirm", key, "remedy-1/item-2", "--note", "UPS 1Z999"], shop),
    ):
        step = await invoke("incident", *args, env=env)
        assert step.code == 0, f"{args}: {step.err}"
    for _ in range(50):  # the refund is the engine's to make; fulfilment follows it
        snap = Snapshot.model_validate_json((await invoke("incident", "show", key, "--json", env=cli_env)).out)
        if snap.stage == Stage.FULFILLED:
            break
        await asyncio.sleep(0.2)
    assert snap.stage == Stage.FULFILLED
    assert [(m.amount.amount, m.amount.currency) for m in snap.money_moved] == [(3_000, "USD")]
    shown = await invoke("incident", "show", key, env=cli_env)
    assert "30.00 USD of 80.00 USD paid; 50.00 USD refundable left" in shown.out
    assert "replacement: a new tent, sent by express (UPS 1Z999)" in shown.out


async def test_every_kind_of_remedy_can_be_proposed_from_the_cli(cli_env, stripe):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    assert (await invoke("incident", "open", *open_options(key, await paid_intent(stripe, 8_000)), env=cli_env)).code == 0
    for args in (["apologise", key], ["needs", key, "--needs", "something for the trouble"]):
        assert (await invoke("incident", *args, env=cli_env)).code == 0
    proposed = await invoke(
        "incident", "propose", key, "--coupon", "5.00", "--coupon-percent", "10", "--coupon-days", "30",
        "--waive", "12.50", "--invoice", "INV-9", "--split-cost", "20.00", "--our-share", "50", "--split-as", "coupon",
        "--gift-note", "a card from the team", "--upgrade", "the deluxe tent",
        env=signed_in(cli_env, "Marcus Webb", "manager"),
    )
    assert proposed.code == 0, proposed.err
    snap = Snapshot.model_validate_json((await invoke("incident", "show", key, "--json", env=cli_env)).out)
    items = [i.item.model_dump(mode="json") for i in snap.proposal.items]
    assert items == [
        {"kind": "coupon", "amount_off": {"amount": 500, "currency": "USD"}, "percent_off": None, "valid_for_days": 30},
        {"kind": "coupon", "amount_off": None, "percent_off": 10, "valid_for_days": 30},
        {"kind": "waive_balance", "amount": {"amount": 1_250, "currency": "USD"}, "invoice_reference": "INV-9"},
        {"kind": "split_cost", "cost": {"amount": 2_000, "currency": "USD"}, "our_share_percent": 50,
         "paid_as": "coupon", "description": "the shared cost"},
        {"kind": "gift", "coupon_amount": None, "note": "a card from the team"},
        {"kind": "upgrade", "description": "the deluxe tent"},
    ]
    half = await invoke("incident", "propose", key, "--waive", "12.50", env=cli_env)
    assert half.code == 2 and "--waive and --invoice go together" in half.err


def test_decimal_amounts_become_minor_units():
    assert to_minor("80.00", "USD", "--amount") == 8_000
    assert to_minor("80", "EUR", "--amount") == 8_000
    assert to_minor("8000", "JPY", "--amount") == 8_000
    assert to_minor("1.250", "KWD", "--amount") == 1_250


# ---------------------------------------------------------------- diagram and schema


async def test_diagram_and_schema(tmp_path):
    env = dict(os.environ)
    diagram = await amends("diagram", env=env)
    assert diagram.code == 0 and "stateDiagram-v2" in diagram.out.splitlines()
    assert "detected --> apologised: apologise" in diagram.out

    written = await amends("schema", "--out", str(tmp_path), env=env)
    assert written.code == 0, written.err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{n}.schema.json" for n in SCHEMAS)
    assert json.loads((tmp_path / "open.schema.json").read_text())["title"] == IncidentReport.__name__
    # The committed copy is what the code generates.
    check = await amends("schema", "--check", "--out", str(REPO / "schema"), env=env)
    assert check.code == 0, check.err


def test_every_update_has_a_schema():
    from temporalio import workflow

    from workflows.incident import IncidentRecovery

    defn = workflow._Definition.must_from_class(IncidentRecovery)
    for name, update in defn.updates.items():
        if not update.arg_types:  # refresh_trust takes no input: there is nothing to validate
            assert name not in SCHEMAS
            continue
        # opened takes an Opening or nothing.
        assert SCHEMAS.get(name) in (update.arg_types[0], *typing.get_args(update.arg_types[0])), \
            f"update {name} needs its schema (workflows.schema)"
    # The run also takes ContinuedIncident (its own continue-as-new); backends open with an IncidentReport.
    assert SCHEMAS["open"] is defn.arg_types[0] or SCHEMAS["open"] in typing.get_args(defn.arg_types[0])
    assert SCHEMAS["snapshot"] is defn.queries["snapshot"].ret_type


# ---------------------------------------------------------------- amends dev


def children_of(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Dev:
    """``amends dev`` as a subprocess, its output in a file."""

    def __init__(self, data: Path, ports: dict[str, int], env: dict[str, str], log: Path) -> None:
        self.data, self.ports, self.env, self.log = data, ports, env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker.cli", "dev", "--data", str(self.data),
                "--port", str(self.ports["temporal"]), "--ui-port", str(self.ports["ui"]),
                "--http-port", str(self.ports["http"]),
                "--stripe-port", str(self.ports["stripe"]), "--smtp-port", str(self.ports["smtp"]),
                "--webhook-port", str(self.ports["webhooks"]), "--metrics-port", str(self.ports["metrics"]),
                "--issuer-port", str(self.ports["issuer"]), "--codec-port", str(self.ports["codec"]),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=self.env, cwd=REPO,
            )
        await self.ready()

    async def ready(self, timeout: float = 120) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        async with httpx.AsyncClient() as http:
            while loop.time() < end:
                assert self.proc.returncode is None, f"amends dev exited early:\n{self.log.read_text()}"
                try:
                    if (await http.get(f"http://127.0.0.1:{self.ports['ui']}/", timeout=2)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"the UI never answered:\n{self.log.read_text()}")
        _, writer = await asyncio.open_connection("127.0.0.1", self.ports["temporal"])
        writer.close()
        # The worker starts after the servers; the banner says it is polling.
        while "Press Ctrl-C to stop." not in self.log.read_text():
            assert loop.time() < end, self.log.read_text()
            await asyncio.sleep(0.1)

    async def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.proc.wait(), 30)


async def test_amends_dev_runs_everything_and_stops_on_ctrl_c(tmp_path):
    ports = {name: free_port() for name in ("temporal", "ui", "http", "stripe", "smtp", "webhooks", "metrics",
                                            "issuer", "codec")}
    address = f"127.0.0.1:{ports['temporal']}"
    env = base_env(address, "amends")
    dev = Dev(tmp_path / "data", ports, env, tmp_path / "dev.log")
    await dev.start()
    try:
        children = children_of(dev.proc.pid)
        assert sorted("localstripe" if "localstripe" in c else "temporal" if "temporal" in c else c
                      for c in children.values()) == ["localstripe", "temporal"]

        key = f"dev-{uuid.uuid4().hex[:8]}"
        opened = await amends("incident", "open", *open_options(key, "pi_unused"), env=env)
        assert opened.code == 0, opened.err + dev.log.read_text()
        assert opened.out.split()[:2] == [f"incident-{key}", "detected"]

        for _ in range(50):  # visibility trails the start by a moment
            listed = await run(str(BIN / "temporal"), "workflow", "list", "--address", address,
                               "--query", 'RecoveryStage="detected"', env=env)
            if f"incident-{key}" in listed.out:
                break
            await asyncio.sleep(0.2)
        assert f"incident-{key}" in listed.out, listed.out + listed.err
        # ... and through the server's HTTP API, as a backend without an SDK finds it (docs/http.md).
        async with httpx.AsyncClient() as http:
            found = await http.get(f"http://127.0.0.1:{ports['http']}/api/v1/namespaces/default/workflows",
                                   params={"query": f'WorkflowId="incident-{key}"'}, timeout=10)
        assert [e["execution"]["workflowId"] for e in found.json()["executions"]] == [f"incident-{key}"]
        assert list((tmp_path / "data" / "mail").glob("*.eml")) == []  # nothing sent before the apology
        # The worker serves its Prometheus metrics (docs/metrics.md).
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=10)
        assert scraped.status_code == 200 and "temporal_" in scraped.text, scraped.text[:500]
        # The local issuer: served, trusted by the worker, and announced with how to sign in.
        issuer = f"http://127.0.0.1:{ports['issuer']}"
        async with httpx.AsyncClient() as http:
            jwks = (await http.get(f"{issuer}/.well-known/jwks.json", timeout=10)).json()
        assert [k["kid"] for k in jwks["keys"]] == [k["kid"] for k in json.loads(
            (tmp_path / "data" / "issuer" / "jwks.json").read_text())["keys"]]
        assert "d" not in jwks["keys"][0]  # public keys only
        assert str(tmp_path / "data" / "issuer" / "jwks.json") in (tmp_path / "data" / "identity.toml").read_text()
        assert (tmp_path / "data" / "issuer.url").read_text().strip() == issuer
        banner = dev.log.read_text()
        assert f"export AMENDS_ISSUER_URL={issuer}" in banner
        assert f"export AMENDS_TOKEN=$(amends token --data {tmp_path / 'data'} --name" in banner
        # Every service it started listens on loopback only (localstripe's own start-up binds every interface).
        assert {name: listening_on(port) for name, port in ports.items()} == {name: {"127.0.0.1"} for name in ports}
    finally:
        code = await dev.interrupt()
    assert code == 0, dev.log.read_text()
    assert "amends dev: stopped." in dev.log.read_text()
    assert [pid for pid in children if alive(pid)] == []
    assert not (tmp_path / "data" / "issuer.url").exists()  # no issuer is there to ask now

    # Incidents survive a restart: they live in the SQLite file in the data directory.
    await dev.start()
    try:
        restarted_children = children_of(dev.proc.pid)
        # A session token from the dev issuer's key ring (kept across the restart), exchanged at the
        # issuer the CLI finds through the data directory.
        dev_env = env | {"AMENDS_DATA": str(tmp_path / "data")}
        token = await amends("token", "--name", "Dana Dev", "--role", "agent", env=dev_env)
        assert token.code == 0, token.err
        apologised = await amends("incident", "apologise", key, "--channel", "phone",
                                  env=dev_env | {"AMENDS_TOKEN": token.out.strip()})
        assert apologised.code == 0, apologised.err + dev.log.read_text()
        assert apologised.out.split()[:2] == [f"incident-{key}", "apologised"]
        shown = await amends("incident", "show", key, "--json", env=env)
        assert last_entry(Snapshot.model_validate_json(shown.out)).by.name == "Dana Dev"
        for _ in range(50):  # the apology notice is an activity, after the update
            if list((tmp_path / "data" / "mail").glob("*-apology.eml")):
                break
            await asyncio.sleep(0.2)
        assert len(list((tmp_path / "data" / "mail").glob("*-apology.eml"))) == 1
        # ... and as a signed webhook to the receiver that plays the backends.
        for _ in range(50):
            if list((tmp_path / "data" / "webhooks").glob("*-notice.apology.json")):
                break
            await asyncio.sleep(0.2)
        [hook] = list((tmp_path / "data" / "webhooks").glob("*-notice.apology.json"))
        assert json.loads(hook.read_text())["signature_valid"] is True
    finally:
        code = await dev.interrupt()
    assert code == 0, dev.log.read_text()
    assert [pid for pid in restarted_children if alive(pid)] == []


def listening_on(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table, size in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            if size == 8:
                found.add(".".join(str(b) for b in raw[::-1]))
            else:
                words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                ipv6 = b"".join(words)
                found.add(str(ipaddress.IPv6Address(ipv6)))
    return found

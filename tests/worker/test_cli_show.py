"""The ``amends`` CLI package: show renders every remedy kind, step commands come from the registry,
validation errors name the option that fills the field, and ``amends dev`` says what it is doing.

The ``amends`` commands run in this process (``invoke``: click's CliRunner, the
whole command tree) against the session's dev server; test_cli.py runs the
same commands as real processes. The generated commands are checked with
CliRunner on a group built from a registry with one more step.
"""

from __future__ import annotations

import io
import uuid

import pytest
from click.testing import CliRunner
from pydantic import Field
from rich.console import Console

from tests.support.cli import invoke, open_options, signed_in
from tests.support.factories import paid_intent
from worker.cli import cli
from worker.cli.custom_steps import propose
from worker.cli.fields import option_for
from worker.cli.incident import incident_group
from worker.cli.runtime import DevOutput
from worker.devserver import progress
from workflows.basics import Text
from workflows.inputs import StepInput
from workflows.steps import REGISTRY, Cli, StepSpec

# Every kind of remedy, from the options of `amends incident propose`, and how show says each.
EVERY_KIND = [
    (["--refund", "10.00"], "a refund of 10.00 USD"),
    (["--coupon", "5.00"], "a coupon for 5.00 USD off your next order, valid for 30 days"),
    (["--coupon-percent", "10"], "a coupon for 10% off your next order, valid for 30 days"),
    (["--waive", "12.50", "--invoice", "INV-9"], "we waive the 12.50 USD still outstanding on invoice INV-9"),
    (["--split-cost", "20.00", "--our-share", "50", "--split-as", "coupon"],
     "we pay 50% of the shared cost (20.00 USD): 10.00 USD as a coupon"),
    (["--gift-coupon", "3.00", "--gift-note", "a card from the team"],
     "a small gift from us: a gift voucher worth 3.00 USD; a card from the team"),
    (["--redo", "pitch the tent again"], "we redo the work: pitch the tent again"),
    (["--replacement", "a new tent by express"], "a replacement: a new tent by express"),
    (["--late-delivery", "the tent, at last"], "delivery of your order: the tent, at last"),
    (["--upgrade", "the deluxe tent"], "an upgrade at no extra cost: the deluxe tent"),
]


async def test_show_prints_a_line_for_every_kind_of_remedy(cli_env, stripe):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    opened = await invoke("incident", "open", *open_options(key, await paid_intent(stripe, 8_000)), env=cli_env)
    assert opened.code == 0, opened.err
    for args in (["apologise", key], ["needs", key, "--needs", "something for the trouble"]):
        step = await invoke("incident", *args, env=cli_env)
        assert step.code == 0, f"{args}: {step.err}"
    options = [option for options, _ in EVERY_KIND for option in options]
    proposed = await invoke("incident", "propose", key, *options, "--coupon-days", "30",
                            env=signed_in(cli_env, "Priya Shah", "manager"))
    assert proposed.code == 0, proposed.err

    shown = await invoke("incident", "show", key, env=cli_env)
    assert shown.code == 0, shown.err
    remedies = shown.out.split("\nRemedies\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert remedies[0] == "  #1 proposed: proposed by Priya Shah (manager)"
    # The options add items in their own order: refunds, coupons, waiver, split, gift, then the work items.
    assert [line.split(None, 2) for line in remedies[1:]] == [
        [f"remedy-1/item-{n}", "pending", text] for n, (_, text) in enumerate(EVERY_KIND, 1)
    ]
    assert "Refunded       0.00 USD of 80.00 USD paid; 80.00 USD refundable left" in shown.out


async def test_a_validation_error_names_the_option_that_filled_the_field(cli_env):
    key = f"order-{uuid.uuid4().hex[:8]}"  # never opened: with --currency nothing is asked before validating
    zero = await invoke("incident", "propose", key, "--currency", "USD", "--coupon", "0", env=cli_env)
    assert zero.code == 2, zero.err
    assert zero.err.startswith("invalid: items.0.coupon.amount_off.amount (--coupon): Input should be greater than 0")

    gift = await invoke("incident", "propose", key, "--currency", "USD", "--gift-coupon", "0", env=cli_env)
    assert gift.code == 2 and gift.err.startswith("invalid: items.0.gift.coupon_amount.amount (--gift-coupon): ")

    nothing = await invoke("incident", "propose", key, "--currency", "USD", env=cli_env)
    assert nothing.code == 2
    assert nothing.err.startswith(
        "invalid: items (--refund/--coupon/--coupon-percent/--waive/--split-cost/--gift-coupon/--gift-note/"
        "--redo/--replacement/--late-delivery/--upgrade/--items-json): List should have at least 1 item")

    words = await invoke("incident", "propose", key, "--currency", "USD", "--coupon", "abc", env=cli_env)
    assert words.code == 2 and "Invalid value for --coupon: 'abc' is not an amount like 80.00" in words.err


def test_the_options_of_every_remedy_kind_are_named_by_their_declarations():
    named = option_for(propose)
    assert named["items.coupon.amount_off"] == ["--coupon"]
    assert named["items.waive_balance.amount"] == ["--waive"]
    assert named["items.split_cost.cost"] == ["--split-cost"]
    assert named["items.gift.coupon_amount"] == ["--gift-coupon"]
    assert named["items.gift.note"] == ["--gift-note"]
    assert named["channel"] == ["--channel"]
    assert not any(path == "by" or path.startswith(("by.", "credential")) for path in named)  # from the token
    accept = option_for(cli.commands["incident"].commands["accept"])
    assert accept["on_behalf_of_customer"] == ["--on-behalf"]
    assert option_for(cli.commands["incident"].commands["confirm"])["item_id"] == ["ITEM_ID"]


# ---------------------------------------------------------------- commands from the registry


class ThankInput(StepInput):
    note: Text = Field(description="What we thank the customer for.")


THANK = StepSpec("thank", ThankInput, "Thank the customer for their patience.", effect=lambda pb, step: None,
                 cli=Cli("thank"))


def test_a_step_added_to_the_registry_gets_its_command():
    group = incident_group({**REGISTRY, "thank": THANK})
    helped = CliRunner().invoke(group, ["thank", "--help"])
    assert helped.exit_code == 0, helped.output
    assert "Usage: incident thank [OPTIONS] KEY" in helped.output
    assert "Thank the customer for their patience." in helped.output
    assert "--note TEXT" in helped.output and "What we thank the customer for." in helped.output
    assert "--channel TEXT" in helped.output and "--update-id TEXT" in helped.output
    assert "--by" not in helped.output and "--role" not in helped.output and "--credential" not in helped.output
    assert "thank" not in incident_group().commands

    missing = CliRunner().invoke(group, ["thank", "order-1"])
    assert missing.exit_code == 2 and "Missing option '--note'" in missing.output
    # Validated before anything is sent, naming the generated option.
    empty = CliRunner().invoke(group, ["thank", "order-1", "--note", ""])
    assert empty.exit_code == 2
    assert empty.output.startswith("invalid: note (--note): String should have at least 1 character")


def test_every_step_the_cli_offers_has_its_command():
    commands = cli.commands["incident"].commands
    for spec in REGISTRY.values():
        assert spec.cli is not None and spec.cli.command in commands, spec.name
    assert {"open", "show"} <= set(commands)


# ---------------------------------------------------------------- amends dev's progress


def test_amends_dev_ticks_off_each_step_at_a_terminal(capsys):
    out = DevOutput()
    screen = io.StringIO()
    out.console = Console(file=screen, force_terminal=False, width=100)
    out(progress("starting the Temporal dev server"))
    out(progress("starting the worker"))
    out("amends dev is running")
    out(progress("waiting for localstripe"))
    out("amends dev: localstripe exited unexpectedly")
    out.close()
    assert screen.getvalue().splitlines() == ["✓ starting the Temporal dev server", "✓ starting the worker"]
    printed = capsys.readouterr()
    assert printed.out == "amends dev is running\n"
    assert printed.err == "amends dev: localstripe exited unexpectedly\n"


@pytest.mark.parametrize("line", ["amends dev: starting the worker…", "amends dev is running"])
def test_amends_dev_prints_plain_lines_elsewhere(capsys, line):
    DevOutput()(line)  # pytest's captured streams are not terminals
    printed = capsys.readouterr()
    assert (printed.err if line.startswith("amends dev:") else printed.out) == line + "\n"


async def test_an_approval_states_its_total_as_a_decimal_and_a_wrong_one_is_refused(cli_env, stripe):
    key = f"order-{uuid.uuid4().hex[:8]}-late"
    opened = await invoke("incident", "open", *open_options(key, await paid_intent(stripe, 8_000)), env=cli_env)
    assert opened.code == 0, opened.err
    for args in (["apologise", key], ["needs", key, "--needs", "my money back"],
                 ["propose", key, "--refund", "60.00"]):
        step = await invoke("incident", *args, env=cli_env)
        assert step.code == 0, f"{args}: {step.err}"
    manager = signed_in(cli_env, "Marcus Webb", "manager")
    wrong = await invoke("incident", "approve", key, "--remedy", "1", "--total", "50.00", env=manager)
    assert wrong.code == 1 and "total: remedy #1 is worth 60.00 USD, not 50.00 USD" in wrong.err
    bad = await invoke("incident", "approve", key, "--remedy", "1", "--total", "60.001", env=manager)
    assert bad.code == 2 and "--total" in bad.err
    right = await invoke("incident", "approve", key, "--remedy", "1", "--total", "60.00", env=manager)
    assert right.code == 0, right.err

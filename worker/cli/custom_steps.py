"""The steps whose input the CLI builds by hand (``Cli(custom=True)``): many items or actions from options.

Each option says which field it fills (``fills``), so that a validation
error names it; an option that adds an item or an action also fills the
list itself.
"""

from __future__ import annotations

import json
from email.utils import parseaddr

import click

from worker.cli.connection import CONTEXT, Connection, build
from worker.cli.credentials import step_signer
from worker.cli.fields import field_option, option_for, to_minor
from worker.cli.render import print_step_result
from worker.cli.steps import actor_options, step_data, take_step
from workflows.client import AmendsClient
from workflows.inputs import PostmortemInput, RemedyProposal, SystemCondition
from workflows.snapshot import StepResult

WORK_KINDS = ("redo", "replacement", "late_delivery", "upgrade")


@click.command(context_settings=CONTEXT)
@click.argument("key")
@field_option("--refund", "refunds", fills=("items", "items.refund.amount"), multiple=True, metavar="AMOUNT",
              help="Money back, as a decimal (30.00) in the order's currency. Repeatable.")
@click.option("--currency", default=None, help="Currency of the amounts; default the order's.")
@field_option("--coupon", "coupons", fills=("items", "items.coupon.amount_off"), multiple=True, metavar="AMOUNT",
              help="A coupon for an amount off. Repeatable.")
@field_option("--coupon-percent", "coupon_percents", fills=("items", "items.coupon.percent_off"), multiple=True,
              type=click.IntRange(1, 100), metavar="N", help="A coupon for N% off. Repeatable.")
@field_option("--coupon-days", fills="items.coupon.valid_for_days", default=365, show_default=True,
              type=click.IntRange(1, 3660), help="How long the coupons are valid.")
@field_option("--waive", fills=("items", "items.waive_balance.amount"), default=None, metavar="AMOUNT",
              help="Waive an outstanding balance (with --invoice).")
@field_option("--invoice", fills="items.waive_balance.invoice_reference", default=None,
              help="The invoice whose balance --waive waives.")
@field_option("--split-cost", fills=("items", "items.split_cost.cost"), default=None, metavar="AMOUNT",
              help="A cost both sides share (with --our-share).")
@field_option("--our-share", fills="items.split_cost.our_share_percent", default=None, type=click.IntRange(1, 100),
              metavar="PERCENT", help="Our share of --split-cost, in percent.")
@field_option("--split-as", fills="items.split_cost.paid_as", type=click.Choice(["refund", "coupon"]),
              default="refund", show_default=True, help="How we pay our share.")
@field_option("--split-description", fills="items.split_cost.description", default="the shared cost",
              show_default=True, help="What the cost is for.")
@field_option("--gift-coupon", fills=("items", "items.gift.coupon_amount"), default=None, metavar="AMOUNT",
              help="A goodwill gift voucher.")
@field_option("--gift-note", fills=("items", "items.gift.note"), default=None, metavar="TEXT",
              help="A goodwill gift note.")
@field_option("--redo", fills=("items", "items.redo.description"), multiple=True, metavar="TEXT",
              help="Redo the work. Repeatable.")
@field_option("--replacement", fills=("items", "items.replacement.description"), multiple=True, metavar="TEXT",
              help="Send a replacement. Repeatable.")
@field_option("--late-delivery", fills=("items", "items.late_delivery.description"), multiple=True, metavar="TEXT",
              help="Deliver what was ordered, late. Repeatable.")
@field_option("--upgrade", fills=("items", "items.upgrade.description"), multiple=True, metavar="TEXT",
              help="An upgrade at no extra cost. Repeatable.")
@field_option("--items-json", fills="items", type=click.File("r"), default=None, metavar="FILE",
              help="Items as a JSON list (any kind, see schema/propose_remedy.schema.json); '-' reads stdin.")
@field_option("--note", fills="note", default=None, help="A note on the proposal.")
@actor_options
@click.pass_context
def propose(ctx, key, refunds, currency, coupons, coupon_percents, coupon_days, waive, invoice, split_cost,
            our_share, split_as, split_description, gift_coupon, gift_note, redo, replacement, late_delivery,
            upgrade, items_json, note, channel, update_id) -> None:
    """Propose a remedy (step propose_remedy): any mix of the remedies the playbook names."""
    conn: Connection = ctx.obj
    if (waive is None) != (invoice is None):
        raise click.UsageError("--waive and --invoice go together")
    if (split_cost is None) != (our_share is None):
        raise click.UsageError("--split-cost and --our-share go together")
    work_items = dict(zip(WORK_KINDS, (redo, replacement, late_delivery, upgrade), strict=True))
    signer = step_signer()

    async def work(amends: AmendsClient) -> StepResult:
        cur = currency
        if cur is None:
            cur = (await amends.snapshot(key)).report.order.amount_paid.currency
        cur = cur.upper()

        def m(text: str, option: str) -> dict:
            return {"amount": to_minor(text, cur, option), "currency": cur}

        items: list[dict] = [{"kind": "refund", "amount": m(r, "--refund")} for r in refunds]
        items += [{"kind": "coupon", "amount_off": m(c, "--coupon"), "valid_for_days": coupon_days} for c in coupons]
        items += [{"kind": "coupon", "percent_off": p, "valid_for_days": coupon_days} for p in coupon_percents]
        if waive is not None:
            items.append({"kind": "waive_balance", "amount": m(waive, "--waive"), "invoice_reference": invoice})
        if split_cost is not None:
            items.append({"kind": "split_cost", "cost": m(split_cost, "--split-cost"), "our_share_percent": our_share,
                          "paid_as": split_as, "description": split_description})
        if gift_coupon is not None or gift_note is not None:
            gift: dict = {"kind": "gift", "note": gift_note}
            if gift_coupon is not None:
                gift["coupon_amount"] = m(gift_coupon, "--gift-coupon")
            items.append(gift)
        for kind, texts in work_items.items():
            items += [{"kind": kind, "description": t} for t in texts]
        if items_json is not None:
            try:
                extra = json.load(items_json)
            except ValueError as err:
                raise click.BadParameter(f"not JSON: {err}", param_hint="--items-json") from None
            if not isinstance(extra, list):
                raise click.BadParameter("must be a JSON list of items", param_hint="--items-json")
            items += extra
        data = step_data(channel, items=items, note=note)
        step = build(RemedyProposal, data, option_for(ctx.command))
        return await amends.propose_remedy(key, step, update_id)

    print_step_result(conn.run(key, work, signer=signer))


CONDITIONS = [c.value for c in SystemCondition]


def parse_factor(text: str) -> dict:
    """``"capacity:peak season doubled the parcels"`` is a contributing factor of kind capacity."""
    kind, sep, condition = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in CONDITIONS:
        raise click.BadParameter(
            f"{text!r} is not KIND:condition with KIND one of {', '.join(CONDITIONS)}", param_hint="--factor"
        )
    return {"kind": kind, "condition": condition.strip()}


def parse_owner(text: str) -> dict:
    """``"Ann Lee <ann@example.com>"``, or a bare address (then the address is the name too)."""
    name, address = parseaddr(text)
    address = address or text.strip()
    return {"name": name.strip() or address, "email": address}


@click.command(context_settings=CONTEXT)
@click.argument("key")
@field_option("--what", fills="what_happened", required=True, help="What happened, internally and in plain words.")
@field_option("--category", fills="root_cause_category", type=click.Choice(CONDITIONS), required=True,
              help="Where the root cause lies: a condition of the system.")
@field_option("--root-cause", fills="root_cause", required=True, help="A condition of the system, not a person.")
@field_option("--factor", "factors", fills="contributing_factors", multiple=True, metavar="KIND:TEXT",
              help="A contributing factor, e.g. 'capacity:peak season doubled the parcels'. Repeatable.")
@field_option("--action", "actions", fills=("preventive_actions", "preventive_actions.action"), multiple=True,
              required=True, metavar="TEXT",
              help="A preventive action. Repeatable; each takes the --owner and --due in the same position.")
@field_option("--owner", "owners", fills="preventive_actions.owner", multiple=True, metavar="'NAME <EMAIL>'",
              help="Owner of the preventive action in the same position ('Ann Lee <ann@example.com>' or an "
                   "email). Repeatable.")
@field_option("--due", "dues", fills="preventive_actions.due", multiple=True, metavar="YYYY-MM-DD",
              help="Due date of the preventive action in the same position (today or later). Repeatable.")
@actor_options
@click.pass_context
def postmortem(ctx, key, what, category, root_cause, factors, actions, owners, dues, channel, update_id) -> None:
    """Record the blameless post-mortem (step record_postmortem): what happened, the root cause and its
    category, contributing factors as conditions of the system, and preventive actions, each with an
    owner and a due date.

    \b
    amends incident postmortem order-1001-late --what "the parcel left with another order's label" \\
      --category process --root-cause "labels are printed by hand, away from the order system" \\
      --factor "capacity:peak season doubled the parcels per packer" \\
      --action "print labels from the order system" --owner "Ann Lee <ann@example.com>" --due 2026-12-15 \\
      --action "scan each label at packing" --owner ops@example.com --due 2027-01-31
    """
    if not len(actions) == len(owners) == len(dues):
        raise click.UsageError(
            f"--action, --owner and --due go together, in order: got {len(actions)} --action, "
            f"{len(owners)} --owner and {len(dues)} --due; give each --action its --owner and --due"
        )
    data = step_data(
        channel, what_happened=what, root_cause_category=category, root_cause=root_cause,
        contributing_factors=[parse_factor(f) for f in factors],
        preventive_actions=[{"action": a, "owner": parse_owner(o), "due": d}
                            for a, o, d in zip(actions, owners, dues, strict=True)],
    )
    take_step(ctx, key, "record_postmortem", PostmortemInput, data, update_id)


# By the command each custom step's Cli names.
CUSTOM_COMMANDS: dict[str, click.Command] = {c.name: c for c in (propose, postmortem) if c.name}

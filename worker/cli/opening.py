"""``amends incident open``: an incident from options, or from an IncidentReport as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from worker.cli.connection import CONTEXT, EXIT_INVALID, Connection, build, fail
from worker.cli.fields import field_option, option_for, to_minor
from worker.cli.render import print_step_result
from workflows.inputs import Category, IncidentReport, Severity


@click.command("open", context_settings=CONTEXT)
@click.option("--json", "json_file", type=click.File("r"), default=None,
              help="An IncidentReport as JSON (see schema/open.schema.json); - for stdin.")
@field_option("--key", fills="incident_key", help="Your own key for the incident, e.g. order-1001-late.")
@field_option("--customer-id", fills="customer.customer_id")
@field_option("--customer-name", fills="customer.name")
@field_option("--email", fills="customer.email", help="The customer's email address.")
@field_option("--order-id", fills="order.order_id")
@field_option("--amount", fills=("order.amount_paid", "order.amount_paid.amount"),
              help="Amount paid, as a decimal: 80.00.")
@field_option("--currency", fills=("order.amount_paid", "order.amount_paid.currency"),
              help="ISO 4217 code: USD, EUR, ...")
@field_option("--payment-ref", fills="order.payment_reference",
              help="Stripe charge (ch_...) or payment intent (pi_...) that refunds go back to.")
@field_option("--category", fills="category", type=click.Choice([c.value for c in Category]))
@field_option("--severity", fills="severity", type=click.Choice([s.value for s in Severity]))
@field_option("--what", fills="what_happened", help="What went wrong, in plain words (shown to the customer).")
@field_option("--impact", fills="impact", help="What it did to the customer (shown to the customer).")
@field_option("--detected-at", fills="detected_at", help="ISO 8601 time with a zone; default now (UTC).")
@field_option("--owner-name", fills="owner.name", help="Who is answerable internally; stalls escalate to them.")
@field_option("--owner-email", fills="owner.email")
@field_option("--staff", fills="staff_involved", multiple=True,
              help="Staff connected with the failure (kept internal). Repeatable.")
@click.pass_context
def open_(ctx: click.Context, json_file, key, customer_id, customer_name, email, order_id, amount, currency,
          payment_ref, category, severity, what, impact, detected_at, owner_name, owner_email, staff) -> None:
    """Open an incident (or find the one already open under this key) and print its id and stage."""
    options = {"key": key, "customer_id": customer_id, "customer_name": customer_name, "email": email,
               "order_id": order_id, "amount": amount, "currency": currency, "payment_ref": payment_ref,
               "category": category, "severity": severity, "what": what, "impact": impact,
               "detected_at": detected_at, "owner_name": owner_name, "owner_email": owner_email}
    if json_file is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
        given += ["--staff"] if staff else []
        if given:
            raise click.UsageError(f"--json replaces the other options; drop {', '.join(given)}")
        try:
            given_json: Any = json.load(json_file)
        except json.JSONDecodeError as err:
            fail(f"invalid: {json_file.name}: not JSON: {err}", EXIT_INVALID)
        # Field names only: the JSON's fields are its own, not options.
        report = build(IncidentReport, given_json)
    else:
        if amount is not None and currency is None:
            raise click.UsageError("--amount needs --currency (to know its minor units)")
        data: dict[str, Any] = {
            "incident_key": key,
            "customer": {"customer_id": customer_id, "name": customer_name, "email": email},
            "order": {"order_id": order_id, "payment_reference": payment_ref},
            "category": category,
            "severity": severity,
            "what_happened": what,
            "impact": impact,
            "detected_at": detected_at or datetime.now(UTC),
            "staff_involved": list(staff),
        }
        if amount is not None:
            data["order"]["amount_paid"] = {"amount": to_minor(amount, currency, "--amount"),
                                            "currency": currency.upper()}
        if owner_name or owner_email:
            data["owner"] = {"name": owner_name, "email": owner_email}
        report = build(IncidentReport, _drop_none(data), option_for(ctx.command))
    conn: Connection = ctx.obj
    snap = conn.run(report.incident_key, lambda amends: amends.open_incident(report))
    print_step_result(snap)


def _drop_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    return data

"""Every human step, declared once: its input, its guard and its effect on the incident.

The transition table (``workflows/stages.py``) says *when* a step may
happen; this registry says *what it takes and does*. Everything else is
derived from the two: the update handlers and validators of
``IncidentRecovery`` (``workflows/incident.py``), the typed client's
methods (``workflows/client.py``), the JSON Schemas (``amends schema``) and
the CLI's step commands. Adding a step means a row in the table, an entry
here and its test.

Guards are pure (validators must not change anything) and raise
``Refused`` with a message for the caller; effects run in the update
handler, change the state, queue side effects and record the step once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from workflows import metrics
from workflows.effects import CancelWorkOrders, DeliverRemedy, NotifyCustomer, TellCrm
from workflows.formatting import a, money
from workflows.guards import Refused, check_money
from workflows.inputs import (
    AcceptInput,
    Actor,
    ApologyInput,
    ApprovalInput,
    CloseInput,
    CompleteActionInput,
    Decision,
    DeclineInput,
    FlagInput,
    FulfilmentConfirmation,
    NeedsInput,
    PostmortemInput,
    RemedyProposal,
    RenegotiateInput,
    Role,
    StepInput,
)
from workflows.names import name_pattern
from workflows.recovery import APPROVER_ROLES, Recovery
from workflows.snapshot import ActionState, Remedy, RemedyItemState

if TYPE_CHECKING:
    from workflows.playbook import Playbook

In = TypeVar("In", bound=StepInput)


@dataclass(frozen=True)
class Cli:
    """How ``amends incident`` offers the step: fields become ``--field-name`` options unless said here."""

    command: str
    arguments: tuple[str, ...] = ()  # fields taken as positional arguments, in order
    options: Mapping[str, str] = field(default_factory=dict)  # field -> option, e.g. {"what_happened": "--what"}
    custom: bool = False  # the CLI builds this step's input from options of its own (many items)
    # Fields in the order's minor units that a person gives as a decimal (600.00), converted by the CLI.
    amounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepSpec(Generic[In]):
    name: str
    input: type[In]
    description: str
    effect: Callable[[Playbook, In], None]
    guard: Callable[[Recovery, In, datetime], None] | None = None
    cli: Cli | None = None


# ================================================================ guards


def _decided(r: Recovery, step: Decision) -> Remedy:
    """A decision names the remedy it decides, and that remedy is the one pending."""
    p = r.proposal
    assert p is not None  # the table's has_proposal condition ran first
    if step.remedy is None:
        raise Refused(f"remedy: name the remedy this decides; the pending proposal is #{p.number}")
    if step.remedy != p.number:
        raise Refused(f"remedy: #{step.remedy} is not the pending proposal; #{p.number} is")
    return p


def _approvable(r: Recovery, step: ApprovalInput, now: datetime) -> None:
    p = _decided(r, step)
    total = r.remedy_value(p)
    if step.total is None:
        raise Refused(f"total: state the total you approve; remedy #{p.number} is worth {money(total, r.currency)} "
                      f"({total} in minor units)")
    if step.total != total:
        raise Refused(f"total: remedy #{p.number} is worth {money(total, r.currency)}, not "
                      f"{money(step.total, r.currency)}; approve what is proposed")
    role = step.actor.role
    if role not in APPROVER_ROLES:
        raise Refused(f"role: {a(role)} cannot approve a remedy; an agent, manager or director can")
    limit = r.limit(role)
    if total > limit:
        raise Refused(
            f"role: {a(role)} may approve up to {money(limit, r.currency)}; remedy #{p.number} "
            f"is worth {money(total, r.currency)} and needs {a(r.approver_for(total))}"
        )
    if role != Role.DIRECTOR and r.beyond_goodwill(p):
        raise Refused(f"role: {goodwill_reason(r, p)}; only a director can approve it")


def goodwill_reason(r: Recovery, p: Remedy) -> str:
    return (
        f"remedy #{p.number} gives {money(r.goodwill(p), r.currency)} in coupons, waivers and gifts, beyond this "
        f"incident's goodwill ceiling of {money(r.goodwill_ceiling, r.currency)} "
        f"({money(r.goodwill_committed(), r.currency)} already agreed)"
    )


# Whose yes counts: the customer's own, or a backend's acting for the customer.
CUSTOMER_VOICES = (Role.CUSTOMER, Role.BACKEND)


def _acceptable(r: Recovery, step: AcceptInput, now: datetime) -> None:
    p = _decided(r, step)
    if step.actor.role not in CUSTOMER_VOICES:
        recorded = step.on_behalf_of_customer and step.actor.role in APPROVER_ROLES and step.channel != "agent"
        if not recorded:
            raise Refused(
                f"role: {a(step.actor.role)}'s own acceptance does not count; only the customer's does: a backend "
                f"acting for the customer, or staff recording the customer's yes with on_behalf_of_customer and "
                f"the channel the customer used (email, phone, chat, ...)"
            )
    # The ceiling may have moved since the proposal (another remedy delivered).
    check_money(r, [i.item for i in p.items], "items")


def _declinable(r: Recovery, step: DeclineInput, now: datetime) -> None:
    _decided(r, step)


def _capped(r: Recovery, actor: Actor, step: str, taken: int, most: int, setting: str) -> None:
    # Past the cap a director decides: the circle stops without wedging the incident.
    if taken >= most and actor.role != Role.DIRECTOR:
        raise Refused(f"{step} refused: taken {taken} times in this incident, the most the policy allows "
                      f"(remedies.{setting}); beyond it only a director may, after talking it through with "
                      f"the customer")


def _proposable(r: Recovery, step: RemedyProposal, now: datetime) -> None:
    _capped(r, step.actor, "propose_remedy", len(r.s.remedies), r.remedy_policy.max_proposals, "max_proposals")
    check_money(r, list(step.items), "items")


def _renegotiable(r: Recovery, step: RenegotiateInput, now: datetime) -> None:
    taken = sum(1 for remedy in r.s.remedies if remedy.status == "renegotiated")
    _capped(r, step.actor, "renegotiate", taken, r.remedy_policy.max_renegotiations, "max_renegotiations")


def _needs_room(r: Recovery, step: NeedsInput, now: datetime) -> None:
    _capped(r, step.actor, "record_needs", len(r.s.needs), r.remedy_policy.max_needs, "max_needs")


def _confirmable(r: Recovery, step: FulfilmentConfirmation, now: datetime) -> None:
    agreed = r.agreed
    assert agreed is not None
    item = next((i for i in agreed.items if i.item_id == step.item_id), None)
    if item is None:
        waiting = ", ".join(i.item_id for i in r.items_to_confirm()) or "none"
        raise Refused(f"item_id: no item '{step.item_id}' in the agreed remedy; items to confirm: {waiting}")
    if item.item.delivery not in ("work_order", "billing"):
        raise Refused(f"item_id: '{item.item_id}' is a {item.item.kind}; the engine delivers it, nobody confirms it")
    if item.status == "delivered":
        raise Refused(f"item_id: '{item.item_id}' was already confirmed as delivered")
    if item.status in ("failed", "cancelled"):
        raise Refused(f"item_id: '{item.item_id}' {item.status}: {item.failure or 'renegotiate the remedy'}")


def _blameless(r: Recovery, pm: PostmortemInput, now: datetime) -> None:
    today = now.date()
    for n, action in enumerate(pm.preventive_actions):
        if action.due < today:
            raise Refused(
                f"preventive_actions[{n}].due: {action.due.isoformat()} is in the past; "
                f"give a due date from {today.isoformat()} on"
            )
    # Blameless: the post-mortem describes the system, not a person. Every form
    # of a name counts ("Lomax, Kevin", "STRAUSS", "O’Brien"); a name that is
    # also an ordinary word only where it stands as a name (workflows.names).
    # The preventive actions are read too: the anniversary note tells the
    # customer what was done.
    texts = [pm.what_happened, pm.root_cause, *(f.condition for f in pm.contributing_factors),
             *(a.action for a in pm.preventive_actions)]
    pattern = name_pattern(r.s.report.staff_involved, min_part=3)
    found = next((m for t in texts if pattern and (m := pattern.search(t))), None)
    if found is not None:
        raise Refused(
            f"root_cause: a blameless post-mortem names no one ('{found.name}' appears); describe the "
            f"condition of the system that let it happen"
        )


def _open_action(r: Recovery, done: CompleteActionInput, now: datetime) -> None:
    action = next((x for x in r.s.actions if x.action_id == done.action_id), None)
    if action is None:
        open_ids = ", ".join(x.action_id for x in r.s.actions if x.status == "open") or "none"
        raise Refused(f"action_id: no action '{done.action_id}'; open actions: {open_ids}")
    if action.status == "done" and action.completed_at is not None:
        raise Refused(f"action_id: '{done.action_id}' was completed on {action.completed_at:%Y-%m-%d}")


def _not_flagged(r: Recovery, step: FlagInput, now: datetime) -> None:
    if r.s.red_flagged:
        raise Refused("flag_account refused: the account is already red-flagged")


# ================================================================ effects


def _apologise(pb: Playbook, step: ApologyInput) -> None:
    metrics.apologised(pb.s.report, pb.now() - pb.s.report.detected_at)
    pb.queue(NotifyCustomer("apology"))
    # The written apology is recorded when it goes out ("notice"); before the patch this said it was sent.
    pb.recorded(step, "apologised; the written apology follows by e-mail" if pb.v.patched("notice-entries")
                else "apology sent to the customer")


def _record_needs(pb: Playbook, step: NeedsInput) -> None:
    pb.s.needs.append(step.needs)
    pb.recorded(step, step.needs)


def _propose_remedy(pb: Playbook, step: RemedyProposal) -> None:
    r = pb.r
    for old in pb.s.remedies:
        if old.status == "proposed":
            old.status = "declined"  # superseded before the customer answered
    number = len(pb.s.remedies) + 1
    items = [RemedyItemState(item_id=f"remedy-{number}/item-{n}", item=item) for n, item in enumerate(step.items, 1)]
    remedy = Remedy(number=number, proposed_by=step.actor, proposed_at=pb.now(), note=step.note, items=items)
    total = r.remedy_value(remedy)
    if total > r.limit(step.actor.role):
        remedy.needs_approval_from = r.approver_for(total)
    if step.actor.role != Role.DIRECTOR and pb.v.patched("goodwill-ceiling") and r.beyond_goodwill(remedy):
        remedy.needs_approval_from = Role.DIRECTOR
    pb.s.remedies.append(remedy)
    detail = f"remedy #{number}: " + "; ".join(i.item.describe() for i in items)
    if remedy.needs_approval_from:
        # An over-limit proposal goes to the customer only once approved. The
        # clock pauses only while the customer holds the next move: if the
        # proposal this one replaces was waiting on them, it runs again now.
        pb.recorded(step, detail + f" (needs approval by {a(remedy.needs_approval_from)})")
        if pb.v.patched("pause-only-on-customer"):
            pb.clock.resume()
            pb.publish()
        return
    pb.queue(NotifyCustomer("proposal"))
    pb.recorded(step, detail)
    pb.clock.pause()  # the proposal now waits on the customer
    pb.publish()


def _approve_remedy(pb: Playbook, step: ApprovalInput) -> None:
    p = pb.r.proposal
    assert p is not None
    released = p.needs_approval_from is not None and p.approved_by is None
    if released:
        pb.queue(NotifyCustomer("proposal"))
    p.approved_by = step.actor
    limit = pb.r.limit(step.actor.role)
    pb.recorded(step, f"remedy #{p.number} approved by {a(step.actor.role)} (limit {money(limit, pb.r.currency)})")
    if released:
        pb.clock.pause()  # the proposal now waits on the customer
        pb.publish()


def _accept_remedy(pb: Playbook, step: AcceptInput) -> None:
    p = pb.r.proposal
    assert p is not None
    p.accepted_by, p.accepted_at, p.status = step.actor, pb.now(), "agreed"
    pb.queue(NotifyCustomer("confirmation"))
    pb.queue(DeliverRemedy(p.number))
    who = "an agent on the customer's behalf" if step.on_behalf_of_customer else f"the {step.actor.role}"
    pb.recorded(step, f"remedy #{p.number} accepted by {who} via {step.channel}")


def _decline_remedy(pb: Playbook, step: DeclineInput) -> None:
    p = pb.r.proposal
    assert p is not None
    p.status = "declined"
    pb.recorded(step, f"remedy #{p.number} declined: {step.reason}")
    pb.clock.resume()  # the customer has answered
    pb.publish()


def _confirm_fulfilment(pb: Playbook, step: FulfilmentConfirmation) -> None:
    agreed = pb.r.agreed
    assert agreed is not None
    item = next(i for i in agreed.items if i.item_id == step.item_id)
    item.status, item.reference = "delivered", step.note
    pb.recorded(step, f"{item.item_id} delivered: {item.item.describe()}")
    # When this was the last item, the remedy is fulfilled before the update
    # returns, so the caller can close straight away.
    pb.fulfil_if_delivered(agreed)


def _renegotiate(pb: Playbook, step: RenegotiateInput) -> None:
    agreed = pb.r.agreed
    assert agreed is not None
    agreed.status = "renegotiated"
    cancelled = [item for item in agreed.items if item.status not in ("delivered", "failed")]
    for item in cancelled:
        item.status = "cancelled"
    if cancelled:
        # The backends that were sent a work order for these must stop the work
        # (delivery knows which were sent, and cancels each once).
        pb.queue(CancelWorkOrders(agreed.number, step.reason))
    pb.recorded(step, f"remedy #{agreed.number} renegotiated: {step.reason}")


def _close(pb: Playbook, step: CloseInput) -> None:
    pb.s.closed_at = pb.now()
    metrics.closed(pb.s.report, pb.now() - pb.s.report.detected_at)
    pb.queue(NotifyCustomer("closing"))
    pb.recorded(step, step.summary or "closed")


def _record_postmortem(pb: Playbook, step: PostmortemInput) -> None:
    pb.s.postmortem = step
    pb.s.actions = [
        ActionState(action_id=f"action-{n}", action=x.action, owner=x.owner, due=x.due)
        for n, x in enumerate(step.preventive_actions, start=1)
    ]
    actions = len(step.preventive_actions)
    pb.recorded(step, f"root cause ({step.root_cause_category}): {step.root_cause}; {actions} actions")


def _complete_action(pb: Playbook, step: CompleteActionInput) -> None:
    action = next(x for x in pb.s.actions if x.action_id == step.action_id)
    action.status, action.completed_at, action.completed_by = "done", pb.now(), step.actor
    pb.recorded(step, f"{action.action_id} done: {action.action}")


def _flag_account(pb: Playbook, step: FlagInput) -> None:
    pb.s.red_flagged = True
    pb.s.flags.append(step.reason)
    pb.queue(TellCrm(step.reason))  # internal only: never in a customer notice
    pb.recorded(step, step.reason)


# ================================================================ the registry

_SPECS: tuple[StepSpec[Any], ...] = (
    StepSpec("apologise", ApologyInput, "Apologise to the customer, first and fast; sends the apology notice.",
             _apologise, cli=Cli("apologise")),
    StepSpec("record_needs", NeedsInput, "Record what the customer needs, in their own words.",
             _record_needs, _needs_room, Cli("needs")),
    StepSpec("propose_remedy", RemedyProposal,
             "Propose a remedy (refunds, redo, replacement, upgrade); sends the proposal notice.",
             _propose_remedy, _proposable, Cli("propose", custom=True)),
    StepSpec("approve_remedy", ApprovalInput, "Approve the pending remedy, within the approver's role limit.",
             _approve_remedy, _approvable, Cli("approve", amounts=("total",))),
    StepSpec("accept_remedy", AcceptInput, "The customer accepts the proposed remedy; delivery starts.",
             _accept_remedy, _acceptable, Cli("accept", options={"on_behalf_of_customer": "--on-behalf"})),
    StepSpec("decline_remedy", DeclineInput, "The customer declines the proposal; back to listening.",
             _decline_remedy, _declinable, Cli("decline")),
    StepSpec("confirm_fulfilment", FulfilmentConfirmation,
             "Confirm that a manual item (redo, replacement, upgrade) was delivered.",
             _confirm_fulfilment, _confirmable, Cli("confirm", arguments=("item_id",))),
    StepSpec("renegotiate", RenegotiateInput, "The agreed remedy cannot be delivered: go back and agree another.",
             _renegotiate, _renegotiable, Cli("renegotiate")),
    StepSpec("close", CloseInput, "Close the incident: tell the customer what was done, apologise once more.",
             _close, cli=Cli("close")),
    StepSpec("record_postmortem", PostmortemInput,
             "Record the blameless post-mortem: root cause and preventive actions.",
             _record_postmortem, _blameless, Cli("postmortem", custom=True)),
    StepSpec("complete_action", CompleteActionInput,
             "Mark a preventive action from the post-mortem done; its reminders stop.",
             _complete_action, _open_action, Cli("complete-action", arguments=("action_id",))),
    StepSpec("flag_account", FlagInput, "Red-flag the account (internal only; suppresses the anniversary gift).",
             _flag_account, _not_flagged, Cli("flag")),
)

REGISTRY: dict[str, StepSpec[Any]] = {spec.name: spec for spec in _SPECS}

"""The recovery playbook as one transition table.

Everything that needs to know which step may happen when -- the workflow's
update validators, the Mermaid diagram in the docs, the tests' reference
model -- reads ``STEPS`` below. Nothing else lists transitions.

This module is deterministic and free of I/O so that the workflow sandbox can
import it (``transitions`` is passed through the sandbox by the workflow).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from transitions import Machine


class Stage(StrEnum):
    """The eight stages of the playbook, in order (search attribute ``RecoveryStage``)."""

    DETECTED = "detected"
    APOLOGISED = "apologised"
    NEEDS_GATHERED = "needs_gathered"
    REMEDY_AGREED = "remedy_agreed"
    FULFILLED = "fulfilled"
    CLOSED = "closed"
    POSTMORTEM_DONE = "postmortem_done"
    ANNIVERSARY = "anniversary"


# Stages from which nothing that changes the customer-facing outcome may
# happen: "once it is closed, it is over" (playbook, stage 6).
AFTER_CLOSURE = frozenset({Stage.CLOSED, Stage.POSTMORTEM_DONE, Stage.ANNIVERSARY})


@dataclass(frozen=True)
class Step:
    """One row of the table.

    ``dest=None`` is an internal step: it records something without leaving
    the stage (a proposal, an approval, a confirmation, a red flag).
    ``by`` says who may take the step: ``human`` steps are Workflow Updates,
    ``engine`` steps are taken by the workflow itself (a remedy fully
    delivered) and ``clock`` steps by a durable timer.
    ``conditions`` name predicates of the workflow's recovery state; the
    validator reports the first one that fails and the machine checks them
    again when the step is taken.
    """

    trigger: str
    source: tuple[Stage, ...] | str
    dest: Stage | None
    by: str
    doc: str
    conditions: tuple[str, ...] = ()


S = Stage
STEPS: tuple[Step, ...] = (
    Step("apologise", (S.DETECTED,), S.APOLOGISED, "human",
         "Apologise first and fast: a notice to the customer, before any talk of amends."),
    Step("record_needs", (S.APOLOGISED,), S.NEEDS_GATHERED, "human",
         "Record, in the customer's own words, what they need to make it right."),
    Step("record_needs", (S.NEEDS_GATHERED,), None, "human",
         "Add to what the customer said they need."),
    Step("propose_remedy", (S.NEEDS_GATHERED,), None, "human",
         "Propose a remedy fair to both sides (replaces an unanswered proposal)."),
    Step("approve_remedy", (S.NEEDS_GATHERED,), None, "human",
         "Approve the pending proposal; money above an agent's limit needs it.",
         ("has_proposal",)),
    Step("accept_remedy", (S.NEEDS_GATHERED,), S.REMEDY_AGREED, "human",
         "The customer accepts the proposal.",
         ("has_proposal", "is_approved")),
    Step("decline_remedy", (S.NEEDS_GATHERED,), S.NEEDS_GATHERED, "human",
         "The customer declines: back to listening, the proposal kept in the timeline.",
         ("has_proposal",)),
    Step("confirm_fulfilment", (S.REMEDY_AGREED,), None, "human",
         "A backend or agent confirms a manual item (redo, replacement, upgrade) was delivered.",
         ("has_items_to_confirm",)),
    Step("fulfil", (S.REMEDY_AGREED,), S.FULFILLED, "engine",
         "Every item of the agreed remedy has been delivered.",
         ("is_delivered",)),
    Step("renegotiate", (S.REMEDY_AGREED,), S.NEEDS_GATHERED, "human",
         "The agreed remedy cannot be delivered: agree another (money back is always on the table).",
         ("has_undelivered_items",)),
    Step("close", (S.FULFILLED,), S.CLOSED, "human",
         "Tell the customer what was done, apologise once more, and move on."),
    Step("record_postmortem", (S.CLOSED,), S.POSTMORTEM_DONE, "human",
         "A blameless post-mortem: the system failed, not a person."),
    Step("complete_action", (S.POSTMORTEM_DONE,), None, "human",
         "A preventive action from the post-mortem is done; its reminders stop.",
         ("has_open_actions",)),
    Step("anniversary", (S.POSTMORTEM_DONE,), S.ANNIVERSARY, "clock",
         "A year after the mistake, a note from the top."),
    Step("flag_account", "*", None, "human",
         "Red-flag an abusive account, internally; no anniversary gift."),
)

HUMAN_STEPS: tuple[str, ...] = tuple(dict.fromkeys(s.trigger for s in STEPS if s.by == "human"))


def sources(step: Step) -> tuple[Stage, ...]:
    return tuple(Stage) if step.source == "*" else step.source  # type: ignore[return-value]


def steps_from(stage: Stage) -> list[Step]:
    return [s for s in STEPS if stage in sources(s)]


def step_for(stage: Stage, trigger: str) -> Step | None:
    return next((s for s in steps_from(stage) if s.trigger == trigger), None)


def machine_transitions() -> list[dict[str, Any]]:
    """The table in the shape the ``transitions`` library takes."""
    out = []
    for s in STEPS:
        src = "*" if s.source == "*" else [str(x) for x in s.source]
        out.append(
            {
                "trigger": s.trigger,
                "source": src,
                "dest": None if s.dest is None else str(s.dest),
                "conditions": list(s.conditions),
            }
        )
    return out


def build_machine(model: object, initial: Stage = Stage.DETECTED) -> Machine:
    """A ``transitions`` machine over ``model``; its ``state`` attribute is the stage.

    ``auto_transitions=False`` because the default ``to_<stage>()`` triggers
    would bypass every guard.
    """
    return Machine(
        model=model,
        states=[str(s) for s in Stage],
        transitions=machine_transitions(),
        initial=str(initial),
        auto_transitions=False,
        ignore_invalid_triggers=False,
        model_attribute="state",
    )


def mermaid_diagram() -> str:
    """The state diagram, rendered from the table (committed in docs/ and README)."""
    from transitions.extensions import GraphMachine

    class _Diagram:
        pass

    machine = GraphMachine(
        model=_Diagram(),
        states=[str(s) for s in Stage],
        # Internal steps would draw a self-loop on every stage; the diagram
        # shows how an incident moves, the table lists the rest.
        transitions=[t for t in machine_transitions() if t["dest"] is not None],
        initial=str(Stage.DETECTED),
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title="IncidentRecovery",
    )
    raw = machine.get_graph().draw(None)
    # transitions 0.9 writes a bare title in the front matter and a
    # capitalised `Class` statement that Mermaid does not parse; the
    # diagram needs neither (no state is "active" in the docs).
    lines = [
        line.rstrip()
        for line in raw.splitlines()
        if not line.strip().startswith(("classDef ", "Class ", "---")) and line.strip() != "IncidentRecovery"
    ]
    body = "\n".join(line for n, line in enumerate(lines) if line or (n and lines[n - 1]))
    return "---\ntitle: IncidentRecovery\n---\n" + body.strip() + "\n"


def steps_table_markdown() -> str:
    def where(s: Step) -> str:
        return "any stage" if s.source == "*" else ", ".join(f"`{x}`" for x in sources(s))

    rows = [
        "| step | from | to | taken by | conditions | what it is for |",
        "|---|---|---|---|---|---|",
    ]
    for s in STEPS:
        dest = f"`{s.dest}`" if s.dest else "(stays)"
        rows.append(
            f"| `{s.trigger}` | {where(s)} | {dest} | {s.by} | {', '.join(s.conditions) or '—'} | {s.doc} |"
        )
    return "\n".join(rows) + "\n"


def lifecycle_markdown() -> str:
    """docs/lifecycle.md: generated from the table by ``python -m workflows.stages``."""
    return (
        "# The incident lifecycle\n\n"
        "<!-- generated from workflows/stages.py by `python -m workflows.stages`; do not edit -->\n\n"
        "```mermaid\n" + mermaid_diagram() + "```\n\n"
        "Every step, from the one transition table (`workflows/stages.STEPS`). Human steps are\n"
        "Workflow Updates; a step not listed for the current stage is refused by its validator.\n\n"
        + steps_table_markdown()
    )


if __name__ == "__main__":
    from pathlib import Path

    Path(__file__).resolve().parent.parent.joinpath("docs", "lifecycle.md").write_text(lifecycle_markdown())

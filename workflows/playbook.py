"""The incident at work: its state, the machine that moves it, and the queue of what must happen next.

``Playbook`` is what update handlers and the run loop share. Handlers take a
step (``advance``), change the state through the step's effect, queue side
effects and record the step (``recorded``); the run loop performs the
queued effects through the parts (delivery, the SLA clock, the anniversary)
that receive this object explicitly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import search
    from workflows.details import current_details
    from workflows.effects import Effect
    from workflows.inputs import Actor, StepInput
    from workflows.recovery import Recovery
    from workflows.snapshot import Remedy
    from workflows.stages import Stage, build_machine
    from workflows.state import RecoveryState
    from workflows.versions import Versions

from workflows.clock import SlaClock
from workflows.options import SYSTEM


class Playbook:
    def __init__(self, state: RecoveryState) -> None:
        self.s = state
        self.r = Recovery(state)
        self.v = Versions(state)  # which behaviour this run takes (one marker per run, see versions.py)
        build_machine(self.r, initial=state.stage)
        self.effects: list[Effect] = []
        self.changes = 0  # bumped on every visible change; the run loop wakes on it
        self.taking: tuple[str, Stage] | None = None  # the step being taken and the stage it started from
        self.clock = SlaClock(self)
        # Set by the run from v.patched("independent-channels"): effects and pages in lanes.
        self.independent = False
        self.lanes: dict[str, asyncio.Task[None]] = {}
        self.coalesce = False  # set by the publisher: publish() leaves the upsert to it
        self.unpublished = False

    @staticmethod
    def now() -> datetime:
        return workflow.now()

    def moved_since(self, seen: int) -> Callable[[], bool]:
        """A wait condition: something was queued, or changed, since change number ``seen``."""
        return lambda: bool(self.effects) or self.changes != seen

    def queue(self, effect: Effect, first: bool = False) -> None:
        if first:
            self.effects.insert(0, effect)
        else:
            self.effects.append(effect)

    # ------------------------------------------------------------ lanes of side effects

    async def run_in(self, lane: str, job: Coroutine[Any, Any, Any]) -> None:
        """Run ``job`` after whatever ``lane`` is doing, without waiting for it (awaited, before the patch)."""
        if not self.independent:
            await job
            return
        before = self.lanes.get(lane)

        async def in_turn() -> None:
            started = False
            try:
                if before is not None:
                    await before
                started = True
                await job
            finally:
                if not started:
                    job.close()  # cancelled (the workflow evicted) before its turn came
                self.changes += 1  # the run loop looks again

        self.lanes[lane] = asyncio.create_task(in_turn())

    def busy(self) -> bool:
        return any(not task.done() for task in self.lanes.values())

    def reap(self) -> None:
        """Forget finished lanes; a lane that failed with a bug fails the workflow task here."""
        for lane, task in list(self.lanes.items()):
            if task.done():
                del self.lanes[lane]
                task.result()

    # ------------------------------------------------------------ taking steps

    def advance(self, trigger: str) -> None:
        """Take the step in the machine, before anything else changes.

        The machine checks the table's conditions once more; the validator
        already did, so a refusal here is a bug, failed before any state moved.
        """
        before = self.s.stage
        if not getattr(self.r, trigger)():
            raise ApplicationError(f"{trigger}: the state machine refused the step", type="StepRefused")
        self.taking = (trigger, before)

    def recorded(self, step: StepInput, detail: str) -> None:
        """Write the step being taken into the timeline, then start the new stage's clock or publish."""
        assert self.taking is not None
        trigger, before = self.taking
        self.taking = None
        self.record(trigger, step.actor, step.channel, detail)
        if self.s.stage != before:
            self.enter_stage()
        else:
            self.publish()

    def record(self, step: str, by: Actor, channel: str | None, detail: str = "") -> None:
        self.r.record(self.now(), step, by, channel, detail)

    def fulfil_if_delivered(self, remedy: Remedy) -> bool:
        """The engine's own step: every item of the agreed remedy is delivered."""
        if self.s.stage != Stage.REMEDY_AGREED or not self.r.is_delivered():
            return False
        self.r.fulfil()  # type: ignore[attr-defined]  # a trigger the machine added
        remedy.status = "delivered"
        self.record("fulfil", SYSTEM, None, f"remedy #{remedy.number} delivered in full")
        self.enter_stage()
        return True

    # ------------------------------------------------------------ making it visible

    def enter_stage(self) -> None:
        self.s.escalation_level = 0
        self.clock.stop()
        self.s.clock = None
        # The clock starts when the stage starts, even if the policy arrives a
        # moment later (workflow.now() after a local activity differs on replay).
        self.s.stage_entered_at = self.now()
        self.clock.start()
        self.publish()

    def publish(self) -> None:
        """Make the change visible: wake the run loop; search attributes and current details now, or (since the
        release) once the activation's work is done (``publisher``)."""
        self.changes += 1
        if self.coalesce:
            self.unpublished = True
            return
        self.flush()

    def start_publisher(self) -> None:
        """Since the release: one upsert per activation at most, made after the steps, lanes and run loop
        that changed something in it have done their part (each upsert is an event and a visibility write)."""
        self.coalesce = True
        self.publishing = asyncio.create_task(self._publisher())

    async def _publisher(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self.unpublished)
            # Conditions satisfied in the same sweep wake their tasks first: let them publish too.
            for _ in range(3):
                await asyncio.sleep(0)
            self.flush()

    def flush(self) -> None:
        """Upsert the search attributes that changed, and set the current details (before a run ends too)."""
        self.unpublished = False
        s = self.s
        attrs = search.values_of(s)
        if self.v.patched("upsert-on-change"):
            # Only what changed: most changes move none of them (the SDK keeps what the run holds).
            attrs = search.changed(attrs, workflow.info().typed_search_attributes)
        if attrs:
            workflow.upsert_search_attributes([k.value_unset() if v is None else k.value_set(v) for k, v in attrs])
        workflow.set_current_details(current_details(self.r, self.now()))

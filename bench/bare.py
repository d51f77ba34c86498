"""The yardstick: a bare Temporal workflow of an incident's shape, with nothing of amends in it.

The same conversation and the same commands as amends' incident in the
benchmark (``bench.yardstick.amends_incident``), each done the plainest way
the SDK offers:

- opened with update-with-start (``opened``, answered once set up), then
  seven updates, each with a validator that checks the step may happen at
  this stage (a table lookup), each answering with a small result;
- the same nine activities as no-ops, in the same groups: the apology's
  e-mail and webhook, the proposal's two, the acceptance's refund and its
  two, the closing's two; a group's activities run side by side; the
  remedy is fulfilled once the agent confirmed the replacement and the
  refund is made, as in amends;
- a timer per stage, started when the stage begins and cancelled by the
  next step (a stage's deadline), and one watching the refund's answer;
- the search attributes the contract makes ops filter on (stage and
  deadline), upserted when the stage changes;
- after the post-mortem, a continue-as-new into a run that waits (amends
  waits there a year for the anniversary).

The same client, data converter (with the payload codec) and sandbox as
amends: whatever amends costs above this is amends' own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

# step -> (the stage it is taken from, the stage it leads to, the activities it starts side by side)
STEPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "apologise": ("detected", "apologised", ("apology e-mail", "apology webhook")),
    "record_needs": ("apologised", "needs_gathered", ()),
    "propose_remedy": ("needs_gathered", "remedy_proposed", ("proposal e-mail", "proposal webhook")),
    "accept_remedy": ("remedy_proposed", "remedy_agreed", ("refund", "confirmation e-mail", "confirmation webhook")),
    "confirm_fulfilment": ("remedy_agreed", "remedy_agreed", ()),  # fulfilled once the refund is made too
    "close": ("fulfilled", "closed", ("closing e-mail", "closing webhook")),
    "record_postmortem": ("closed", "postmortem_done", ()),
}
FINAL = "postmortem_done"
STAGE_TIMEOUT = timedelta(hours=4)  # a stage's deadline: a timer per stage, cancelled when the step comes
WATCH = timedelta(minutes=5)  # how long the refund may go unanswered
WAIT = timedelta(days=365)  # the continued run's wait
# The dev server registers these for amends (workflows.search); the bare workflow uses two of them.
STAGE = SearchAttributeKey.for_keyword("RecoveryStage")
DEADLINE = SearchAttributeKey.for_datetime("StageDeadline")


class BareReport(BaseModel):
    key: str
    customer: str
    what_happened: str


class BareStep(BaseModel):
    note: str = ""


class BareAnswer(BaseModel):
    stage: str
    steps: int


class BareContinued(BaseModel):
    report: BareReport
    steps: int


@activity.defn(name="bare_noop")
async def bare_noop(what: str) -> str:
    return what


@workflow.defn(name="BareIncident")
class BareIncident:
    def __init__(self) -> None:
        self.stage = "detected"
        self.steps = 0
        self.pending: list[tuple[str, ...]] = []
        self.deadline: asyncio.Task[None] | None = None
        self.confirmed = False
        self.performing = 0

    @workflow.run
    async def run(self, report: BareReport | BareContinued) -> BareAnswer:
        if isinstance(report, BareContinued):
            self.stage, self.steps = FINAL, report.steps
            await workflow.sleep(WAIT)
            return self.answer()
        self.publish()
        while self.stage != FINAL or self.pending:
            while self.pending:
                await asyncio.gather(*(self.perform(what) for what in self.pending.pop(0)))
            self.fulfil_if_delivered()
            if self.stage == FINAL:
                continue
            await workflow.wait_condition(self.moved_since(self.steps))
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(BareContinued(report=report, steps=self.steps))

    async def perform(self, what: str) -> None:
        self.performing += 1
        try:
            job = workflow.start_activity(bare_noop, what, start_to_close_timeout=timedelta(seconds=30))
            if what == "refund":
                try:
                    await workflow.wait_condition(job.done, timeout=WATCH)
                except TimeoutError:
                    pass
            await job
        finally:
            self.performing -= 1

    def publish(self) -> None:
        """A new stage: its deadline's timer replaces the last stage's, and ops see both."""
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = None if self.stage == FINAL else asyncio.create_task(workflow.sleep(STAGE_TIMEOUT))
        workflow.upsert_search_attributes([STAGE.value_set(self.stage),
                                           DEADLINE.value_set(workflow.now() + STAGE_TIMEOUT)])

    def moved_since(self, seen: int) -> Callable[[], bool]:
        return lambda: self.steps != seen

    def answer(self) -> BareAnswer:
        return BareAnswer(stage=self.stage, steps=self.steps)

    def take(self, name: str) -> BareAnswer:
        _, to, activities = STEPS[name]
        self.steps += 1
        if name == "confirm_fulfilment":
            self.confirmed = True
            self.fulfil_if_delivered()
            return self.answer()
        self.stage = to
        if activities:
            self.pending.append(activities)
        self.publish()
        return self.answer()

    def fulfil_if_delivered(self) -> None:
        """As amends: the remedy is fulfilled once the agent confirmed the replacement and the refund is made."""
        if self.stage == "remedy_agreed" and self.confirmed and not self.pending and not self.performing:
            self.stage = "fulfilled"
            self.publish()

    def check(self, name: str) -> None:
        if STEPS[name][0] != self.stage:
            raise ApplicationError(f"{name} is not allowed at {self.stage}", type="StepRefused", non_retryable=True)

    @workflow.update(name="opened")
    def opened(self) -> BareAnswer:
        return self.answer()

    @workflow.update(name="apologise")
    def apologise(self, step: BareStep) -> BareAnswer:
        return self.take("apologise")

    @apologise.validator
    def _apologise(self, step: BareStep) -> None:
        self.check("apologise")

    @workflow.update(name="record_needs")
    def record_needs(self, step: BareStep) -> BareAnswer:
        return self.take("record_needs")

    @record_needs.validator
    def _record_needs(self, step: BareStep) -> None:
        self.check("record_needs")

    @workflow.update(name="propose_remedy")
    def propose_remedy(self, step: BareStep) -> BareAnswer:
        return self.take("propose_remedy")

    @propose_remedy.validator
    def _propose_remedy(self, step: BareStep) -> None:
        self.check("propose_remedy")

    @workflow.update(name="accept_remedy")
    def accept_remedy(self, step: BareStep) -> BareAnswer:
        return self.take("accept_remedy")

    @accept_remedy.validator
    def _accept_remedy(self, step: BareStep) -> None:
        self.check("accept_remedy")

    @workflow.update(name="confirm_fulfilment")
    def confirm_fulfilment(self, step: BareStep) -> BareAnswer:
        return self.take("confirm_fulfilment")

    @confirm_fulfilment.validator
    def _confirm_fulfilment(self, step: BareStep) -> None:
        self.check("confirm_fulfilment")

    @workflow.update(name="close")
    def close(self, step: BareStep) -> BareAnswer:
        return self.take("close")

    @close.validator
    def _close(self, step: BareStep) -> None:
        self.check("close")

    @workflow.update(name="record_postmortem")
    def record_postmortem(self, step: BareStep) -> BareAnswer:
        return self.take("record_postmortem")

    @record_postmortem.validator
    def _record_postmortem(self, step: BareStep) -> None:
        self.check("record_postmortem")

    @workflow.query(name="snapshot")
    def snapshot(self) -> BareAnswer:
        return self.answer()

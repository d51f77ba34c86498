"""The yardstick: a bare Temporal workflow of an incident's shape, with nothing of amends in it.

Seven updates, each with a validator that checks the step may happen at this
stage (a table lookup), each answering with a small result; six no-op
activities (the apology, the proposal's notice, the refund and the work
order on acceptance, the closing notice, the post-mortem's notice); a timer
per stage, started while the workflow waits for the next step and cancelled
when the step comes (as amends waits on a stage's deadline); a short final
sleep. The same client, data converter (with the payload codec) and sandbox
as amends: whatever amends costs above this is amends' own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

# step -> (the stage it is taken from, the stage it leads to, the activities it starts)
STEPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "apologise": ("detected", "apologised", ("apology notice",)),
    "record_needs": ("apologised", "needs_gathered", ()),
    "propose_remedy": ("needs_gathered", "remedy_proposed", ("proposal notice",)),
    "accept_remedy": ("remedy_proposed", "remedy_agreed", ("refund", "work order")),
    "confirm_fulfilment": ("remedy_agreed", "fulfilled", ()),
    "close": ("fulfilled", "closed", ("closing notice",)),
    "record_postmortem": ("closed", "postmortem_done", ("post-mortem notice",)),
}
FINAL = "postmortem_done"
STAGE_TIMEOUT = timedelta(hours=4)  # a stage's deadline: a timer per stage, cancelled when the step comes
FINAL_SLEEP = timedelta(milliseconds=100)


class BareReport(BaseModel):
    key: str
    customer: str
    what_happened: str


class BareStep(BaseModel):
    note: str = ""


class BareAnswer(BaseModel):
    stage: str
    steps: int


@activity.defn(name="bare_noop")
async def bare_noop(what: str) -> str:
    return what


@workflow.defn(name="BareIncident")
class BareIncident:
    def __init__(self) -> None:
        self.stage = "detected"
        self.steps = 0
        self.pending: list[str] = []

    @workflow.run
    async def run(self, report: BareReport) -> BareAnswer:
        while self.stage != FINAL or self.pending:
            while self.pending:
                what = self.pending.pop(0)
                await workflow.execute_activity(bare_noop, what, start_to_close_timeout=timedelta(seconds=30))
            if self.stage == FINAL:
                continue
            try:
                await workflow.wait_condition(self.moved_since(self.steps), timeout=STAGE_TIMEOUT)
            except TimeoutError:
                pass
        await workflow.sleep(FINAL_SLEEP)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.answer()

    def moved_since(self, seen: int) -> Callable[[], bool]:
        return lambda: self.steps != seen

    def answer(self) -> BareAnswer:
        return BareAnswer(stage=self.stage, steps=self.steps)

    def take(self, name: str) -> BareAnswer:
        _, to, activities = STEPS[name]
        self.stage = to
        self.steps += 1
        self.pending.extend(activities)
        return self.answer()

    def check(self, name: str) -> None:
        if STEPS[name][0] != self.stage:
            raise ApplicationError(f"{name} is not allowed at {self.stage}", type="StepRefused", non_retryable=True)

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

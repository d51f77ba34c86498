"""``IncidentRecovery``: one durable workflow per unhappy-customer incident.

Human steps arrive as Workflow Updates, one per entry of the step registry
(``workflows/steps.py``), installed on the class by ``with_steps``: each has
a validator that asks the transition table and the step's guard whether it
may happen now (a refused update writes nothing to history), and a handler
that takes the step through its effect. The run loop performs the queued
side effects and watches the stage's deadline meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

# Every module of the workflow passes through the sandbox, the parts that do the work too: re-imported
# into every run's sandbox they cost a tenth of the worker's time. They keep no module state and read
# time, randomness and ids only from ``workflow.*``; the stored histories replayed in CI keep them
# deterministic.
with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from workflows import metrics
    from workflows.anniversary import Anniversary
    from workflows.converter import explain
    from workflows.credentials import UnknownSigningKey, checksum, verified_actor, verify
    from workflows.delivery import Delivery
    from workflows.dispatch import perform
    from workflows.guards import Refused, check_table
    from workflows.inputs import Actor, IncidentReport, Opening, StepInput
    from workflows.options import SYSTEM
    from workflows.payloads import CredentialCheck, CredentialVerdict, Setup
    from workflows.playbook import Playbook
    from workflows.sla import SlaPolicy
    from workflows.snapshot import Snapshot, StepResult
    from workflows.stages import AFTER_CLOSURE, HUMAN_STEPS, Stage
    from workflows.state import ContinuedIncident, RecoveryState
    from workflows.steps import REGISTRY, StepSpec
    from workflows.trust import Trust

W = TypeVar("W", bound=type)
# Key sets are fetched again at most this often per incident (each refresh writes history).
REFRESH_EVERY = timedelta(minutes=1)


def with_steps(registry: Mapping[str, StepSpec[Any]]) -> Callable[[W], W]:
    """Install one update, with its validator, for every step of ``registry`` (before ``@workflow.defn``)."""

    def install(cls: W) -> W:
        for spec in registry.values():
            setattr(cls, spec.name, _update(spec))
        cls.registry = registry  # type: ignore[attr-defined]  # the steps an opening may take first
        return cls

    return install


def _update(spec: StepSpec[Any]) -> Any:
    def handler(self: IncidentRecovery, step: Any) -> StepResult:
        return self.take(spec, step)

    def validator(self: IncidentRecovery, step: Any) -> None:
        self.validate(spec, step)

    # The SDK decodes the update's argument by these annotations.
    handler.__annotations__ = {"step": spec.input, "return": StepResult}
    validator.__annotations__ = {"step": spec.input, "return": None}
    handler.__name__ = handler.__qualname__ = spec.name
    update = workflow.update(name=spec.name, description=spec.description)(handler)
    update.validator(validator)
    return update


def _verified(verdict: CredentialVerdict) -> Actor:
    if verdict.refusal is not None:
        raise (UnknownSigningKey if verdict.unknown_key else Refused)(verdict.refusal)
    assert verdict.actor is not None
    return verdict.actor


# Every human step of the table has its entry in the registry, and no entry is without its row.
assert set(REGISTRY) == set(HUMAN_STEPS), set(REGISTRY) ^ set(HUMAN_STEPS)


# Versioned workers run it AUTO_UPGRADE (worker.main.deployment_config, docs/deploying-versions.md):
# declared there, not here, because the server refuses a behaviour from an unversioned worker.
@workflow.defn(name="IncidentRecovery")
@with_steps(REGISTRY)
class IncidentRecovery:
    registry: Mapping[str, StepSpec[Any]] = REGISTRY

    @workflow.init
    def __init__(self, incident: IncidentReport | ContinuedIncident) -> None:
        if isinstance(incident, ContinuedIncident):
            state = incident.state
        else:
            state = RecoveryState(workflow_id=workflow.info().workflow_id, report=incident)
        self.pb = Playbook(state)
        self.delivery = Delivery(self.pb)
        if isinstance(incident, ContinuedIncident):
            self.delivery.sent.update(incident.work_orders_sent)
            self.delivery.cancelled.update(incident.work_orders_cancelled)
        self.anniversary = Anniversary(self.pb, self.delivery)
        self.continue_when_idle = False
        # Openings whose first step waits for the incident to be set up (see opened).
        self.openings_waiting = 0

    @workflow.run
    async def run(self, incident: IncidentReport | ContinuedIncident) -> Snapshot:
        pb = self.pb
        # The run's first question of versions (see workflows/versions.py): side effects and pages in lanes
        # of their own, so that a mail relay that is down delays neither money nor the other channels of a page.
        pb.independent = pb.v.patched("independent-channels")
        if pb.v.release():
            pb.start_publisher()
        if isinstance(incident, ContinuedIncident) and incident.state.phase == "recovery":
            # Continued in the middle of the recovery: the state is whole, its clock running.
            return await self._recover()
        if isinstance(incident, ContinuedIncident):
            await self.anniversary.wait_a_year()
            await workflow.wait_condition(lambda: not pb.busy())
            await workflow.wait_condition(workflow.all_handlers_finished)
            if pb.unpublished:
                pb.flush()
            return pb.r.snapshot()
        metrics.opened(incident)
        pb.record("detected", SYSTEM, "backend", incident.what_happened)
        pb.enter_stage()
        # Whom the incident trusts and the worker's SLA policy, recorded in the history: a later change of
        # the key sets or the policy file never moves this incident's deadlines or who may act on it.
        if pb.v.release():
            setup = await workflow.execute_local_activity(
                "set_up_incident", result_type=Setup, start_to_close_timeout=timedelta(seconds=10),
            )
            setup.trust.loaded_at = workflow.now()
            pb.s.trust, pb.s.policy = setup.trust, setup.policy
        else:
            if pb.v.patched("verified-actors"):
                # Before the SLA policy, so that an incident that answers with its
                # deadline (sla_ready) already accepts credentials.
                await self._load_trust()
            pb.s.policy = await workflow.execute_local_activity(
                "load_sla_policy", result_type=SlaPolicy, start_to_close_timeout=timedelta(seconds=10),
            )
        pb.clock.start()
        if self.openings_waiting:
            # A first step sent with the open is taken before anything else moves: its commands come in
            # the same order on replay as they did live.
            await workflow.wait_condition(lambda: self.openings_waiting == 0)
        return await self._recover()

    async def _recover(self) -> Snapshot:
        """Walk the playbook to the post-mortem, then continue as new into the year's wait."""
        pb = self.pb
        while pb.s.stage != Stage.POSTMORTEM_DONE or pb.effects or pb.busy():
            await perform(pb, self.delivery)
            pb.reap()
            if self._history_long():
                if self._idle():
                    self._continue_as_new()
                self.continue_when_idle = True  # as soon as what is being sent has gone
            if pb.s.stage == Stage.POSTMORTEM_DONE:
                # What is still being sent finishes in this run, before the year's wait.
                await workflow.wait_condition(lambda: bool(pb.effects) or not pb.busy())
                continue
            await self._wait_for_next_step()
        # The long wait starts in a fresh run that carries the whole state, so
        # that the year is spent on a short history (and on the code of its day).
        await workflow.wait_condition(workflow.all_handlers_finished)
        pb.s.phase = "anniversary"
        self._continue_as_new()

    def _idle(self) -> bool:
        pb = self.pb
        return not pb.effects and not pb.busy() and workflow.all_handlers_finished()

    def _history_long(self) -> bool:
        """Temporal suggests a fresh run, or this one passed the policy's count of events."""
        info = workflow.info()
        policy = self.pb.s.policy
        most = policy.continue_after_events if policy else SlaPolicy.model_fields["continue_after_events"].default
        long = info.is_continue_as_new_suggested() or info.get_current_history_length() >= most
        # Asked only once it is long: runs recorded before never were, and replay as they ran.
        return long and self.pb.v.patched("continue-mid-recovery")

    def _continue_as_new(self) -> NoReturn:
        # Under Worker Versioning the next run starts on the deployment's current build: only a PINNED
        # run's continue-as-new inherits its build, and incidents are AUTO_UPGRADE.
        if self.pb.unpublished:
            self.pb.flush()  # the next run starts with the search attributes this one holds
        workflow.continue_as_new(
            ContinuedIncident(state=self.pb.s, work_orders_sent=self.delivery.sent,
                              work_orders_cancelled=sorted(self.delivery.cancelled)),
            search_attributes=workflow.info().typed_search_attributes,
        )

    async def _wait_for_next_step(self) -> None:
        pb = self.pb
        seen = pb.changes
        event = pb.clock.next_event()
        timeout = None if event is None else event.at - workflow.now()
        if event is not None and timeout is not None and timeout <= timedelta(0):
            await pb.clock.fire(event)
            return
        moved = pb.moved_since(seen)
        try:
            await workflow.wait_condition(
                lambda: moved() or (self.continue_when_idle and self._idle()),
                timeout=timeout,
                timeout_summary=None if event is None else pb.clock.summary(event),
            )
        except TimeoutError:
            assert event is not None
            await pb.clock.fire(event)

    async def _load_trust(self) -> None:
        trust = await workflow.execute_local_activity(
            "load_trust", result_type=Trust, start_to_close_timeout=timedelta(seconds=10),
        )
        trust.loaded_at = workflow.now()
        self.pb.s.trust = trust

    @workflow.update(
        name="refresh_trust",
        description="Record the trusted issuers' keys again, after an issuer rotated them. Changes nothing else.",
    )
    async def refresh_trust(self) -> str:
        await self._load_trust()
        trust = self.pb.s.trust
        assert trust is not None
        keys = sum(len(i.keys) for i in trust.issuers)
        return f"{len(trust.issuers)} trusted issuers, {keys} keys"

    @refresh_trust.validator
    def _refresh_not_too_often(self) -> None:
        trust = self.pb.s.trust
        if trust is not None and trust.loaded_at is not None and workflow.now() - trust.loaded_at < REFRESH_EVERY:
            raise ApplicationError(
                f"refresh_trust: the keys were recorded at {trust.loaded_at:%H:%M:%S} UTC; refresh at most once "
                f"a minute", type="StepRefused", non_retryable=True,
            )

    # ================================================================ opening

    @workflow.update(
        name="opened",
        description="Answer once the incident is set up (its issuers' keys and SLA policy recorded) with its "
                    "snapshot; with a step and its input, take that step too, in the same call. Sent with the open "
                    "(update-with-start); a closed incident refuses it.",
    )
    async def opened(self, opening: Opening | None = None) -> Snapshot:
        first = self._first_step(opening)
        if not self._ready():
            # Sent with the start: its job comes before the run's first line. The run, once it has set
            # the incident up, waits for this to take its step before it moves on.
            self.openings_waiting += 1
            try:
                await workflow.wait_condition(self._ready)
                if first is not None:
                    spec, step = first
                    self.validate(spec, step, verdict=await self._verdict(spec, step))
                    self.take(spec, step)
                    return self.pb.r.snapshot()
            finally:
                self.openings_waiting -= 1
        elif first is not None:
            self.take(*first)  # the validator verified it, as for the step's own update
        # The opener's answer is the whole incident it made (steps answer with a small result).
        return self.pb.r.snapshot()

    @opened.validator
    def _may_open(self, opening: Opening | None = None) -> None:
        s = self.pb.s
        if s.stage in AFTER_CLOSURE:
            closed = s.closed_at.date().isoformat() if s.closed_at else "an earlier date"
            raise ApplicationError(
                f"incident {s.report.incident_key} was closed on {closed}; open a new incident with a new key",
                type="IncidentClosed", non_retryable=True,
            )
        first = self._first_step(opening)
        if first is not None and self._ready():
            self.validate(*first)  # refused now, writing nothing; otherwise verified once set up

    async def _verdict(self, spec: StepSpec[Any], step: StepInput) -> CredentialVerdict:
        """The credential's verdict from a local activity: the validator could not verify it before the
        incident was set up, and the handler must not verify it itself (replay would verify it again,
        against a history whose credentials may have lost their signatures). The history keeps the verdict."""
        s = self.pb.s
        assert s.trust is not None
        check = CredentialCheck(
            trust=s.trust, step=spec.name, credential=step.credential, by_given=step.by is not None,
            checksum=checksum(step), workflow_id=s.workflow_id, now=workflow.now(), used=list(s.used_credentials),
        )
        verdict: CredentialVerdict = await workflow.execute_local_activity(
            "verify_credential", check, result_type=CredentialVerdict, start_to_close_timeout=timedelta(seconds=10),
            summary=f"verify the credential of {spec.name}",
        )
        return verdict

    def _ready(self) -> bool:
        return self.pb.s.policy is not None

    def _first_step(self, opening: Any) -> tuple[StepSpec[Any], StepInput] | None:
        if opening is None:
            return None
        if not isinstance(opening, Opening):
            raise ApplicationError(
                f"opened takes a JSON object (Opening, see schema/opened.schema.json) or nothing, not "
                f"{type(opening).__name__}", type="InvalidInput", non_retryable=True,
            )
        if opening.step is None:
            return None
        spec = self.registry.get(opening.step)
        if spec is None:
            raise ApplicationError(
                f"step: no step {opening.step!r}; steps: {', '.join(self.registry)}",
                type="InvalidInput", non_retryable=True,
            )
        try:
            # As the step's own update reads its JSON.
            step = spec.input.model_validate_json(json.dumps(opening.input))
        except ValidationError as err:
            raise ApplicationError(f"input ({spec.name}): {explain(err)}", type="InvalidInput",
                                   non_retryable=True) from None
        return spec, step

    # ================================================================ steps (installed by with_steps)

    def validate(self, spec: StepSpec[Any], step: Any, verdict: CredentialVerdict | None = None) -> None:
        if not isinstance(step, spec.input):
            # A null or non-JSON argument reaches here undecoded (pydantic never saw it).
            raise ApplicationError(
                f"{spec.name} needs its input: a JSON object ({spec.input.__name__}, see "
                f"schema/{spec.name}.schema.json), not {type(step).__name__}",
                type="InvalidInput", non_retryable=True,
            )
        s = self.pb.s
        if self._answered():
            return  # a retry of a step already taken: answered by the handler, nothing changes
        try:
            # Who acts first: a refusal of the step itself tells nothing to a stranger.
            actor = verify(s.trust, step, s.workflow_id, spec.name, workflow.now(), s.used_credentials) \
                if verdict is None else _verified(verdict)
            check_table(self.pb.r, spec.name)
            if spec.guard is not None:
                spec.guard(self.pb.r, step.model_copy(update={"by": actor}), workflow.now())
        except UnknownSigningKey as refused:
            raise ApplicationError(str(refused), type="UnknownSigningKey", non_retryable=True) from None
        except Refused as refused:
            raise ApplicationError(str(refused), type="StepRefused", non_retryable=True) from None

    def take(self, spec: StepSpec[Any], step: Any) -> StepResult:
        # The validator verified the credential; the handler (which replay runs
        # without the validator) reads who acted from its claims, marks it used
        # and drops it, so the token goes no further than the update's input.
        if self._answered():
            return self.pb.r.step_result(None)
        update = workflow.current_update_info()
        if update is not None:
            self.pb.s.answered.append(update.id)
        actor, jti = verified_actor(self.pb.s.trust, step)
        if jti is not None:
            self.pb.s.used_credentials.append(jti)
        step = step.model_copy(update={"by": actor, "credential": None})
        self.pb.advance(spec.name)
        made = len(self.pb.s.timeline)
        spec.effect(self.pb, step)
        # Small whatever the incident's size: a whole snapshot per step made history grow as its square.
        return self.pb.r.step_result(self.pb.s.timeline[made] if len(self.pb.s.timeline) > made else None)

    def _answered(self) -> bool:
        update = workflow.current_update_info()
        return update is not None and update.id in self.pb.s.answered

    @workflow.query(description="The whole current state: stage, timeline, remedy, money, deadline, flags.")
    def snapshot(self) -> Snapshot:
        return self.pb.r.snapshot()


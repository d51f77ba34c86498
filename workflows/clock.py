"""The SLA clock of the current stage: plan, pause, resume, warn, escalate, page.

A part of the incident: it receives the ``Playbook`` and keeps its state in
``RecoveryState.clock``. Business-hours arithmetic needs the time-zone
database, so it is queued as an effect and done by a local activity.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows.effects import ConsumeBusinessTime, PlanBusinessClock, ResolvePages
    from workflows.formatting import duration
    from workflows.payloads import PageRequest
    from workflows.sla import WAITING_FOR, AdvanceRequest, ElapsedRequest, PageTarget, SlaPolicy
    from workflows.snapshot import ClockEvent, ClockState

from workflows.options import CLOCK, PAGE_OPTIONS, SYSTEM, WEBHOOK_OPTIONS, call, failure_reason

if TYPE_CHECKING:
    from workflows.playbook import Playbook

LOCAL = timedelta(seconds=10)
# A page that has reached nobody on any channel by then sends the next level at once.
UNREACHABLE_AFTER = timedelta(minutes=5)


class SlaClock:
    def __init__(self, pb: Playbook) -> None:
        self.pb = pb

    def _running(self) -> tuple[ClockState, SlaPolicy]:
        clock, policy = self.pb.s.clock, self.pb.s.policy
        assert clock is not None and policy is not None
        return clock, policy

    def start(self) -> None:
        """Start the current stage's clock (once the policy is known)."""
        s = self.pb.s
        if s.policy is None or s.clock is not None or s.stage_entered_at is None:
            return
        target = s.policy.deadline(s.stage, s.report.severity)
        if target is None:
            return
        s.clock = ClockState(
            stage=s.stage, waiting_for=WAITING_FOR[s.stage], kind=s.policy.clock(s.report.severity),
            target=target, started_at=s.stage_entered_at, running_since=s.stage_entered_at,
        )
        self._plan()

    def _plan(self) -> None:
        """Schedule the warnings, the deadline and the ladder of a running clock."""
        clock, policy = self._running()
        assert clock.running_since is not None
        offsets = [clock.target - clock.consumed]
        fractions = [
            f for f in policy.warn_at if f"warning-{f}" not in clock.fired and clock.target * f > clock.consumed
        ]
        offsets += [clock.target * f - clock.consumed for f in fractions]
        if clock.kind == "calendar":
            self._planned(fractions, [clock.running_since + o for o in offsets])
        else:
            clock.upcoming = []
            self.pb.queue(PlanBusinessClock(tuple(fractions), tuple(offsets)), first=True)

    def _planned(self, fractions: list[float], instants: list[datetime]) -> None:
        clock, policy = self._running()
        due, warnings = instants[0], instants[1:]
        clock.due_at = due
        upcoming = [ClockEvent(at=at, kind="warning", fraction=f) for f, at in zip(fractions, warnings, strict=True)]
        at = max(due, self.pb.now()) if clock.breached else due
        ladder = policy.ladder
        for repeat in range(ladder.repeats + 1):
            for n, level in enumerate(ladder.levels):
                at = at + level.after + (ladder.repeat_after if repeat and n == 0 else timedelta(0))
                upcoming.append(ClockEvent(at=at, kind="escalation", level=level.level, repeat=repeat,
                                           target=level.target))
        clock.upcoming = sorted((e for e in upcoming if e.key not in clock.fired), key=lambda e: e.at)
        self.pb.publish()

    def pause(self) -> None:
        """Waiting on the customer: the clock stands still until they answer."""
        clock, policy = self.pb.s.clock, self.pb.s.policy
        if clock is None or policy is None or not policy.pause_while_waiting_on_customer:
            return
        if clock.running_since is None:
            return
        now = self.pb.now()
        if clock.kind == "calendar":
            clock.consumed += now - clock.running_since
        else:
            self.pb.queue(ConsumeBusinessTime(clock.running_since, now), first=True)
        clock.running_since, clock.paused_since = None, now
        clock.due_at, clock.upcoming = None, []
        self.pb.record("clock_paused", CLOCK, None, f"{clock.waiting_for} clock paused: waiting on the customer")

    def resume(self) -> None:
        clock = self.pb.s.clock
        if clock is None or clock.paused_since is None:
            return
        now = self.pb.now()
        clock.paused_total += now - clock.paused_since
        self.pb.s.paused_total += now - clock.paused_since
        self.pb.record("clock_resumed", CLOCK, None,
                       f"{clock.waiting_for} clock running again after {duration(now - clock.paused_since)} paused")
        clock.paused_since, clock.running_since = None, now
        self._plan()

    # ------------------------------------------------------------ effects of the business clock

    async def plan_business(self, effect: PlanBusinessClock) -> None:
        clock, policy = self.pb.s.clock, self.pb.s.policy
        if clock is None or policy is None or clock.running_since is None:
            return
        instants = await workflow.execute_local_activity(
            "business_clock_advance",
            AdvanceRequest(hours=policy.business_hours, start=clock.running_since, offsets=list(effect.offsets)),
            result_type=list[datetime], start_to_close_timeout=LOCAL,
        )
        self._planned(list(effect.fractions), instants)

    async def consume_business(self, effect: ConsumeBusinessTime) -> None:
        clock, policy = self.pb.s.clock, self.pb.s.policy
        if clock is None or policy is None:
            return
        used = await workflow.execute_local_activity(
            "business_clock_elapsed",
            ElapsedRequest(hours=policy.business_hours, start=effect.start, end=effect.end),
            result_type=timedelta, start_to_close_timeout=LOCAL,
        )
        clock.consumed += used

    # ------------------------------------------------------------ firing

    def next_event(self) -> ClockEvent | None:
        clock = self.pb.s.clock
        return min(clock.upcoming, key=lambda e: e.at) if clock and clock.upcoming else None

    def summary(self, event: ClockEvent) -> str:
        clock, _ = self._running()
        if event.kind == "warning":
            percent = int((event.fraction or 0) * 100)
            return f"warn at {percent}% of the {clock.waiting_for} deadline ({clock.kind} clock)"
        return f"{clock.waiting_for}: escalate to level {event.level} ({event.target})"

    async def fire(self, event: ClockEvent) -> None:
        pb, s = self.pb, self.pb.s
        clock, _ = self._running()
        assert clock.due_at is not None
        clock.upcoming = [e for e in clock.upcoming if e is not event]
        clock.fired.append(event.key)
        now = pb.now()
        if event.kind == "warning":
            pb.record("warning", CLOCK, None,
                      f"{int((event.fraction or 0) * 100)}% of the {clock.waiting_for} deadline used; "
                      f"due {clock.due_at:%Y-%m-%d %H:%M} UTC")
            pb.publish()
            await pb.run_in(f"page {event.key}", self._page(event, "owner"))
            return
        clock.breached = True
        s.escalation_level = event.level or 0
        metrics.breached(s.report, str(clock.stage), s.escalation_level)
        repeat = f", repeat {event.repeat}" if event.repeat else ""
        pb.record("escalate", CLOCK, None,
                  f"{clock.waiting_for} overdue by {duration(now - clock.due_at)}: escalated to level {event.level} "
                  f"({event.target}{repeat})")
        pb.publish()
        await pb.run_in(f"page {event.key}", self._page(event, event.target or "owner"))

    def target(self, name: str) -> PageTarget:
        s = self.pb.s
        _, policy = self._running()
        if name != "owner":
            return policy.targets[name]
        owner = s.report.owner
        if owner:
            return PageTarget(name=owner.name, email=str(owner.email))
        return policy.targets.get("owner") or PageTarget(name="Customer care", email=None)

    async def _page(self, event: ClockEvent, target_name: str) -> None:
        pb, s = self.pb, self.pb.s
        clock, _ = self._running()
        assert clock.due_at is not None
        target = self.target(target_name)
        request = PageRequest(
            idempotency_key=f"{s.workflow_id}/{clock.stage}/{event.key}",
            kind=event.kind, level=event.level, repeat=event.repeat, fraction=event.fraction,
            target_name=target.name, email=target.email, webhook_url=target.webhook_url, format=target.format,
            routing_key=target.routing_key, target=target_name, webhook=target.has_webhook,
            incident=s.workflow_id, customer_id=s.report.customer.customer_id,
            severity=str(s.report.severity), stage=str(clock.stage), waiting_for=clock.waiting_for,
            due_at=clock.due_at, overdue=duration(pb.now() - clock.due_at) if event.kind == "escalation" else "",
            what_happened=s.report.what_happened,
        )
        what = "warning" if event.kind == "warning" else f"level {event.level} page"
        if target.has_webhook and target_name not in clock.paged:
            clock.paged.append(target_name)
        reached = await send_page(pb, request, f"{what} to {target.name}")
        if not reached and pb.independent and event.kind == "escalation" and s.clock is clock:
            # Nobody at this level could be reached on any channel: the next level now, not at its hour.
            following = [e for e in clock.upcoming if e.kind == "escalation"]
            if following:
                pb.record("escalate_early", CLOCK, None, f"level {event.level} unreachable on every channel")
                await self.fire(min(following, key=lambda e: e.at))

    def stop(self) -> None:
        """The stage is over: the webhooks its pages reached hear that it is resolved."""
        clock = self.pb.s.clock
        if clock is not None and clock.paged and self.pb.independent:
            self.pb.queue(ResolvePages(str(clock.stage), clock.waiting_for, tuple(clock.paged)))

    async def resolve(self, effect: ResolvePages) -> None:
        pb, s, policy = self.pb, self.pb.s, self.pb.s.policy
        assert policy is not None
        for name in effect.targets:
            target = policy.targets.get(name)
            if target is None or not target.has_webhook:
                continue
            request = PageRequest(
                idempotency_key=f"{s.workflow_id}/{effect.stage}/resolved", kind="resolved",
                target_name=target.name, webhook_url=target.webhook_url, format=target.format,
                routing_key=target.routing_key, target=name, webhook=True, incident=s.workflow_id,
                customer_id=s.report.customer.customer_id,
                severity=str(s.report.severity), stage=effect.stage, waiting_for=effect.waiting_for,
                due_at=pb.now(), what_happened=s.report.what_happened,
            )
            what = f"{effect.waiting_for} resolved to {target.name}"
            try:
                await call("page_webhook", request, str, PAGE_OPTIONS, what)
                pb.record("page_resolved", SYSTEM, None, f"{what} by {target.format} webhook")
            except ActivityError as err:
                pb.record("page_failed", SYSTEM, None, f"{what} failed: {failure_reason(err)}")
            pb.publish()


async def send_page(pb: Playbook, request: PageRequest, what: str) -> bool:
    """Page someone by the channels the request names; each outcome goes into the timeline.

    Each channel is its own activity, all at once, so one that is down
    delays or silences no other. A request with no e-mail address goes to
    the worker's care contact. True when at least one channel reached them.
    """
    if not pb.independent:
        try:
            sent = await call("page", request, str, WEBHOOK_OPTIONS, what)
            pb.record("paged", SYSTEM, None, f"{what} by {sent}")
            pb.publish()
            return True
        except ActivityError as err:
            pb.record("page_failed", SYSTEM, None, f"{what} failed: {failure_reason(err)}")
            pb.publish()
            return False
    channels = [("page_email", "email")]
    if request.webhook_url or request.webhook:
        channels.append(("page_webhook", f"{request.format} webhook"))
    outcomes: dict[str, bool] = {}

    async def by(name: str, label: str) -> None:
        try:
            sent = await call(name, request, str, PAGE_OPTIONS, f"{what} by {label}")
            outcomes[label] = True
            pb.record("paged", SYSTEM, None, f"{what} by {sent}")
        except ActivityError as err:
            outcomes[label] = False
            pb.record("page_failed", SYSTEM, None, f"{what} by {label} failed: {failure_reason(err)}")
        pb.publish()

    for name, label in channels:
        # Each channel keeps trying on its own (a relay that is down for hours still
        # delivers once it is back), in a lane the run waits for before it ends.
        await pb.run_in(f"{request.idempotency_key} {label}", by(name, label))
    try:
        await workflow.wait_condition(
            lambda: any(outcomes.values()) or len(outcomes) == len(channels), timeout=UNREACHABLE_AFTER,
            timeout_summary=f"{what}: reached on some channel?",
        )
    except TimeoutError:
        pass
    return any(outcomes.values())

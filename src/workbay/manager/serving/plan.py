"""The serving reconciler's decisions (docs/serving.md, "Reconciler"): pure, no I/O.

Two steps per pass and service:

1. :func:`check_outcome` turns one health check of a replica into its new health (status,
   consecutive failures, whether it just became healthy or must be replaced);
   :func:`check_due` says whether a replica is due for a check at all.
2. :func:`plan` looks at the service and its replicas (after the checks) and decides what to
   do: which replicas failed, which to stop, how many to start, the backoff and the service's
   status with its reason.

Rules:

* A failure (a replica's session ended, never got healthy in time, or stayed unhealthy too long)
  of a replica that never served bumps ``retries``; no replica starts before ``next_retry_at`` =
  now + 2^retries s (at most :data:`MAX_BACKOFF`).  A replica that had been HEALTHY and then
  failed is replaced at once (failover should not wait for a backoff).  A replica turning HEALTHY resets ``retries`` (the I/O side does that on
  ``became_healthy``).
* Every live replica (TERMINATING ones included: they still hold a session) counts toward the
  owner's ``max_session_count_per_model_session``; starts are clamped to it.
* Scale down stops the least useful first: unhealthy, then provisioning, then old generation,
  then the newest.
* Rolling update (generation changed): one surge replica of the new generation at a time; an old
  HEALTHY replica is stopped only while the healthy count stays at least what it was and at least
  the desired count, so a roll-over never serves with fewer healthy replicas than before.
* Old-generation replicas that are not healthy are stopped at once (nothing is lost).
* Status: TERMINATING until every replica is gone, then DESTROYED; desired 0 is HEALTHY with the
  reason "scaled to zero" (the endpoint answers: the app-proxy holds requests and wakes it);
  healthy ≥ desired is HEALTHY; some healthy is DEGRADED; none healthy is UNHEALTHY after a
  failure (retries > 0 or an UNHEALTHY replica) and PROVISIONING otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from workbay.common.domain import DEAD_STATUSES, RouteStatus, ServiceStatus

MAX_BACKOFF = 300.0  # seconds: the longest wait between replica failures and the next start
UNHEALTHY_ROUNDS = 2  # an UNHEALTHY replica is replaced after max_retries more failed checks

ACTIVE = (RouteStatus.PROVISIONING, RouteStatus.HEALTHY, RouteStatus.UNHEALTHY)


@dataclass(frozen=True)
class HealthCheck:
    """The health check of a model definition (seconds)."""

    path: str = "/health"
    interval: float = 10.0
    max_retries: int = 10
    max_wait_time: float = 15.0
    expected_status_code: int = 200
    initial_delay: float = 60.0

    @property
    def start_deadline(self) -> float:
        """Seconds after the replica's start by which it must have passed a check."""
        return self.initial_delay + max(1, self.max_retries) * self.interval + self.max_wait_time


@dataclass(frozen=True)
class RouteView:
    """A replica as the plan sees it."""

    id: str
    status: str  # RouteStatus
    generation: int
    created_at: datetime
    session_status: str | None = None  # None: no session (it could not be created) or unknown
    session_info: str | None = None  # the session's status_info (why it ended)
    running_since: datetime | None = None  # when the session became RUNNING
    health_failures: int = 0
    last_health_at: datetime | None = None
    healthy_since: datetime | None = None
    has_session: bool = True


@dataclass(frozen=True)
class ServiceView:
    status: str  # ServiceStatus
    desired: int
    generation: int
    retries: int = 0
    next_retry_at: datetime | None = None
    max_replicas: int | None = None  # the owner's max_session_count_per_model_session; None/0 = no limit


@dataclass(frozen=True)
class CheckOutcome:
    status: str  # RouteStatus
    failures: int
    healthy_since: datetime | None
    became_healthy: bool = False
    failed: str | None = None  # the replica must be replaced: why


@dataclass(frozen=True)
class Failure:
    route_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    failed: list[Failure] = field(default_factory=list)  # routes → FAILED (record, terminate)
    stop: list[str] = field(default_factory=list)  # routes → TERMINATING (terminate their session)
    forget: list[str] = field(default_factory=list)  # FAILED/TERMINATING routes whose session is gone
    start: int = 0  # new replicas of the service's generation
    retries: int = 0
    next_retry_at: datetime | None = None
    status: str = ServiceStatus.PROVISIONING
    status_info: str = ""
    destroyed: bool = False
    limited: bool = False  # the policy limit held back a start


def backoff(retries: int) -> float:
    """Seconds to wait before the next start after ``retries`` consecutive failures."""
    if retries <= 0:
        return 0.0
    return min(MAX_BACKOFF, 2.0 ** min(retries, 16))


def check_due(route: RouteView, now: datetime, hc: HealthCheck) -> bool:
    """Whether a replica gets a health check in this pass: its session runs, the initial delay
    has passed, and the last check is an interval old."""
    if route.status not in ACTIVE or route.running_since is None:
        return False
    if now < route.running_since + timedelta(seconds=hc.initial_delay):
        return False
    return route.last_health_at is None or now >= route.last_health_at + timedelta(seconds=hc.interval)


def check_outcome(route: RouteView, ok: bool, now: datetime, hc: HealthCheck, detail: str = "") -> CheckOutcome:
    """A replica's health after one check (``ok``: the expected status came back in time)."""
    if ok:
        if route.status == RouteStatus.HEALTHY:
            return CheckOutcome(RouteStatus.HEALTHY, 0, route.healthy_since or now)
        return CheckOutcome(RouteStatus.HEALTHY, 0, now, became_healthy=True)
    failures = route.health_failures + 1
    why = f": {detail}" if detail else ""
    if route.status == RouteStatus.HEALTHY:
        if failures >= hc.max_retries:
            return CheckOutcome(RouteStatus.UNHEALTHY, failures, None)
        return CheckOutcome(RouteStatus.HEALTHY, failures, route.healthy_since or now)
    if route.status == RouteStatus.UNHEALTHY:
        if failures >= UNHEALTHY_ROUNDS * max(1, hc.max_retries):
            return CheckOutcome(RouteStatus.UNHEALTHY, failures, None,
                                failed=f"the health check failed {failures} times in a row{why}")
        return CheckOutcome(RouteStatus.UNHEALTHY, failures, None)
    return CheckOutcome(route.status, failures, None)


def _never_healthy(route: RouteView, now: datetime, hc: HealthCheck) -> bool:
    return (route.status == RouteStatus.PROVISIONING and route.running_since is not None
            and now >= route.running_since + timedelta(seconds=hc.start_deadline))


def _failure(route: RouteView, now: datetime, hc: HealthCheck) -> str | None:
    """Why an active replica must be replaced, or None."""
    if not route.has_session:
        return "its session could not be created"
    if route.session_status in DEAD_STATUSES:
        info = f": {route.session_info}" if route.session_info else ""
        return f"its session ended ({route.session_status}{info})"
    if _never_healthy(route, now, hc):
        return (f"the health check did not pass within {hc.start_deadline:.0f} s of the start "
                f"(initial_delay {hc.initial_delay:g} s + {hc.max_retries} × {hc.interval:g} s)")
    return None


def _victim_order(route: RouteView, generation: int) -> tuple[int, int, float]:
    rank = {RouteStatus.UNHEALTHY: 0, RouteStatus.PROVISIONING: 1}.get(RouteStatus(route.status), 2)
    return (rank, 0 if route.generation != generation else 1, -route.created_at.timestamp())


def _service_status(svc: ServiceView, healthy: int, unhealthy: int, retries: int,
                    last_failure: str | None) -> tuple[str, str]:
    if svc.desired == 0:
        return ServiceStatus.HEALTHY, "scaled to zero"
    if healthy >= svc.desired:
        return ServiceStatus.HEALTHY, f"{healthy} of {svc.desired} replicas healthy"
    if healthy > 0:
        return ServiceStatus.DEGRADED, f"{healthy} of {svc.desired} replicas healthy"
    if retries > 0 or unhealthy > 0:
        why = f": {last_failure}" if last_failure else ""
        return ServiceStatus.UNHEALTHY, f"no healthy replica{why}"[:500]
    return ServiceStatus.PROVISIONING, "waiting for the first healthy replica"


def plan(svc: ServiceView, routes: list[RouteView], now: datetime, hc: HealthCheck,
         check_failures: dict[str, str] | None = None) -> Plan:
    """What to do with a service in this pass.  ``routes`` carry their health after this pass's
    checks; ``check_failures`` names the replicas the checks condemned (``CheckOutcome.failed``)."""
    check_failures = check_failures or {}
    gone = [r for r in routes if r.status in (RouteStatus.FAILED, RouteStatus.TERMINATING)
            and (not r.has_session or r.session_status in DEAD_STATUSES)]
    forget = [r.id for r in gone]
    failed: list[Failure] = []
    active: list[RouteView] = []
    for r in routes:
        if r.status not in ACTIVE:
            continue
        why = check_failures.get(r.id) or _failure(r, now, hc)
        if why:
            failed.append(Failure(r.id, why))
        else:
            active.append(r)
    # A replica that had served (was HEALTHY) and then died is replaced at once: only replicas that
    # never got healthy count as failed starts and back off (a crash loop before serving).
    served = {r.id for r in routes if r.healthy_since is not None}
    failed_starts = [f for f in failed if f.route_id not in served]
    retries = svc.retries + len(failed_starts)
    next_retry_at = svc.next_retry_at
    if failed_starts:
        next_retry_at = now + timedelta(seconds=backoff(retries))
    last_failure = failed[-1].reason if failed else None
    # Routes still holding a session count toward the policy limit.
    holding = len(routes) - len(forget) - len(failed)

    if svc.status in (ServiceStatus.TERMINATING, ServiceStatus.DESTROYED):
        # Everything goes; a replica dying now is no failure worth recording.
        remaining = len(routes) - len(forget)
        return Plan(stop=[r.id for r in routes if r.status in ACTIVE], forget=forget, retries=svc.retries, next_retry_at=svc.next_retry_at,
                    status=ServiceStatus.DESTROYED if remaining == 0 else ServiceStatus.TERMINATING,
                    status_info="destroyed" if remaining == 0 else "terminating the replicas",
                    destroyed=remaining == 0)

    stop: list[str] = []
    current = [r for r in active if r.generation == svc.generation]
    old = [r for r in active if r.generation != svc.generation]
    healthy_before = sum(r.status == RouteStatus.HEALTHY for r in active)
    # Old replicas that do not serve go at once; the new generation replaces them.
    for r in [r for r in old if r.status != RouteStatus.HEALTHY]:
        stop.append(r.id)
    old = [r for r in old if r.status == RouteStatus.HEALTHY]
    if svc.desired == 0:
        stop += [r.id for r in current + old]
        current, old = [], []
    # Too many of the current generation: stop the least useful.
    if len(current) > svc.desired:
        victims = sorted(current, key=lambda r: _victim_order(r, svc.generation))[:len(current) - svc.desired]
        stop += [r.id for r in victims]
        current = [r for r in current if r not in victims]
    # Old healthy replicas: stop one only when the healthy count stays what it was (and desired).
    healthy_now = sum(r.status == RouteStatus.HEALTHY for r in current) + len(old)
    floor = max(min(healthy_before, svc.desired), 0)
    excess = len(current) + len(old) - svc.desired
    for r in sorted(old, key=lambda r: r.created_at):
        if excess <= 0 or healthy_now - 1 < floor:
            break
        stop.append(r.id)
        old.remove(r)
        healthy_now -= 1
        excess -= 1

    start = max(0, svc.desired - len(current) - len(old))
    surging = any(r.status == RouteStatus.PROVISIONING for r in current)
    if start == 0 and old and not surging and len(current) < svc.desired:
        start = 1  # roll over: one new replica at a time
    limited = False
    if start and next_retry_at is not None and now < next_retry_at:
        start = 0
    if start and svc.max_replicas:
        room = max(0, svc.max_replicas - holding)
        if room < start:
            start, limited = room, True

    healthy = sum(r.status == RouteStatus.HEALTHY for r in current + old)
    unhealthy = sum(r.status == RouteStatus.UNHEALTHY for r in current + old)
    status, info = _service_status(svc, healthy, unhealthy, retries, last_failure)
    if limited and healthy < svc.desired:
        info = f"{info}; the owner's max_session_count_per_model_session ({svc.max_replicas}) is reached"
    elif status != ServiceStatus.HEALTHY and next_retry_at is not None and now < next_retry_at and \
            len(current) + len(old) < svc.desired:
        info = f"{info}; next try at {next_retry_at.isoformat(timespec='seconds')}"
    return Plan(failed=failed, stop=stop, forget=forget, start=start, retries=retries,
                next_retry_at=next_retry_at, status=status, status_info=info[:500], limited=limited)


def with_outcome(route: RouteView, outcome: CheckOutcome, now: datetime) -> RouteView:
    """The route as the plan sees it after a check."""
    return replace(route, status=outcome.status, health_failures=outcome.failures,
                   healthy_since=outcome.healthy_since, last_health_at=now)

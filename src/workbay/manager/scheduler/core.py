"""The pure scheduler: one tick of one resource group, plain data in, decisions out.

No I/O, no database, no asyncio, no clock: the dispatcher loads a ``SchedulingInput`` (the group's
settings, its agents, its PENDING sessions, the limits and current use of every keypair, project
and domain involved, the state of every dependency, ``now``), calls ``schedule()``, and persists
the ``SchedulingResult``: one decision per pending session —

- ``Scheduled``: kernel → agent placements with the slots to reserve (all kernels or none);
- ``StillPending``: every predicate with passed/failed and a message, the new ``attempts`` and
  ``blocking_retries`` counters to store, and ``blocked_by`` when it waited behind the head of line;
- ``Cancelled``: ``"pending-timeout"`` (pending longer than the group's ``pending_timeout``,
  counted from ``created_at``, or from ``starts_at`` for a reserved batch session),
  ``"dependency-failed"`` (a dependency finished without success) or ``"invalid-request"``
  (evaluating the session raised: the error is the message, and the tick goes on for everyone
  else — one bad row never stops the queue).

A tick:

1. Cancel what timed out or lost a dependency.
2. Order the rest (``ordering``): FIFO, LIFO, or DRF (smallest dominant share of the group's
   capacity per access key first, recomputed as the tick allocates).
3. For each session in that order, with its request raised to its image's minimum resources
   (never lowered), check every predicate — reserved start time, allowed session types,
   dependencies, concurrency (keypair's max concurrent sessions), keypair / project / domain
   resource limits, architecture, designated agent, resource group capacity — counting everything
   already scheduled earlier in the same tick.  If all pass, reserve its placement (``placement``)
   and schedule it; the agents' free slots and the limits' use grow at once for later sessions.
4. Head-of-line blocking, only for lack of capacity: when a session passes every predicate but
   capacity, could fit the group's candidate agents if they were empty, and has held back the
   queue fewer than ``retries_to_skip`` times, it becomes the blocker: every later session of this
   tick stays pending (``blocked_by``) and the blocker's ``blocking_retries`` goes up by one.  Once
   it has blocked ``retries_to_skip`` ticks it is skipped (still retried first, never blocking),
   which is how the guide's "retries to skip a pending session" ends head-of-line blocking.
   Sessions failing any other predicate never block.

Guarantees (tested as properties): no agent is ever given more than its free slots; no keypair,
project or domain limit and no max-concurrent-sessions is exceeded by what the tick schedules; a
multi-kernel session is placed whole or not at all.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from workbay.common.slots import ZERO, ResourceSlot

from . import predicates as P
from .model import (
    ALL_SESSION_TYPES,
    CANCEL_DEPENDENCY_FAILED,
    CANCEL_INVALID_REQUEST,
    CANCEL_PENDING_TIMEOUT,
    DEFAULT_RETRIES_TO_SKIP,
    PRED_ARCHITECTURE,
    PRED_CAPACITY,
    PRED_CONCURRENCY,
    PRED_DEPENDENCIES,
    PRED_DESIGNATED_AGENT,
    PRED_DOMAIN_LIMIT,
    PRED_KEYPAIR_LIMIT,
    PRED_PROJECT_LIMIT,
    PRED_SESSION_TYPE,
    PRED_START_TIME,
    PREDICATE_NAMES,
    AgentCapacity,
    AgentSelection,
    Cancelled,
    ClusterMode,
    Decision,
    DependencyState,
    KernelPlacement,
    KeypairQuota,
    PendingSession,
    PredicateResult,
    ResourceGroupPolicy,
    Scheduled,
    SchedulerKind,
    SchedulingInput,
    SchedulingResult,
    SessionType,
    StillPending,
    Usage,
    enum_value,
)
from .ordering import SessionQueue, dominant_share, static_order
from .placement import AgentPool, Placement

__all__ = [
    "ALL_SESSION_TYPES", "CANCEL_DEPENDENCY_FAILED", "CANCEL_INVALID_REQUEST", "CANCEL_PENDING_TIMEOUT", "DEFAULT_RETRIES_TO_SKIP",
    "PRED_ARCHITECTURE", "PRED_CAPACITY", "PRED_CONCURRENCY", "PRED_DEPENDENCIES", "PRED_DESIGNATED_AGENT",
    "PRED_DOMAIN_LIMIT", "PRED_KEYPAIR_LIMIT", "PRED_PROJECT_LIMIT", "PRED_SESSION_TYPE", "PRED_START_TIME",
    "PREDICATE_NAMES", "AgentCapacity", "AgentPool", "AgentSelection", "Cancelled", "ClusterMode", "Decision",
    "DependencyState", "KernelPlacement", "KeypairQuota", "PendingSession", "Placement", "PredicateResult",
    "ResourceGroupPolicy", "Scheduled", "SchedulerKind", "SchedulingInput", "SchedulingResult", "SessionType",
    "StillPending", "Usage", "cancellation", "dominant_share", "enum_value", "invalid", "schedule", "static_order", "validate",
]


def validate(inp: SchedulingInput) -> None:
    """Fail loudly (``ValueError``) on input the dispatcher must not produce."""
    group = inp.resource_group.name
    seen: set[str] = set()
    for s in inp.pending:
        if s.id in seen:
            raise ValueError(f"session {s.id} given twice")
        seen.add(s.id)
        if s.resource_group != group:
            raise ValueError(f"session {s.id} belongs to resource group {s.resource_group!r}, not {group!r}")
        if s.access_key not in inp.keypairs:
            raise ValueError(f"session {s.id}: no usage/limits given for keypair {s.access_key}")
        if s.project_id not in inp.projects:
            raise ValueError(f"session {s.id}: no usage/limits given for project {s.project_id}")
        if s.domain not in inp.domains:
            raise ValueError(f"session {s.id}: no usage/limits given for domain {s.domain}")
        for d in s.dependencies:
            if d not in inp.dependencies:
                raise ValueError(f"session {s.id}: no state given for dependency {d}")
            DependencyState(inp.dependencies[d])


def cancellation(s: PendingSession, inp: SchedulingInput) -> Cancelled | None:
    """Pending timeout (counted from ``created_at``, or ``starts_at`` when later), then failed
    dependencies; None when the session stays in the queue."""
    timeout = inp.resource_group.pending_timeout
    if timeout > 0:
        since = s.created_at if s.starts_at is None or s.starts_at < s.created_at else s.starts_at
        if inp.now - since > timedelta(seconds=timeout):
            return Cancelled(s, CANCEL_PENDING_TIMEOUT,
                             f"pending longer than the resource group's pending timeout ({timeout:g} s) "
                             f"since {since.isoformat()}")
    for d in s.dependencies:
        if DependencyState(inp.dependencies[d]) is DependencyState.FAILED:
            return Cancelled(s, CANCEL_DEPENDENCY_FAILED, f"dependency {d} did not finish successfully")
    return None


def invalid(s: PendingSession, error: BaseException) -> Cancelled:
    """The decision for a session whose evaluation raised: cancelled, saying why."""
    text = str(error) or type(error).__name__
    return Cancelled(s, CANCEL_INVALID_REQUEST, f"the request cannot be scheduled: {text[:500]}")


def _add(acc: dict[str, dict[str, Decimal]], key: str, slots: ResourceSlot) -> None:
    d = acc.setdefault(key, {})
    for k, v in slots.items():
        d[k] = d.get(k, ZERO) + v


def _summary(preds: list[PredicateResult]) -> str:
    failed = [p for p in preds if not p.passed]
    return "; ".join(f"{p.name}: {p.message}" for p in failed) if failed else "ready"


def schedule(inp: SchedulingInput) -> SchedulingResult:
    """One scheduling tick of ``inp.resource_group`` (see the module docstring)."""
    validate(inp)
    group = inp.resource_group
    pool = AgentPool(inp.agents, group.name, group.agent_selection)
    decisions: list[Decision] = []
    queued: list[PendingSession] = []
    for s in inp.pending:
        try:
            c = cancellation(s, inp)
        except Exception as e:  # one bad session never fails the tick
            decisions.append(invalid(s, e))
            continue
        if c is not None:
            decisions.append(c)
        else:
            queued.append(s)

    queue = SessionQueue(group.scheduler, queued, pool.capacity, inp.group_usage)
    kp_added: dict[str, dict[str, Decimal]] = {}
    kp_started: dict[str, int] = {}
    proj_added: dict[str, dict[str, Decimal]] = {}
    dom_added: dict[str, dict[str, Decimal]] = {}
    blocker: PendingSession | None = None

    while queue:
        s = queue.pop()
        try:
            per_kernel = s.effective_slots
            total = per_kernel * s.cluster_size if s.cluster_size > 1 else per_kernel
            kp: KeypairQuota = inp.keypairs[s.access_key]
            proj: Usage = inp.projects[s.project_id]
            dom: Usage = inp.domains[s.domain]
            counted = s.session_type != SessionType.SYSTEM
            if counted:
                limits = [
                    P.concurrency(s, kp, kp_started.get(s.access_key, 0)),
                    P.resource_limit(PRED_KEYPAIR_LIMIT, "keypair", total, kp.limit, kp.occupied, kp_added.get(s.access_key)),
                    P.resource_limit(PRED_PROJECT_LIMIT, "project", total, proj.limit, proj.occupied,
                                     proj_added.get(s.project_id)),
                    P.resource_limit(PRED_DOMAIN_LIMIT, "domain", total, dom.limit, dom.occupied, dom_added.get(s.domain)),
                ]
            else:  # system sessions never count against their owner's, project's or domain's limits
                limits = [PredicateResult(name, True, "system sessions are not counted")
                          for name in (PRED_CONCURRENCY, PRED_KEYPAIR_LIMIT, PRED_PROJECT_LIMIT, PRED_DOMAIN_LIMIT)]
            preds = [
                P.reserved_start_time(s, inp.now),
                P.allowed_session_type(s, group),
                P.dependencies(s, inp.dependencies),
                *limits,
                P.architecture(s, pool.architectures, group.name),
                P.designated_agent(s, pool.states, pool.excluded),
            ]
            others_pass = all(p.passed for p in preds)
            placeable = preds[-1].passed and preds[-2].passed
            placement = pool.find(per_kernel, s.cluster_size, s.cluster_mode, s.architecture, s.designated_agents) \
                if placeable else None

            if blocker is not None:
                if placement is not None:
                    msg = (f"resources are free, but session {blocker.id} ahead in the queue waits for resources "
                           f"first (head-of-line blocking)")
                else:
                    msg = _capacity_message(pool, group.name, _shape(per_kernel, s), placeable) + \
                        f"; also queued behind session {blocker.id}"
                preds.append(PredicateResult(PRED_CAPACITY, False, msg))
                decisions.append(StillPending(s, tuple(preds), s.attempts + 1, s.blocking_retries, blocker.id,
                                              _summary(preds)))
            elif placement is not None and others_pass:
                pool.commit(placement)
                preds.append(PredicateResult(PRED_CAPACITY, True, f"placed on {', '.join(dict.fromkeys(placement.agent_ids))}"))
                if counted:
                    _add(kp_added, s.access_key, total)
                    _add(proj_added, s.project_id, total)
                    _add(dom_added, s.domain, total)
                    kp_started[s.access_key] = kp_started.get(s.access_key, 0) + 1
                queue.allocated(s, total)
                placements = tuple(KernelPlacement(i, aid, per_kernel) for i, aid in enumerate(placement.agent_ids))
                decisions.append(Scheduled(s, placements, tuple(preds)))
            else:
                blocking_retries = s.blocking_retries
                if placement is not None:
                    preds.append(PredicateResult(PRED_CAPACITY, True, "resources are free"))
                else:
                    msg = _capacity_message(pool, group.name, _shape(per_kernel, s), placeable)
                    if others_pass:  # lacks only capacity: may hold back the queue
                        if s.blocking_retries >= group.retries_to_skip:
                            if group.retries_to_skip:
                                msg += (f"; skipped after holding back the queue {group.retries_to_skip} times, "
                                        f"later sessions may go first")
                        elif not pool.could_ever_fit(per_kernel, s.cluster_size, s.cluster_mode, s.architecture,
                                                     s.designated_agents):
                            msg += "; it would not fit even on empty agents, so it does not hold back the queue"
                        else:
                            blocker = s
                            blocking_retries += 1
                            msg += (f"; holding back the queue (head-of-line, {blocking_retries} of "
                                    f"{group.retries_to_skip} tries before it is skipped)")
                    preds.append(PredicateResult(PRED_CAPACITY, False, msg))
                decisions.append(StillPending(s, tuple(preds), s.attempts + 1, blocking_retries, None, _summary(preds)))
        except Exception as e:  # one bad session never fails the tick; at worst (a raise after
            # pool.commit) its slots stay counted as taken for the rest of this tick: conservative
            decisions.append(invalid(s, e))
        queue.done(s)

    return SchedulingResult(tuple(decisions), pool.occupied())


def _shape(per_kernel: ResourceSlot, s: PendingSession) -> str:
    what = per_kernel.describe()
    if s.cluster_size > 1:
        return f"{s.cluster_size} × ({what}), {s.cluster_mode}"
    return what


def _capacity_message(pool: AgentPool, group: str, shape: str, placeable: bool) -> str:
    if not placeable:
        return "no candidate agent to place it on (see architecture / designated agent)"
    return f"not enough free resources in resource group {group!r} for {shape} (free in the group: " \
           f"{pool.describe_free()})"

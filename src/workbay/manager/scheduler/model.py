"""Plain data the pure scheduler takes and gives (see ``core`` for the model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from workbay.common.domain import AgentSelection, ClusterMode, SchedulerKind, SessionType
from workbay.common.slots import ResourceSlot, request_problem

EMPTY = ResourceSlot()


class DependencyState(StrEnum):
    """What the scheduler needs to know of a session another one depends on."""
    WAITING = "waiting"      # not finished yet (pending, running, …)
    SUCCEEDED = "succeeded"  # terminated with success
    FAILED = "failed"        # terminated with failure, cancelled or errored: dependents are cancelled


# Predicate names (recorded per attempt; CS-13 shows them).
PRED_START_TIME = "reserved start time"
PRED_CONCURRENCY = "concurrency"
PRED_DEPENDENCIES = "dependencies"
PRED_KEYPAIR_LIMIT = "keypair resource limit"
PRED_PROJECT_LIMIT = "project resource limit"
PRED_DOMAIN_LIMIT = "domain resource limit"
PRED_SESSION_TYPE = "allowed session types"
PRED_ARCHITECTURE = "architecture"
PRED_DESIGNATED_AGENT = "designated agent"
PRED_CAPACITY = "resource group capacity"

PREDICATE_NAMES = (  # in the order every decision lists them
    PRED_START_TIME, PRED_SESSION_TYPE, PRED_DEPENDENCIES, PRED_CONCURRENCY, PRED_KEYPAIR_LIMIT,
    PRED_PROJECT_LIMIT, PRED_DOMAIN_LIMIT, PRED_ARCHITECTURE, PRED_DESIGNATED_AGENT, PRED_CAPACITY,
)

CANCEL_PENDING_TIMEOUT = "pending-timeout"
CANCEL_DEPENDENCY_FAILED = "dependency-failed"
# A session the scheduler cannot evaluate at all (a row no API accepts: an infinite or NaN
# request, an unknown type, …): cancelled with the error instead of failing the whole tick.
CANCEL_INVALID_REQUEST = "invalid-request"

DEFAULT_RETRIES_TO_SKIP = 3
ALL_SESSION_TYPES = frozenset(SessionType)


E = TypeVar("E", bound=StrEnum)


def enum_value(cls: type[E], value: object, what: str) -> E:
    """``value`` as a member of ``cls``; ``ValueError`` naming ``what`` and the allowed values."""
    try:
        # Rows and callers may hold anything; the enum itself refuses what it does not know.
        return cls(value)  # type: ignore[arg-type]
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown {what} {value!r} (one of: {allowed})") from None


_enum = enum_value


@dataclass(frozen=True, slots=True)
class ResourceGroupPolicy:
    """A resource group's scheduler settings.  Unknown values fail loudly (``ValueError``).

    ``pending_timeout``: seconds a session may wait PENDING before it is cancelled (0 = never).
    ``retries_to_skip``: how many ticks a head-of-line session that lacks only capacity holds back
    the sessions behind it before it is skipped (it stays pending and is retried every tick, but
    no longer blocks).  0 = never block (backfill freely)."""
    name: str
    scheduler: SchedulerKind = SchedulerKind.FIFO
    pending_timeout: float = 0
    retries_to_skip: int = DEFAULT_RETRIES_TO_SKIP
    allowed_session_types: frozenset[SessionType] = ALL_SESSION_TYPES
    agent_selection: AgentSelection = AgentSelection.DISPERSED

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheduler", _enum(SchedulerKind, self.scheduler, "scheduler"))
        object.__setattr__(self, "agent_selection", _enum(AgentSelection, self.agent_selection, "agent selection"))
        types = frozenset(_enum(SessionType, t, "session type") for t in self.allowed_session_types)
        if not types:
            raise ValueError(f"resource group {self.name!r}: at least one session type must be allowed")
        object.__setattr__(self, "allowed_session_types", types)
        if self.pending_timeout < 0:
            raise ValueError("pending_timeout must be zero (none) or more seconds")
        if isinstance(self.retries_to_skip, bool) or not isinstance(self.retries_to_skip, int) or self.retries_to_skip < 0:
            raise ValueError("retries_to_skip must be an integer ≥ 0")


@dataclass(frozen=True, slots=True)
class AgentCapacity:
    """An agent as the scheduler sees it.  ``total_slots`` is its capacity (Backend.AI's
    ``agents.available_slots``); ``occupied_slots`` what its live kernels hold."""
    id: str
    resource_group: str
    total_slots: ResourceSlot
    occupied_slots: ResourceSlot = EMPTY
    architecture: str = "x86_64"
    schedulable: bool = True

    @property
    def free_slots(self) -> ResourceSlot:
        return self.total_slots - self.occupied_slots


@dataclass(frozen=True, slots=True)
class PendingSession:
    """A PENDING session.  ``requested_slots`` is per kernel (every kernel of a cluster asks for
    the same); ``cluster_size`` kernels.  ``attempts`` counts past ticks that left it pending;
    ``blocking_retries`` counts past ticks in which it held back the queue (head-of-line)."""
    id: str
    created_at: datetime
    access_key: str
    project_id: str
    domain: str
    resource_group: str
    requested_slots: ResourceSlot
    user_id: str = ""
    session_type: SessionType = SessionType.INTERACTIVE
    cluster_size: int = 1
    cluster_mode: ClusterMode = ClusterMode.SINGLE_NODE
    architecture: str = "x86_64"
    designated_agents: tuple[str, ...] = ()
    starts_at: datetime | None = None
    dependencies: tuple[str, ...] = ()
    image_min_slots: ResourceSlot = EMPTY
    attempts: int = 0
    blocking_retries: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "session_type", _enum(SessionType, self.session_type, "session type"))
        object.__setattr__(self, "cluster_mode", _enum(ClusterMode, self.cluster_mode, "cluster mode"))
        object.__setattr__(self, "designated_agents", tuple(self.designated_agents))
        object.__setattr__(self, "dependencies", tuple(self.dependencies))
        if isinstance(self.cluster_size, bool) or not isinstance(self.cluster_size, int) or self.cluster_size < 1:
            raise ValueError(f"session {self.id}: cluster_size must be an integer ≥ 1")
        problem = request_problem(self.requested_slots)
        if problem:
            raise ValueError(f"session {self.id}: {problem}")

    @property
    def effective_slots(self) -> ResourceSlot:
        """Per-kernel request raised to the image's minimum (never lowered)."""
        if not self.image_min_slots:
            return self.requested_slots
        return self.requested_slots.maximum(self.image_min_slots)

    @property
    def total_slots(self) -> ResourceSlot:
        """What the whole session holds once scheduled (effective per-kernel × cluster size)."""
        return self.effective_slots * self.cluster_size


@dataclass(frozen=True, slots=True)
class Usage:
    """A scope's limit (missing slot or ``Infinity`` = unlimited) and what it occupies now."""
    limit: ResourceSlot = EMPTY
    occupied: ResourceSlot = EMPTY

    @classmethod
    def unlimited(cls) -> Usage:
        return cls()


@dataclass(frozen=True, slots=True)
class KeypairQuota:
    """A keypair's policy (``total_resource_slots`` as ``limit``, ``max_concurrent_sessions``:
    None = unlimited, 0 = none allowed) and its current use (occupied slots, live sessions)."""
    limit: ResourceSlot = EMPTY
    occupied: ResourceSlot = EMPTY
    max_concurrent_sessions: int | None = None
    active_sessions: int = 0

    @classmethod
    def unlimited(cls) -> KeypairQuota:
        return cls()


@dataclass(frozen=True, slots=True)
class SchedulingInput:
    """Everything one tick of one resource group looks at.  Every pending session's access key,
    project and domain must have an entry in ``keypairs``/``projects``/``domains`` (pass
    ``…Usage.unlimited()`` explicitly), and every dependency a state: a missing one is a
    ``ValueError``, never a silent default.  ``group_usage`` is what each access key already
    occupies in this group (DRF's dominant share); a missing key occupies nothing.  Agents of other
    groups may be passed; they are never candidates."""
    now: datetime
    resource_group: ResourceGroupPolicy
    agents: Sequence[AgentCapacity]
    pending: Sequence[PendingSession]
    keypairs: Mapping[str, KeypairQuota]
    projects: Mapping[str, Usage]
    domains: Mapping[str, Usage]
    dependencies: Mapping[str, DependencyState] = field(default_factory=lambda: MappingProxyType({}))
    group_usage: Mapping[str, ResourceSlot] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class PredicateResult:
    name: str
    passed: bool
    message: str


@dataclass(frozen=True, slots=True)
class KernelPlacement:
    """Kernel ``index`` (0 = main) of a session goes to ``agent_id`` holding ``slots``."""
    index: int
    agent_id: str
    slots: ResourceSlot

    @property
    def cluster_role(self) -> str:
        return "main" if self.index == 0 else "sub"

    @property
    def cluster_idx(self) -> int:
        return 1 if self.index == 0 else self.index

    @property
    def cluster_hostname(self) -> str:
        return f"{self.cluster_role}{self.cluster_idx}"


@dataclass(frozen=True, slots=True)
class Scheduled:
    session: PendingSession
    placements: tuple[KernelPlacement, ...]
    predicates: tuple[PredicateResult, ...]

    @property
    def agent_ids(self) -> tuple[str, ...]:
        """Distinct agents, in kernel order."""
        return tuple(dict.fromkeys(p.agent_id for p in self.placements))

    @property
    def slots(self) -> ResourceSlot:
        return sum((p.slots for p in self.placements), ResourceSlot())


@dataclass(frozen=True, slots=True)
class StillPending:
    """Left PENDING this tick.  ``attempts``/``blocking_retries`` are the new counter values to
    store.  ``blocked_by``: the head-of-line session it waited behind (None when it was judged on
    its own predicates).  ``message``: one line for the status ("?" in the UI)."""
    session: PendingSession
    predicates: tuple[PredicateResult, ...]
    attempts: int
    blocking_retries: int
    blocked_by: str | None
    message: str

    @property
    def failed(self) -> tuple[PredicateResult, ...]:
        return tuple(p for p in self.predicates if not p.passed)


@dataclass(frozen=True, slots=True)
class Cancelled:
    session: PendingSession
    reason: str  # CANCEL_PENDING_TIMEOUT | CANCEL_DEPENDENCY_FAILED | CANCEL_INVALID_REQUEST
    message: str


Decision = Scheduled | StillPending | Cancelled


@dataclass(frozen=True, slots=True)
class SchedulingResult:
    """Decisions in the order they were made (cancellations first, then the scheduling order);
    ``agent_occupied``: each candidate agent's occupied slots after this tick's allocations."""
    decisions: tuple[Decision, ...]
    agent_occupied: Mapping[str, ResourceSlot]

    @property
    def scheduled(self) -> tuple[Scheduled, ...]:
        return tuple(d for d in self.decisions if isinstance(d, Scheduled))

    @property
    def pending(self) -> tuple[StillPending, ...]:
        return tuple(d for d in self.decisions if isinstance(d, StillPending))

    @property
    def cancelled(self) -> tuple[Cancelled, ...]:
        return tuple(d for d in self.decisions if isinstance(d, Cancelled))

    def for_session(self, session_id: str) -> Decision:
        for d in self.decisions:
            if d.session.id == session_id:
                return d
        raise KeyError(session_id)

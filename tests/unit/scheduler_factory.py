"""Builders for scheduler unit tests (short names, sensible defaults, everything overridable)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from workbay.common.slots import ResourceSlot
from workbay.manager.scheduler.core import (
    AgentCapacity,
    DependencyState,
    KeypairQuota,
    PendingSession,
    ResourceGroupPolicy,
    SchedulingInput,
    SchedulingResult,
    Usage,
    schedule,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
GIB = 1024**3


def slots(**kw: Any) -> ResourceSlot:
    """``slots(cpu=2, mem="4g", cuda_shares=1)`` — underscores become dots."""
    return ResourceSlot.from_user({k.replace("_", "."): v for k, v in kw.items()})


def agent(id: str, *, cpu: Any = 8, mem: Any = "16g", occupied: Mapping[str, Any] | None = None,
          group: str = "default", arch: str = "x86_64", schedulable: bool = True, **extra: Any) -> AgentCapacity:
    total = {"cpu": cpu, "mem": mem, **{k.replace("_", "."): v for k, v in extra.items()}}
    occ = ResourceSlot.from_user({k.replace("_", "."): v for k, v in (occupied or {}).items()})
    return AgentCapacity(id, group, ResourceSlot.from_user(total), occ, arch, schedulable)


def session(id: str, *, age: float = 0, cpu: Any = 1, mem: Any = "1g", key: str = "AK1", project: str = "p1",
            domain: str = "d1", group: str = "default", **kw: Any) -> PendingSession:
    """A pending session created ``age`` seconds before NOW; extra slots as ``cuda_shares=1``; any
    other keyword goes to ``PendingSession``."""
    req = {"cpu": cpu, "mem": mem}
    fields = {}
    for k, v in kw.items():
        if k.startswith("cuda_") or k in ("gpu",):
            req[k.replace("_", ".")] = v
        else:
            fields[k] = v
    return PendingSession(id=id, created_at=NOW - timedelta(seconds=age), access_key=key, project_id=project,
                          domain=domain, resource_group=group,
                          requested_slots=ResourceSlot.from_user({k: v for k, v in req.items() if v is not None}),
                          **fields)


def make_input(sessions: Iterable[PendingSession], agents: Iterable[AgentCapacity], *, group: ResourceGroupPolicy | None = None,
               keypairs: Mapping[str, KeypairQuota] | None = None, projects: Mapping[str, Usage] | None = None,
               domains: Mapping[str, Usage] | None = None, deps: Mapping[str, DependencyState] | None = None,
               group_usage: Mapping[str, ResourceSlot] | None = None, now: datetime = NOW,
               **group_kw: Any) -> SchedulingInput:
    sessions = list(sessions)
    kp = dict(keypairs or {})
    pr = dict(projects or {})
    dm = dict(domains or {})
    for s in sessions:  # everything not given explicitly is unlimited and unused
        kp.setdefault(s.access_key, KeypairQuota())
        pr.setdefault(s.project_id, Usage())
        dm.setdefault(s.domain, Usage())
    g = group or ResourceGroupPolicy("default", **group_kw)
    return SchedulingInput(now, g, list(agents), sessions, kp, pr, dm, dict(deps or {}), dict(group_usage or {}))


def tick(sessions: Iterable[PendingSession], agents: Iterable[AgentCapacity], **kw: Any) -> SchedulingResult:
    return schedule(make_input(sessions, agents, **kw))


def ids(decisions: Iterable[Any]) -> list[str]:
    return [d.session.id for d in decisions]


def predicate(decision: Any, name: str):
    for p in decision.predicates:
        if p.name == name:
            return p
    raise KeyError(name)

"""What the session services return: typed objects in Workbay's names.  ``manager/api/session_wire.py``
turns them into Backend.AI's wire format; ``as_json`` gives Workbay's own session object (the
GraphQL adapter reads it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbay.manager.models.compute import ComputeSession, Kernel

from .serialize import iso

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class SessionMount:
    folder_id: str | None
    name: str | None
    target: str | None
    read_only: bool

    @classmethod
    def of(cls, stored: JSONObject) -> SessionMount:
        return cls(folder_id=stored.get("folder_id"), name=stored.get("name"),
                   target=stored.get("target"), read_only=bool(stored.get("read_only")))


@dataclass(frozen=True)
class KernelInfo:
    id: uuid.UUID
    cluster_role: str
    cluster_idx: int
    cluster_hostname: str
    agent_id: str | None
    container_id: str | None
    status: str
    status_info: str | None
    occupied_slots: JSONObject
    service_ports: list[JSONObject]
    exit_code: int | None
    last_stat: JSONObject
    created_at: datetime | None
    started_at: datetime | None
    terminated_at: datetime | None

    @classmethod
    def of(cls, k: Kernel) -> KernelInfo:
        return cls(id=k.id, cluster_role=k.cluster_role, cluster_idx=k.cluster_idx,
                   cluster_hostname=k.cluster_hostname, agent_id=k.agent_id, container_id=k.container_id,
                   status=k.status, status_info=k.status_info, occupied_slots=k.occupied_slots,
                   service_ports=list(k.service_ports or []), exit_code=k.exit_code, last_stat=k.last_stat,
                   created_at=k.created_at, started_at=k.started_at, terminated_at=k.terminated_at)

    def as_json(self) -> JSONObject:
        return {"id": str(self.id), "cluster_role": self.cluster_role, "cluster_idx": self.cluster_idx,
                "cluster_hostname": self.cluster_hostname, "agent_id": self.agent_id,
                "container_id": self.container_id, "status": self.status, "status_info": self.status_info,
                "occupied_slots": self.occupied_slots, "service_ports": self.service_ports,
                "exit_code": self.exit_code, "last_stat": self.last_stat, "created_at": iso(self.created_at),
                "started_at": iso(self.started_at), "terminated_at": iso(self.terminated_at)}


@dataclass(frozen=True)
class ServiceRef:
    """The model service a replica session serves (docs/serving.md)."""
    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class SessionInfo:
    """One session as lists and the detail view show it.  ``kernels`` is None where the caller
    did not load them; ``allowed_actions`` is what the requesting user may do (access.session_actions)."""
    id: uuid.UUID
    name: str
    type: str
    status: str
    status_info: str | None
    status_data: JSONObject
    status_history: list[Any]
    image: str
    architecture: str
    access_key: str
    user_id: uuid.UUID
    project_id: uuid.UUID
    domain_name: str
    resource_group: str
    cluster_mode: str
    cluster_size: int
    requested_slots: JSONObject
    occupying_slots: JSONObject
    resource_opts: JSONObject
    environ: JSONObject
    preopen_ports: list[int]
    startup_command: str | None
    starts_at: datetime | None
    batch_timeout: int | None
    tag: str | None
    result: str
    exit_code: int | None
    scheduling_attempts: int
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    terminated_at: datetime | None
    mounts: list[SessionMount]
    num_queries: int
    kernels: list[KernelInfo] | None = None
    owner_email: str | None = None
    allowed_actions: tuple[str, ...] = ()
    model_service: ServiceRef | None = None  # a replica's service

    @classmethod
    def of(cls, s: ComputeSession, kernels: list[Kernel] | None = None, *, owner_email: str | None = None,
           allowed_actions: tuple[str, ...] = (), model_service: ServiceRef | None = None) -> SessionInfo:
        ordered = None
        if kernels is not None:
            ordered = [KernelInfo.of(k) for k in sorted(kernels, key=lambda k: (k.cluster_role != "main",
                                                                                 k.cluster_idx))]
        return cls(
            id=s.id, name=s.name, type=s.session_type, status=s.status, status_info=s.status_info,
            status_data=s.status_data, status_history=s.status_history or [], image=s.image,
            architecture=s.architecture, access_key=s.access_key, user_id=s.user_id, project_id=s.project_id,
            domain_name=s.domain_name, resource_group=s.resource_group, cluster_mode=s.cluster_mode,
            cluster_size=s.cluster_size, requested_slots=s.requested_slots, occupying_slots=s.occupying_slots,
            resource_opts=s.resource_opts, environ=s.environ, preopen_ports=s.preopen_ports,
            startup_command=s.startup_command, starts_at=s.starts_at, batch_timeout=s.batch_timeout, tag=s.tag,
            result=s.result, exit_code=s.exit_code, scheduling_attempts=s.scheduling_attempts,
            created_at=s.created_at, scheduled_at=s.scheduled_at, started_at=s.started_at,
            terminated_at=s.terminated_at,
            mounts=[SessionMount.of(m) for m in s.mounts or [] if isinstance(m, dict)],
            num_queries=s.num_queries or 0, kernels=ordered, owner_email=owner_email,
            allowed_actions=allowed_actions, model_service=model_service)

    @property
    def main_kernel(self) -> KernelInfo | None:
        return next((k for k in self.kernels or [] if k.cluster_role == "main"), None)

    def as_json(self) -> JSONObject:
        """Workbay's session object (``GET /sessions`` items; the detail view adds to it)."""
        out: JSONObject = {
            "id": str(self.id), "name": self.name, "type": self.type, "status": self.status,
            "status_info": self.status_info, "status_data": self.status_data, "status_history": self.status_history,
            "image": self.image, "architecture": self.architecture, "access_key": self.access_key,
            "user_id": str(self.user_id), "project_id": str(self.project_id), "domain_name": self.domain_name,
            "resource_group": self.resource_group, "cluster_mode": self.cluster_mode,
            "cluster_size": self.cluster_size, "requested_slots": self.requested_slots,
            "occupying_slots": self.occupying_slots, "resource_opts": self.resource_opts, "environ": self.environ,
            "preopen_ports": self.preopen_ports, "startup_command": self.startup_command,
            "starts_at": iso(self.starts_at), "batch_timeout": self.batch_timeout, "tag": self.tag,
            "result": self.result, "exit_code": self.exit_code, "scheduling_attempts": self.scheduling_attempts,
            "created_at": iso(self.created_at), "scheduled_at": iso(self.scheduled_at),
            "started_at": iso(self.started_at), "terminated_at": iso(self.terminated_at),
            "mounts": [{"folder_id": m.folder_id, "name": m.name, "target": m.target, "read_only": m.read_only}
                       for m in self.mounts],
        }
        if self.kernels is not None:
            main = self.main_kernel
            out["kernels"] = [k.as_json() for k in self.kernels]
            out["service_ports"] = main.service_ports if main else []
            out["last_stat"] = main.last_stat if main else {}
            out["agents"] = sorted({k.agent_id for k in self.kernels if k.agent_id})
        out["owner_email"] = self.owner_email
        out["model_service"] = ({"id": str(self.model_service.id), "name": self.model_service.name}
                                if self.model_service else None)
        out["allowed_actions"] = list(self.allowed_actions)
        return out


@dataclass(frozen=True)
class SessionPage:
    items: list[SessionInfo]
    total_count: int


@dataclass(frozen=True)
class SessionCounts:
    total: int
    status_groups: dict[str, int]
    live_by_type: dict[str, int]


@dataclass(frozen=True)
class CreatedSession:
    """The answer of creating (or reusing) a session; ``siblings`` lists every session a ``count``
    request created (empty for one).  After waiting, ``status`` is the one it reached, or TIMEOUT."""
    id: uuid.UUID
    name: str
    status: str
    service_ports: list[JSONObject]
    created: bool
    siblings: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    status_info: str | None = None
    waited: bool = False


@dataclass(frozen=True)
class StatusHistory:
    session_id: uuid.UUID
    history: list[Any]
    scheduling: JSONObject


@dataclass(frozen=True)
class Termination:
    """Where a session stands after a terminate request."""
    status: str
    ended: bool


@dataclass(frozen=True)
class KernelLogs:
    logs: str
    kernel_id: uuid.UUID | None

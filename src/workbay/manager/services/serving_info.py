"""What ``ServingService`` returns: typed objects in Workbay's names (``manager/api/services.py``
adds Backend.AI's keys at the edge), and what a caller may do with a service."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from workbay.common.domain import RouteStatus, ServiceStatus
from workbay.manager.models.serving import AutoScalingRule, ModelService, Route, ServiceError, ServiceToken

from .serialize import iso

JSONObject = dict[str, Any]
# Routes that count as replicas of the service (Backend.AI's "active routes").
ACTIVE_ROUTE_STATUSES = (RouteStatus.PROVISIONING, RouteStatus.HEALTHY, RouteStatus.UNHEALTHY)
ENDED_SERVICE_STATUSES = (ServiceStatus.TERMINATING, ServiceStatus.DESTROYED)


class ServiceAction(StrEnum):
    """What a caller may do with a service now (the WebUI shows exactly these)."""

    EDIT = "edit"
    SCALE = "scale"
    DELETE = "delete"
    TOKEN = "token"
    CLEAR_ERRORS = "clear_errors"
    LOGS = "logs"


def service_actions(status: str) -> tuple[str, ...]:
    """For a caller who may manage the service (the only ones who see it)."""
    if status in ENDED_SERVICE_STATUSES:
        return (ServiceAction.LOGS,)
    return tuple(sorted(ServiceAction))


def _float(v: Any) -> float:
    return float(v) if isinstance(v, int | float) else 0.0


def _int(v: Any) -> int:
    return int(v) if isinstance(v, int | float) else 0


@dataclass(frozen=True)
class ServiceStats:
    """The app-proxy's last figures for the service (``endpoints.live_stat``)."""

    rps: float = 0.0
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0

    @classmethod
    def of(cls, live: JSONObject | None) -> ServiceStats:
        live = live or {}
        return cls(rps=_float(live.get("rps")), in_flight=_int(live.get("in_flight")),
                   requests=_int(live.get("requests")), errors=_int(live.get("errors")),
                   p50_ms=_float(live.get("p50_ms")), p95_ms=_float(live.get("p95_ms")))

    def as_json(self) -> JSONObject:
        return {"rps": self.rps, "in_flight": self.in_flight, "requests": self.requests, "errors": self.errors,
                "p50_ms": self.p50_ms, "p95_ms": self.p95_ms}


@dataclass(frozen=True)
class RouteInfo:
    id: uuid.UUID
    session_id: uuid.UUID | None
    session_name: str | None
    status: str
    status_info: str | None
    traffic_ratio: float
    generation: int
    requests: int
    errors: int
    p50_ms: float
    created_at: datetime | None

    @classmethod
    def of(cls, r: Route, session_name: str | None, live: JSONObject | None) -> RouteInfo:
        routes = (live or {}).get("routes")
        figures = routes.get(str(r.id), {}) if isinstance(routes, dict) else {}
        figures = figures if isinstance(figures, dict) else {}
        return cls(id=r.id, session_id=r.session_id, session_name=session_name, status=r.status,
                   status_info=r.status_info, traffic_ratio=r.traffic_ratio, generation=r.generation,
                   requests=_int(figures.get("requests")), errors=_int(figures.get("errors")),
                   p50_ms=_float(figures.get("p50_ms")), created_at=r.created_at)

    def as_json(self) -> JSONObject:
        return {"route_id": str(self.id), "session_id": str(self.session_id) if self.session_id else None,
                "session_name": self.session_name, "status": self.status, "status_info": self.status_info,
                "traffic_ratio": self.traffic_ratio, "generation": self.generation, "requests": self.requests,
                "errors": self.errors, "p50_ms": self.p50_ms, "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class ServiceInfo:
    """A service as its owner and admins see it; ``routes``, ``stats`` and the counts of errors
    are filled for ``info`` (the list leaves ``routes`` empty)."""

    row: ModelService
    owner_email: str | None
    project_name: str | None
    model_folder_name: str | None
    active_route_count: int
    healthy_route_count: int
    allowed_actions: tuple[str, ...]
    routes: list[RouteInfo] = field(default_factory=list)
    error_count: int = 0

    @property
    def id(self) -> uuid.UUID:
        return self.row.id

    @property
    def stats(self) -> ServiceStats:
        return ServiceStats.of(self.row.live_stat)

    def config_json(self) -> JSONObject:
        """What the edit form shows (the create body's ``config`` and replica fields)."""
        r = self.row
        return {"model": str(r.model_folder_id), "model_mount_destination": r.model_mount_destination,
                "model_definition_path": r.model_definition_path,
                "extra_mounts": {str(m.get("folder_id")): m.get("mount_destination") or ""
                                 for m in r.extra_mounts or [] if isinstance(m, dict)},
                "environ": dict(r.environ or {}), "resource_group": r.resource_group,
                "resources": dict(r.resource_slots or {}), "resource_opts": dict(r.resource_opts or {})}

    def as_json(self) -> JSONObject:
        r = self.row
        return {
            "id": str(r.id), "name": r.name, "status": r.status, "status_info": r.status_info,
            "owner_user_id": str(r.owner_user_id), "owner_email": self.owner_email,
            "owner_access_key": r.owner_access_key, "domain_name": r.domain_name,
            "project": {"id": str(r.project_id), "name": self.project_name},
            "resource_group": r.resource_group,
            "model_folder": {"id": str(r.model_folder_id), "name": self.model_folder_name},
            "image": r.image, "architecture": r.architecture, "runtime_variant": r.runtime_variant,
            "cluster_mode": r.cluster_mode, "cluster_size": r.cluster_size, "tag": r.tag,
            "desired_replicas": r.desired_replicas, "active_route_count": self.active_route_count,
            "healthy_route_count": self.healthy_route_count, "open_to_public": r.open_to_public, "url": r.url,
            "generation": r.generation, "retries": r.retries, "next_retry_at": iso(r.next_retry_at),
            "created_at": iso(r.created_at), "modified_at": iso(r.modified_at),
            "destroyed_at": iso(r.destroyed_at), "allowed_actions": list(self.allowed_actions),
        }

    def detail_json(self) -> JSONObject:
        r = self.row
        return self.as_json() | {
            "routes": [x.as_json() for x in self.routes], "stats": self.stats.as_json(),
            "error_count": self.error_count, "config": self.config_json(),
            "startup_command": r.startup_command, "bootstrap_script": r.bootstrap_script,
            "callback_url": r.callback_url,
        }


@dataclass(frozen=True)
class ScaleResult:
    current_route_count: int
    target_count: int


@dataclass(frozen=True)
class TokenInfo:
    id: uuid.UUID
    token: str
    created_at: datetime | None
    expires_at: datetime
    revoked_at: datetime | None
    status: str  # valid | expired | revoked

    @classmethod
    def of(cls, t: ServiceToken, now: datetime) -> TokenInfo:
        status = "revoked" if t.revoked_at else ("expired" if t.expires_at <= now else "valid")
        return cls(id=t.id, token=t.token, created_at=t.created_at, expires_at=t.expires_at,
                   revoked_at=t.revoked_at, status=status)

    def as_json(self) -> JSONObject:
        return {"id": str(self.id), "token": self.token, "created_at": iso(self.created_at),
                "expires_at": iso(self.expires_at), "revoked_at": iso(self.revoked_at), "status": self.status}


@dataclass(frozen=True)
class RuleInfo:
    id: uuid.UUID
    metric_source: str
    metric_name: str
    comparator: str
    threshold: str
    step_size: int
    cooldown_seconds: int
    min_replicas: int | None
    max_replicas: int | None
    last_triggered_at: datetime | None
    created_at: datetime | None

    @classmethod
    def of(cls, r: AutoScalingRule) -> RuleInfo:
        return cls(id=r.id, metric_source=r.metric_source, metric_name=r.metric_name, comparator=r.comparator,
                   threshold=r.threshold, step_size=r.step_size, cooldown_seconds=r.cooldown_seconds,
                   min_replicas=r.min_replicas, max_replicas=r.max_replicas,
                   last_triggered_at=r.last_triggered_at, created_at=r.created_at)

    def as_json(self) -> JSONObject:
        return {"id": str(self.id), "metric_source": self.metric_source, "metric_name": self.metric_name,
                "comparator": self.comparator, "threshold": self.threshold, "step_size": self.step_size,
                "cooldown_seconds": self.cooldown_seconds, "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas, "last_triggered_at": iso(self.last_triggered_at),
                "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class ErrorInfo:
    id: uuid.UUID
    route_id: uuid.UUID | None
    session_id: uuid.UUID | None
    message: str
    log_tail: str
    created_at: datetime | None

    @classmethod
    def of(cls, e: ServiceError) -> ErrorInfo:
        return cls(id=e.id, route_id=e.route_id, session_id=e.session_id, message=e.message,
                   log_tail=e.log_tail, created_at=e.created_at)


@dataclass(frozen=True)
class ServiceErrors:
    errors: list[ErrorInfo]
    retries: int

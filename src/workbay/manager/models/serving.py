"""Model-serving tables (docs/serving.md): a model service (table ``endpoints``, Backend.AI's
"endpoint") owns replicas (``routes``, Backend.AI's "routing"), each an inference session; tokens
for non-public services, autoscaling rules, and the failures of its replicas."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Encrypted, UTCDateTime, new_uuid, utcnow


class ModelService(Base):
    """A model service: its desired replica count and everything a replica is started with.
    ``generation`` grows with every edit of the replica configuration; routes of an older
    generation are rolled over one at a time."""

    __tablename__ = "endpoints"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64), index=True)  # unique among services not DESTROYED
    status: Mapped[str] = mapped_column(String(24), default="PROVISIONING", index=True)  # ServiceStatus
    status_info: Mapped[str | None] = mapped_column(String(512), nullable=True)
    owner_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.uuid"), index=True)
    owner_access_key: Mapped[str] = mapped_column(ForeignKey("keypairs.access_key"), index=True)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.uuid"))
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    domain_name: Mapped[str] = mapped_column(ForeignKey("domains.name"))
    resource_group: Mapped[str] = mapped_column(ForeignKey("resource_groups.name"))
    # The model
    model_folder_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    model_mount_destination: Mapped[str] = mapped_column(String(256), default="/models")
    model_definition_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    extra_mounts: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{folder_id, mount_destination}]
    runtime_variant: Mapped[str] = mapped_column(String(32), default="custom")  # RuntimeVariant
    # What each replica runs with
    image: Mapped[str] = mapped_column(String(512))
    architecture: Mapped[str] = mapped_column(String(32), default="x86_64")
    resource_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # per replica (strings)
    resource_opts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cluster_mode: Mapped[str] = mapped_column(String(16), default="single-node")
    cluster_size: Mapped[int] = mapped_column(Integer, default=1)
    environ: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    startup_command: Mapped[str | None] = mapped_column(Text, nullable=True)  # the `command` variant's override
    bootstrap_script: Mapped[str | None] = mapped_column(Text, nullable=True)
    tag: Mapped[str | None] = mapped_column(String(256), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    # Replicas and traffic
    desired_replicas: Mapped[int] = mapped_column(Integer, default=1)
    open_to_public: Mapped[bool] = mapped_column(Boolean, default=False)
    url: Mapped[str] = mapped_column(String(1024), default="")  # the stable endpoint URL
    # Failures: consecutive replica failures since the last success or "clear errors and retry";
    # no replica is started before next_retry_at (exponential backoff).
    retries: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Scale to zero: the app-proxy holds requests for a service with no replica; the reconciler
    # sees them and starts one (woken_at: when it did, for the cooldown that follows).
    woken_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    live_stat: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the proxy's last figures
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Route(Base):
    """One replica of a service: an inference session, its health and its share of the traffic."""

    __tablename__ = "routes"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(24), default="PROVISIONING", index=True)  # RouteStatus
    status_info: Mapped[str | None] = mapped_column(String(512), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    traffic_ratio: Mapped[float] = mapped_column(default=1.0)
    # Where the app-proxy reaches the replica's model port (behind the session's app gate).
    target_host: Mapped[str | None] = mapped_column(String(256), nullable=True)
    target_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    health_failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed checks
    last_health_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    healthy_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ServiceToken(Base):
    """A token for a non-public service (a JWT the app-proxy verifies, ``appproxy.tokens``).
    Kept (encrypted) so its owner can copy it again; revoked tokens stay listed as revoked."""

    __tablename__ = "endpoint_tokens"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)  # the JWT's jti
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(Encrypted("endpoint-token"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.uuid"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AutoScalingRule(Base):
    __tablename__ = "endpoint_auto_scaling_rules"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    metric_source: Mapped[str] = mapped_column(String(32))  # kernel | inference-framework | endpoint
    metric_name: Mapped[str] = mapped_column(String(256))
    comparator: Mapped[str] = mapped_column(String(4))  # lt | le | gt | ge
    threshold: Mapped[str] = mapped_column(String(64))  # a Decimal as text
    step_size: Mapped[int] = mapped_column(Integer)  # > 0 scales up, < 0 scales down
    cooldown_seconds: Mapped[int] = mapped_column(Integer, default=300)
    min_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceError(Base):
    """A replica that failed: why, and the tail of its container log."""

    __tablename__ = "endpoint_errors"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    route_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Compute tables: agents, images, sessions and their kernels, presets, resource-group access."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, new_uuid, utcnow


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="ALIVE", index=True)  # ALIVE | LOST | TERMINATED
    status_info: Mapped[str | None] = mapped_column(String(256), nullable=True)
    schedulable: Mapped[bool] = mapped_column(Boolean, default=True)
    addr: Mapped[str] = mapped_column(String(256))
    region: Mapped[str] = mapped_column(String(64), default="local")
    resource_group: Mapped[str] = mapped_column(ForeignKey("resource_groups.name"), index=True)
    architecture: Mapped[str] = mapped_column(String(32), default="x86_64")
    available_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # capacity
    occupied_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    accelerators: Mapped[list[Any]] = mapped_column(JSON, default=list)
    version: Mapped[str] = mapped_column(String(32), default="")
    first_contact: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    live_stat: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("name", "architecture"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(512))  # full reference: registry/namespace/name:tag
    image_registry: Mapped[str] = mapped_column("registry", String(256), default="localhost")
    tag: Mapped[str] = mapped_column(String(128), default="latest")
    architecture: Mapped[str] = mapped_column(String(32), default="x86_64")
    digest: Mapped[str] = mapped_column(String(128), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    min_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    service_ports: Mapped[list[Any]] = mapped_column(JSON, default=list)
    installed_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ComputeSession(Base):
    __tablename__ = "sessions"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64), index=True)
    session_type: Mapped[str] = mapped_column(String(16), default="interactive")
    status: Mapped[str] = mapped_column(String(24), default="PENDING", index=True)
    status_info: Mapped[str | None] = mapped_column(String(256), nullable=True)
    status_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status_history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    access_key: Mapped[str] = mapped_column(ForeignKey("keypairs.access_key"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.uuid"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    domain_name: Mapped[str] = mapped_column(ForeignKey("domains.name"))
    resource_group: Mapped[str] = mapped_column(ForeignKey("resource_groups.name"), index=True)
    image: Mapped[str] = mapped_column(String(512))
    architecture: Mapped[str] = mapped_column(String(32), default="x86_64")
    cluster_mode: Mapped[str] = mapped_column(String(16), default="single-node")
    cluster_size: Mapped[int] = mapped_column(Integer, default=1)
    requested_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # per kernel
    occupying_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # whole session
    resource_opts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    environ: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mounts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    preopen_ports: Mapped[list[int]] = mapped_column(JSON, default=list)
    designated_agents: Mapped[list[str]] = mapped_column(JSON, default=list)
    startup_command: Mapped[str | None] = mapped_column(Text, nullable=True)
    bootstrap_script: Mapped[str | None] = mapped_column(Text, nullable=True)
    # An inference session that is a model service's replica: what the runner starts
    # (docs/serving.md, "The replica"); None for every other session.
    model_service: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    batch_timeout: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tag: Mapped[str | None] = mapped_column(String(256), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    scheduling_attempts: Mapped[int] = mapped_column(Integer, default=0)
    skip_count: Mapped[int] = mapped_column(Integer, default=0)
    last_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str] = mapped_column(String(16), default="UNDEFINED")  # SUCCESS | FAILURE
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    num_queries: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SessionDependency(Base):
    __tablename__ = "session_dependencies"
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    depends_on: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)


class Kernel(Base):
    __tablename__ = "kernels"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    cluster_role: Mapped[str] = mapped_column(String(16), default="main")
    cluster_idx: Mapped[int] = mapped_column(Integer, default=1)
    cluster_hostname: Mapped[str] = mapped_column(String(64), default="main1")
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"), nullable=True, index=True)
    agent_addr: Mapped[str | None] = mapped_column(String(256), nullable=True)
    container_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(24), default="PENDING", index=True)
    status_info: Mapped[str | None] = mapped_column(String(256), nullable=True)
    occupied_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    allocation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # device/core ids from the agent
    service_ports: Mapped[list[Any]] = mapped_column(JSON, default=list)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_stat: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ResourcePreset(Base):
    __tablename__ = "resource_presets"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    resource_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    shared_memory: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resource_group: Mapped[str | None] = mapped_column(ForeignKey("resource_groups.name", ondelete="CASCADE"),
                                                       nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResourceGroupForDomain(Base):
    __tablename__ = "resource_group_domains"
    resource_group: Mapped[str] = mapped_column(ForeignKey("resource_groups.name", ondelete="CASCADE"),
                                                primary_key=True)
    domain_name: Mapped[str] = mapped_column(ForeignKey("domains.name", ondelete="CASCADE"), primary_key=True)


class ResourceGroupForProject(Base):
    __tablename__ = "resource_group_projects"
    resource_group: Mapped[str] = mapped_column(ForeignKey("resource_groups.name", ondelete="CASCADE"),
                                                primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)

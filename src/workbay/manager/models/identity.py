"""Identity tables: domains, projects, users, keypairs, resource policies, system settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Encrypted, UTCDateTime, new_uuid, utcnow


class KeypairResourcePolicy(Base):
    __tablename__ = "keypair_resource_policies"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    total_resource_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    max_containers_per_session: Mapped[int] = mapped_column(Integer, default=1)
    max_session_lifetime: Mapped[int] = mapped_column(Integer, default=0)
    max_concurrent_sessions: Mapped[int] = mapped_column(Integer, default=30)
    max_concurrent_sftp_sessions: Mapped[int] = mapped_column(Integer, default=1)
    max_pending_session_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    idle_timeout: Mapped[int] = mapped_column(Integer, default=3600)
    allowed_folder_hosts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserResourcePolicy(Base):
    __tablename__ = "user_resource_policies"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    max_folder_count: Mapped[int] = mapped_column(Integer, default=0)
    max_quota_scope_size: Mapped[int] = mapped_column(BigInteger, default=-1)
    max_session_count_per_model_session: Mapped[int] = mapped_column(Integer, default=10)
    max_customized_image_count: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectResourcePolicy(Base):
    __tablename__ = "project_resource_policies"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    max_folder_count: Mapped[int] = mapped_column(Integer, default=0)
    max_quota_scope_size: Mapped[int] = mapped_column(BigInteger, default=-1)
    max_network_count: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Domain(Base):
    __tablename__ = "domains"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    total_resource_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    allowed_folder_hosts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    allowed_docker_registries: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_name", "name"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    domain_name: Mapped[str] = mapped_column(ForeignKey("domains.name"), index=True)
    type: Mapped[str] = mapped_column(String(32), default="general")  # general | model-store
    total_resource_slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    allowed_folder_hosts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resource_policy: Mapped[str] = mapped_column(ForeignKey("project_resource_policies.name"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProjectMember(Base):
    __tablename__ = "project_members"
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.uuid", ondelete="CASCADE"), primary_key=True)


class User(Base):
    __tablename__ = "users"
    uuid: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    email: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password: Mapped[str] = mapped_column(String(128))  # bcrypt hash
    need_password_change: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    full_name: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default="active", index=True)
    status_info: Mapped[str | None] = mapped_column(String(256), nullable=True)
    domain_name: Mapped[str] = mapped_column(ForeignKey("domains.name"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="user")
    resource_policy: Mapped[str] = mapped_column(ForeignKey("user_resource_policies.name"))
    allowed_client_ip: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    totp_key: Mapped[str | None] = mapped_column(Encrypted("users.totp_key", 255), nullable=True)
    totp_activated: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sudo_session_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    container_uid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    container_gid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Keypair(Base):
    __tablename__ = "keypairs"
    access_key: Mapped[str] = mapped_column(String(20), primary_key=True)
    secret_key: Mapped[str] = mapped_column(Encrypted("keypairs.secret_key", 255))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.uuid", ondelete="CASCADE"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    rate_limit: Mapped[int] = mapped_column(Integer, default=10000)
    num_queries: Mapped[int] = mapped_column(BigInteger, default=0)
    resource_policy: Mapped[str] = mapped_column(ForeignKey("keypair_resource_policies.name"))
    ssh_public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    ssh_private_key: Mapped[str | None] = mapped_column(Encrypted("keypairs.ssh_private_key"), nullable=True)
    dotfiles: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    bootstrap_script: Mapped[str] = mapped_column(Text, default="")
    has_ever_run_session: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ResourceGroup(Base):
    __tablename__ = "resource_groups"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    scheduler: Mapped[str] = mapped_column(String(16), default="fifo")
    scheduler_opts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    wsproxy_addr: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SystemSetting(Base):
    __tablename__ = "system_settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

"""ORM rows -> the typed objects services return (``*Info``, ``Page``), and their JSON (``as_json``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from workbay.manager.models import (
    Domain,
    Keypair,
    KeypairResourcePolicy,
    Project,
    ProjectResourcePolicy,
    User,
    UserResourcePolicy,
)


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and how many there are in all."""

    items: list[T]
    total_count: int


@dataclass(frozen=True)
class ProjectName:
    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class KeypairInfo:
    access_key: str
    secret_key: str | None  # None where the caller may not see it
    user_id: uuid.UUID
    user_email: str
    is_active: bool
    is_admin: bool
    is_default: bool
    rate_limit: int
    resource_policy: str
    num_queries: int
    has_ever_run_session: bool
    ssh_public_key: str | None
    created_at: datetime | None
    last_used: datetime | None

    @classmethod
    def of(cls, k: Keypair, user_email: str, show_secret: bool) -> KeypairInfo:
        return cls(access_key=k.access_key, secret_key=k.secret_key if show_secret else None, user_id=k.user_id,
                   user_email=user_email, is_active=k.is_active, is_admin=k.is_admin, is_default=k.is_default,
                   rate_limit=k.rate_limit, resource_policy=k.resource_policy, num_queries=k.num_queries,
                   has_ever_run_session=k.has_ever_run_session, ssh_public_key=k.ssh_public_key,
                   created_at=k.created_at, last_used=k.last_used)

    def as_json(self) -> dict[str, Any]:
        return {
            "access_key": self.access_key, "secret_key": self.secret_key, "user_id": str(self.user_id),
            "user_email": self.user_email, "is_active": self.is_active, "is_admin": self.is_admin,
            "is_default": self.is_default, "rate_limit": self.rate_limit, "resource_policy": self.resource_policy,
            "num_queries": self.num_queries, "has_ever_run_session": self.has_ever_run_session,
            "ssh_public_key": self.ssh_public_key, "created_at": iso(self.created_at),
            "last_used": iso(self.last_used),
        }


@dataclass(frozen=True)
class UserInfo:
    uuid: uuid.UUID
    email: str
    username: str
    full_name: str
    description: str
    status: str
    status_info: str | None
    domain_name: str
    role: str
    need_password_change: bool
    sudo_session_enabled: bool
    totp_activated: bool
    resource_policy: str
    container_uid: int | None
    container_gid: int | None
    allowed_client_ip: list[str] | None
    projects: list[ProjectName]
    created_at: datetime | None
    modified_at: datetime | None
    keypair: KeypairInfo | None = None  # a new user's default keypair (with its secret), on creation only

    @classmethod
    def of(cls, u: User, projects: list[Project] | None = None, keypair: KeypairInfo | None = None) -> UserInfo:
        return cls(uuid=u.uuid, email=u.email, username=u.username, full_name=u.full_name,
                   description=u.description, status=u.status, status_info=u.status_info,
                   domain_name=u.domain_name, role=u.role, need_password_change=u.need_password_change,
                   sudo_session_enabled=u.sudo_session_enabled, totp_activated=u.totp_activated,
                   resource_policy=u.resource_policy, container_uid=u.container_uid,
                   container_gid=u.container_gid, allowed_client_ip=u.allowed_client_ip,
                   projects=[ProjectName(id=p.id, name=p.name) for p in (projects or [])],
                   created_at=u.created_at, modified_at=u.modified_at, keypair=keypair)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uuid": str(self.uuid), "email": self.email, "username": self.username, "full_name": self.full_name,
            "description": self.description, "status": self.status, "status_info": self.status_info,
            "domain_name": self.domain_name, "role": self.role, "need_password_change": self.need_password_change,
            "sudo_session_enabled": self.sudo_session_enabled, "totp_activated": self.totp_activated,
            "resource_policy": self.resource_policy, "container_uid": self.container_uid,
            "container_gid": self.container_gid, "allowed_client_ip": self.allowed_client_ip,
            "projects": [{"id": str(p.id), "name": p.name} for p in self.projects],
            "created_at": iso(self.created_at), "modified_at": iso(self.modified_at),
        }
        if self.keypair is not None:
            out["keypair"] = self.keypair.as_json()
        return out


def user_out(u: User, projects: list[Project] | None = None) -> dict[str, Any]:
    return UserInfo.of(u, projects).as_json()


def keypair_out(k: Keypair, user_email: str, show_secret: bool) -> dict[str, Any]:
    return KeypairInfo.of(k, user_email, show_secret).as_json()


@dataclass(frozen=True)
class DomainInfo:
    name: str
    description: str
    is_active: bool
    total_resource_slots: dict[str, Any]
    allowed_folder_hosts: dict[str, Any]  # storage hosts and the permissions on each
    allowed_docker_registries: list[str]
    created_at: datetime | None
    modified_at: datetime | None

    @classmethod
    def of(cls, d: Domain) -> DomainInfo:
        return cls(name=d.name, description=d.description, is_active=d.is_active,
                   total_resource_slots=d.total_resource_slots, allowed_folder_hosts=d.allowed_folder_hosts,
                   allowed_docker_registries=d.allowed_docker_registries, created_at=d.created_at,
                   modified_at=d.modified_at)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "is_active": self.is_active,
            "total_resource_slots": self.total_resource_slots, "allowed_folder_hosts": self.allowed_folder_hosts,
            "allowed_docker_registries": self.allowed_docker_registries,
            "created_at": iso(self.created_at), "modified_at": iso(self.modified_at),
        }


@dataclass(frozen=True)
class ProjectInfo:
    id: uuid.UUID
    name: str
    description: str
    is_active: bool
    domain_name: str
    type: str
    total_resource_slots: dict[str, Any]
    allowed_folder_hosts: dict[str, Any]
    resource_policy: str
    created_at: datetime | None
    modified_at: datetime | None
    member_count: int | None = None

    @classmethod
    def of(cls, p: Project, member_count: int | None = None) -> ProjectInfo:
        return cls(id=p.id, name=p.name, description=p.description, is_active=p.is_active,
                   domain_name=p.domain_name, type=p.type, total_resource_slots=p.total_resource_slots,
                   allowed_folder_hosts=p.allowed_folder_hosts, resource_policy=p.resource_policy,
                   created_at=p.created_at, modified_at=p.modified_at, member_count=member_count)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id), "name": self.name, "description": self.description, "is_active": self.is_active,
            "domain_name": self.domain_name, "type": self.type, "total_resource_slots": self.total_resource_slots,
            "allowed_folder_hosts": self.allowed_folder_hosts, "resource_policy": self.resource_policy,
            "created_at": iso(self.created_at), "modified_at": iso(self.modified_at),
        }
        if self.member_count is not None:
            out["member_count"] = self.member_count
        return out


@dataclass(frozen=True)
class PolicyInfo:
    """A resource policy: its name and the limits of its kind (keypair, user or project), by column."""

    name: str
    limits: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def of(cls, p: KeypairResourcePolicy | UserResourcePolicy | ProjectResourcePolicy) -> PolicyInfo:
        limits = {c.name: getattr(p, c.name) for c in p.__table__.columns if c.name not in ("name", "created_at")}
        return cls(name=p.name, limits=limits, created_at=p.created_at)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.limits, "created_at": iso(self.created_at)}

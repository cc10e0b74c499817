"""ORM rows -> the JSON objects the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


def user_out(u: User, projects: list[Project] | None = None) -> dict[str, Any]:
    return {
        "uuid": str(u.uuid), "email": u.email, "username": u.username, "full_name": u.full_name,
        "description": u.description, "status": u.status, "status_info": u.status_info,
        "domain_name": u.domain_name, "role": u.role, "need_password_change": u.need_password_change,
        "sudo_session_enabled": u.sudo_session_enabled, "totp_activated": u.totp_activated,
        "resource_policy": u.resource_policy, "container_uid": u.container_uid,
        "container_gid": u.container_gid, "allowed_client_ip": u.allowed_client_ip,
        "projects": [{"id": str(p.id), "name": p.name} for p in (projects or [])],
        "created_at": iso(u.created_at), "modified_at": iso(u.modified_at),
    }


def keypair_out(k: Keypair, user_email: str, show_secret: bool) -> dict[str, Any]:
    return {
        "access_key": k.access_key, "secret_key": k.secret_key if show_secret else None,
        "user_id": str(k.user_id), "user_email": user_email, "is_active": k.is_active,
        "is_admin": k.is_admin, "is_default": k.is_default, "rate_limit": k.rate_limit,
        "resource_policy": k.resource_policy, "num_queries": k.num_queries,
        "has_ever_run_session": k.has_ever_run_session, "ssh_public_key": k.ssh_public_key,
        "created_at": iso(k.created_at), "last_used": iso(k.last_used),
    }


def domain_out(d: Domain) -> dict[str, Any]:
    return {
        "name": d.name, "description": d.description, "is_active": d.is_active,
        "total_resource_slots": d.total_resource_slots,
        "allowed_vfolder_hosts": d.allowed_vfolder_hosts,
        "allowed_docker_registries": d.allowed_docker_registries,
        "created_at": iso(d.created_at), "modified_at": iso(d.modified_at),
    }


def project_out(p: Project, member_count: int | None = None) -> dict[str, Any]:
    out = {
        "id": str(p.id), "name": p.name, "description": p.description, "is_active": p.is_active,
        "domain_name": p.domain_name, "type": p.type, "total_resource_slots": p.total_resource_slots,
        "allowed_vfolder_hosts": p.allowed_vfolder_hosts, "resource_policy": p.resource_policy,
        "created_at": iso(p.created_at), "modified_at": iso(p.modified_at),
    }
    if member_count is not None:
        out["member_count"] = member_count
    return out


POLICY_MODELS = {
    "keypair": KeypairResourcePolicy,
    "user": UserResourcePolicy,
    "project": ProjectResourcePolicy,
}


def policy_out(p: Any) -> dict[str, Any]:
    out = {c.name: getattr(p, c.name) for c in p.__table__.columns}
    out["created_at"] = iso(p.created_at)
    return out

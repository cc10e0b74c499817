"""Who may do what: pure rules, no I/O.  Services call these before touching data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from workbay.common.domain import DEAD_STATUSES, SessionStatus
from workbay.common.errors import InsufficientPrivilege, ObjectNotFound

ROLES = ("superadmin", "admin", "user", "monitor")


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    email: str
    role: str
    domain_name: str
    access_key: str

    @property
    def is_superadmin(self) -> bool:
        return self.role == "superadmin"

    @property
    def is_admin(self) -> bool:
        return self.role in ("superadmin", "admin")


def require_superadmin(actor: Actor) -> None:
    if not actor.is_superadmin:
        raise InsufficientPrivilege("Only a superadmin may do this.")


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise InsufficientPrivilege("Only an administrator may do this.")


def require_reader(actor: Actor) -> None:
    """Admins and monitors may read administrative lists."""
    if actor.role not in ("superadmin", "admin", "monitor"):
        raise InsufficientPrivilege("Only administrators and monitors may read this.")


def domain_scope(actor: Actor) -> str | None:
    """The domain an admin or monitor is confined to; None means every domain."""
    return None if actor.is_superadmin else actor.domain_name


def check_domain_visible(actor: Actor, domain_name: str, object_name: str) -> None:
    """Objects of another domain do not exist for domain-scoped actors."""
    scope = domain_scope(actor)
    if scope is not None and scope != domain_name:
        raise ObjectNotFound(object_name=object_name)


def check_may_manage_domain(actor: Actor, domain_name: str, object_name: str) -> None:
    require_admin(actor)
    check_domain_visible(actor, domain_name, object_name)


def check_role_grant(actor: Actor, role: str) -> None:
    """Only a superadmin can create or promote superadmins; admins grant up to admin."""
    if role not in ROLES:
        raise ValueError(role)
    if role == "superadmin" and not actor.is_superadmin:
        raise InsufficientPrivilege("Only a superadmin may grant the superadmin role.")


def check_may_modify_user(actor: Actor, target_role: str, target_domain: str) -> None:
    check_may_manage_domain(actor, target_domain, "user")
    if target_role == "superadmin" and not actor.is_superadmin:
        raise InsufficientPrivilege("Only a superadmin may modify a superadmin.")


def may_see_secret_key(actor: Actor, owner_id: uuid.UUID, owner_role: str, owner_domain: str) -> bool:
    """A keypair's secret key is shown to its owner and to whoever may modify the owner (a
    superadmin; an admin for non-superadmins of their domain) — never to monitors, and never a
    superadmin's to a domain admin (that would be a way up to superadmin)."""
    if owner_id == actor.user_id:
        return True
    try:
        check_may_modify_user(actor, owner_role, owner_domain)
    except (InsufficientPrivilege, ObjectNotFound):
        return False
    return True


# -- what a user may do with a session (the WebUI shows exactly these; docs/api.md "For the WebUI")
class SessionAction(StrEnum):
    LOGS = "logs"
    TERMINATE = "terminate"
    RESTART = "restart"
    RENAME = "rename"
    OPEN_APP = "open_app"
    EXEC = "exec"
    DOWNLOAD = "download"


def may_see_session(actor: Actor, owner_id: uuid.UUID, access_key: str, domain_name: str) -> bool:
    """Owners, superadmins, and admins and monitors of the session's domain see a session."""
    if access_key == actor.access_key or owner_id == actor.user_id or actor.is_superadmin:
        return True
    return actor.role in ("admin", "monitor") and domain_name == actor.domain_name


def may_change_session(actor: Actor, owner_id: uuid.UUID, access_key: str, domain_name: str) -> bool:
    """Who sees a session may change it, except a monitor another user's."""
    if not may_see_session(actor, owner_id, access_key, domain_name):
        return False
    return not (actor.role == "monitor" and owner_id != actor.user_id)


def session_actions(actor: Actor, owner_id: uuid.UUID, access_key: str, domain_name: str,
                    status: str) -> tuple[str, ...]:
    """What ``actor`` may do with a session in ``status`` now, sorted; the routes enforce the same rules."""
    if not may_see_session(actor, owner_id, access_key, domain_name):
        return ()
    out: set[str] = {SessionAction.LOGS}
    if may_change_session(actor, owner_id, access_key, domain_name):
        if status not in DEAD_STATUSES:
            out.add(SessionAction.TERMINATE)
        if status == SessionStatus.RUNNING:
            out.update((SessionAction.RESTART, SessionAction.RENAME, SessionAction.OPEN_APP, SessionAction.EXEC,
                        SessionAction.DOWNLOAD))
    return tuple(sorted(out))

"""Storage folder rules: pure functions, no I/O (names, permissions, quotas, mount targets)."""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass

from workbay.common.errors import InvalidAPIParameters
from workbay.common.text import NAME_REFUSED, first_refused

PERMISSIONS = ("ro", "rw", "wd")
RANK = {None: 0, "ro": 1, "rw": 2, "wd": 3}
USAGE_MODES = ("general", "model", "data")
INVITEE_PERMISSIONS = ("ro", "rw")
RESERVED_NAMES = {".", "..", "_"}
MAX_NAME = 64
HOME = "/home/work"
# Where automount folders go when their home is not /home/work/<name>.
AUTOMOUNT_TARGETS = {".linuxbrew": "/home/linuxbrew/.linuxbrew"}
# Container paths a folder may never cover.
FORBIDDEN_TARGETS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/opt/workbay", "/proc",
                     "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var")


def check_folder_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise InvalidAPIParameters(f"A folder name must be 1–{MAX_NAME} characters long.",
                                   data={"name": "length"})
    if name.strip() != name or name in RESERVED_NAMES or any(c in name for c in "/\\\x00") \
            or any(ord(c) < 32 for c in name):
        raise InvalidAPIParameters("A folder name cannot contain '/', '\\', control characters or "
                                   "surrounding spaces, and cannot be '.', '..' or '_'.",
                                   data={"name": "invalid"})
    # Bidi controls, zero-width and other invisible characters would make a name show as another.
    hidden = first_refused(name, NAME_REFUSED)
    if hidden:
        raise InvalidAPIParameters(f"A folder name cannot contain invisible or control characters ({hidden}).",
                                   data={"name": "invalid"})
    return name


def is_automount(name: str) -> bool:
    return name.startswith(".")


def quota_scope_id(ownership_type: str, owner_id: uuid.UUID) -> str:
    return f"{'user' if ownership_type == 'user' else 'project'}:{owner_id}"


def stronger(a: str | None, b: str | None) -> str | None:
    return a if RANK[a] >= RANK[b] else b


@dataclass(frozen=True)
class Viewer:
    """What the permission rules need to know about the caller and one folder."""

    user_id: uuid.UUID
    role: str
    domain_name: str
    project_ids: frozenset[uuid.UUID]


def effective_permission(viewer: Viewer, *, ownership_type: str, owner_user: uuid.UUID | None,
                         owner_project: uuid.UUID | None, folder_domain: str, folder_permission: str,
                         share: str | None) -> str | None:
    """The caller's permission on a folder (None = no access).

    Owners and superadmins get ``wd``; domain admins get ``wd`` on project folders of their
    domain; project members get the folder's permission; invitees get their share (an admin's
    share of a project folder overrides the member permission)."""
    if viewer.role == "superadmin":
        return "wd"
    if ownership_type == "user":
        if owner_user == viewer.user_id:
            return "wd"
        return share
    if viewer.role == "admin" and viewer.domain_name == folder_domain:
        return "wd"
    member = folder_permission if owner_project in viewer.project_ids else None
    return share if share is not None else member


def can_read(perm: str | None) -> bool:
    return RANK[perm] >= RANK["ro"]


def can_write(perm: str | None) -> bool:
    return RANK[perm] >= RANK["rw"]


def can_delete(perm: str | None) -> bool:
    return perm == "wd"


def mount_permission(perm: str | None) -> str:
    return "rw" if can_write(perm) else "ro"


def effective_limit(explicit: int | None, policy_max: int | None) -> int | None:
    """An admin's explicit quota wins; otherwise the policy's max size (≤ 0 = unlimited)."""
    if explicit is not None:
        return explicit
    if policy_max is None or policy_max <= 0:
        return None
    return policy_max


def allowed_host_permissions(*sources: dict[str, list[str]] | None) -> dict[str, set[str]]:
    """The union of ``allowed_vfolder_hosts`` of the domain, the projects and the keypair policy."""
    out: dict[str, set[str]] = {}
    for src in sources:
        for host, perms in (src or {}).items():
            out.setdefault(host, set()).update(perms or [])
    return out


def mount_target(name: str, alias: str | None) -> str:
    """Where a folder mounts: /home/work/NAME, or an alias (absolute, or relative to /home/work)."""
    if alias:
        if "\x00" in alias:
            raise InvalidAPIParameters("A mount path cannot contain NUL.")
        raw = alias if alias.startswith("/") else posixpath.join(HOME, alias)
        if ".." in raw.split("/"):
            raise InvalidAPIParameters(f"Mount path {alias!r} must not contain '..'.")
        target = posixpath.normpath(raw)
    else:
        target = AUTOMOUNT_TARGETS.get(name, posixpath.join(HOME, name))
    if target in ("/", HOME) or any(target == p or target.startswith(p + "/") for p in FORBIDDEN_TARGETS):
        raise InvalidAPIParameters(f"Cannot mount a folder at {target}.", data={"mount": target})
    return target

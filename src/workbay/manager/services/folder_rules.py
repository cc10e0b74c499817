"""Storage folder rules: pure functions, no I/O (names, permissions, quotas, mount targets)."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from workbay.common.domain import FOLDER_TRASH_STATUSES, FolderUsageMode
from workbay.common.errors import BackendError, InvalidAPIParameters
from workbay.common.text import NAME_REFUSED, first_refused

PERMISSIONS = ("ro", "rw", "wd")
RANK: dict[str | None, int] = {None: 0, "ro": 1, "rw": 2, "wd": 3}
USAGE_MODES: tuple[str, ...] = tuple(FolderUsageMode)
READY = "ready"
CLONING = "cloning"  # a clone's row while its copy runs
IN_TRASH = "delete-pending"  # the one trash status a folder can be restored or purged from
assert IN_TRASH in FOLDER_TRASH_STATUSES
INVITEE_PERMISSIONS = ("ro", "rw")
RESERVED_NAMES = {".", "..", "_"}
MAX_NAME = 64
HOME = "/home/work"
# Where automount folders go when their home is not /home/work/<name>.
AUTOMOUNT_TARGETS = {".linuxbrew": "/home/linuxbrew/.linuxbrew"}
# Container paths a folder may never cover.
FORBIDDEN_TARGETS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/opt/workbay", "/proc",
                     "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var")


E = TypeVar("E", bound=BackendError)


def field_problem(error: type[E], msg: str, field: str, data: object = None) -> E:
    """An error about one request field: ``field_errors`` ({field: msg}, Workbay's field names;
    manager/api renames them to the wire's) beside Backend.AI's ``data``."""
    return error(msg, data=data, extra={"field_errors": {field: msg}})


def check_folder_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise field_problem(InvalidAPIParameters, f"A folder name must be 1–{MAX_NAME} characters long.",
                            "name", {"name": "length"})
    if name.strip() != name or name in RESERVED_NAMES or any(c in name for c in "/\\\x00") \
            or any(ord(c) < 32 for c in name):
        raise field_problem(InvalidAPIParameters, "A folder name cannot contain '/', '\\', control characters "
                            "or surrounding spaces, and cannot be '.', '..' or '_'.", "name", {"name": "invalid"})
    # Bidi controls, zero-width and other invisible characters would make a name show as another.
    hidden = first_refused(name, NAME_REFUSED)
    if hidden:
        raise field_problem(InvalidAPIParameters,
                            f"A folder name cannot contain invisible or control characters ({hidden}).",
                            "name", {"name": "invalid"})
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
    """The union of ``allowed_folder_hosts`` of the domain, the projects and the keypair policy."""
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


class FolderAction(StrEnum):
    """What a user may do with a folder (``allowed_actions``; docs/api.md, "For the WebUI")."""

    RENAME = "rename"
    UPDATE_OPTIONS = "update_options"
    DELETE = "delete"  # to the trash
    RESTORE = "restore"
    PURGE = "purge"
    INVITE = "invite"
    SHARE = "share"  # an admin's share of a project folder
    UNSHARE = "unshare"  # manage the folder's shares
    LEAVE = "leave"
    CLONE = "clone"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    MKDIR = "mkdir"
    RENAME_FILE = "rename_file"
    MOVE_FILE = "move_file"
    DELETE_FILES = "delete_files"


# The storage-host permissions some actions need beside the folder permission.
HOST_PERMISSION_OF = {FolderAction.DELETE: "delete-vfolder", FolderAction.UPLOAD: "upload-file",
                      FolderAction.DOWNLOAD: "download-file"}


def allowed_actions(*, permission: str | None, shared_with_caller: bool, caller_owns: bool, caller_is_admin: bool,
                    ownership_type: str, status: str, cloneable: bool,
                    host_permissions: Collection[str] | None) -> list[FolderAction]:
    """The actions the services would let this caller take on the folder, sorted by name.

    Mirrors the checks of FolderService and FolderSharing: managing (rename, options, trash,
    restore, purge, shares) needs ``wd`` not obtained through a share; writing files ``rw``;
    reading ``ro``.  ``host_permissions`` are the caller's on the folder's host (None: all, a
    superadmin)."""
    A = FolderAction
    manage = can_delete(permission) and not shared_with_caller
    found: set[FolderAction] = set()
    if status == IN_TRASH:
        if manage:
            found |= {A.RESTORE, A.PURGE}
    elif status == READY and can_read(permission):
        if manage:
            found |= {A.RENAME, A.UPDATE_OPTIONS, A.DELETE, A.UNSHARE}
        if ownership_type == "user" and caller_owns:
            found.add(A.INVITE)
        if ownership_type == "project" and caller_is_admin and can_delete(permission):
            found.add(A.SHARE)
        if shared_with_caller:
            found.add(A.LEAVE)
        if cloneable or can_delete(permission):
            found.add(A.CLONE)
        found.add(A.DOWNLOAD)
        if can_write(permission):
            found |= {A.UPLOAD, A.MKDIR, A.RENAME_FILE, A.MOVE_FILE, A.DELETE_FILES}
    if host_permissions is not None:
        found = {a for a in found if a not in HOST_PERMISSION_OF or HOST_PERMISSION_OF[a] in host_permissions}
    return sorted(found)

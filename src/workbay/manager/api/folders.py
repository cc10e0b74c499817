"""/folders: Backend.AI's virtual-folder API plus Workbay's trash, quota and status additions.

The services speak Workbay's names (project, folder) and return typed objects; this module reads
Backend.AI's wire names (``group``, ``vfolder_id``, …) and writes the wire's objects."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from workbay.common.errors import BackendError, InvalidAPIParameters
from workbay.common.http import request_params
from workbay.manager.services.access import Actor
from workbay.manager.services.folder_admin import HostUsage, QuotaState, ScopeUsage, StorageHosts, VolumeInfo
from workbay.manager.services.folder_sharing import Invitation, Share
from workbay.manager.services.folders import (
    CloneFolder,
    CreatedFolder,
    FileListing,
    FolderView,
    NewFolder,
    TransferTicket,
)
from workbay.manager.services.serialize import iso
from workbay.manager.state import ManagerState

from .deps import actor, state
from .wire import Empty, Number, WireModel, WireRoute, body_schema

router = APIRouter(tags=["folders"], route_class=WireRoute)
NO_CONTENT: dict[int | str, dict[str, Any]] = {204: {"description": "Done; no body."}}
CREATED_EMPTY: dict[int | str, dict[str, Any]] = {201: {"description": "Done; no body."}}


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# -- requests ------------------------------------------------------------------------------------------
class CreateParams(Params):
    name: str
    host: str | None = Field(None, validation_alias=AliasChoices("host", "folder_host"))
    group: str | None = Field(None, validation_alias=AliasChoices("group", "group_id", "project"))
    usage_mode: str = "general"
    permission: str = "rw"
    cloneable: bool = False


class CloneParams(Params):
    target_name: str
    target_host: str | None = None
    usage_mode: str = "general"
    permission: str = "rw"
    cloneable: bool = False


class ListParams(Params):
    all: bool = False
    group_id: str | None = None
    owner_user_email: str | None = None


class GroupParams(Params):
    group_id: str | None = None


class IdParams(Params):
    id: str = Field(validation_alias=AliasChoices("id", "vfolder_id", "vfolderId"))


class RenameParams(Params):
    new_name: str


class OptionsParams(Params):
    cloneable: bool | None = None
    permission: str | None = None


class MkdirParams(Params):
    path: str | list[str]
    parents: bool = True
    exist_ok: bool = False


class FilesParams(Params):
    path: str = ""


class RenameFileParams(Params):
    target_path: str
    new_name: str


class MoveFileParams(Params):
    src: str
    dst: str


class DeleteFilesParams(Params):
    files: list[str] = Field(min_length=1)
    recursive: bool = False


class UploadParams(Params):
    path: str
    size: int = Field(ge=0, le=2**62)
    session: str | None = None


class DownloadParams(Params):
    path: str | None = Field(None, validation_alias=AliasChoices("path", "file"))
    files: list[str] | None = None
    archive: bool = False


class InviteParams(Params):
    perm: str = "rw"
    user_ids: list[str] = Field(validation_alias=AliasChoices("user_ids", "emails", "userIDs"))


class InvitationParams(Params):
    inv_id: str


class ShareParams(Params):
    permission: str = "ro"
    emails: list[str]


class UnshareParams(Params):
    emails: list[str]


class LeaveParams(Params):
    shared_user_uuid: str | None = None


class SharedParams(Params):
    vfolder_id: str | None = None


class UpdateShareParams(Params):
    vfolder: str
    user: str
    perm: str | None = None


class QuotaParams(Params):
    host: str
    quota_scope_id: str


class SetQuotaParams(QuotaParams):
    limit_bytes: int

    @field_validator("limit_bytes")
    @classmethod
    def _range(cls, v: int) -> int:
        if not 0 <= v <= 2**62:
            raise ValueError("must be between 0 and 2^62")
        return v


class SftpParams(Params):
    preferred_port: int | None = Field(None, ge=1, le=65535)


# -- answers ---------------------------------------------------------------------------------------------
class FolderOut(WireModel):
    """A folder in ``GET /folders`` (Backend.AI's item plus Workbay's additions)."""

    id: str
    name: str
    host: str
    quota_scope_id: str
    status: str
    usage_mode: str
    created_at: str | None
    is_owner: bool
    permission: str
    mount_permission: Literal["ro", "rw"]
    user: str | None
    group: str | None
    creator: str
    user_email: str | None
    group_name: str | None
    ownership_type: Literal["user", "group"]
    type: Literal["user", "group"]
    cloneable: bool
    is_automount: bool
    shared: bool
    max_files: int
    max_size: int
    cur_size: int
    last_used: str | None
    status_changed: str | None
    allowed_actions: list[str]


class FolderInfoOut(FolderOut):
    numFiles: int  # noqa: N815 (Backend.AI's name)
    num_files: int
    used_bytes: int
    created: str | None


class CreatedOut(WireModel):
    id: str
    name: str
    quota_scope_id: str
    host: str
    usage_mode: str
    permission: str
    max_size: int
    creator: str
    ownership_type: Literal["user", "group"]
    user: str | None
    group: str | None
    cloneable: bool
    status: str


class ClonedOut(CreatedOut):
    bgtask_id: str | None


class HostsOut(WireModel):
    default: str | None
    allowed: list[str]
    volume_info: dict[str, dict[str, Any]]


class AllHostsOut(WireModel):
    default: str
    allowed: list[str]


class ScopeUsageOut(WireModel):
    used_bytes: int | None
    limit_bytes: int | None


class HostUsageOut(WireModel):
    user: ScopeUsageOut
    project: ScopeUsageOut | None


class StatusOut(WireModel):
    user_count: int
    user_limit: int
    project_count: int
    invited_count: int
    hosts: dict[str, HostUsageOut]


class VolumeOut(WireModel):
    host: str
    backend: str
    capabilities: list[str]
    quota_supported: bool
    usage: dict[str, Any]


class VolumesOut(WireModel):
    volumes: list[VolumeOut]


class QuotaOut(WireModel):
    host: str
    quota_scope_id: str
    supported: bool
    limit_bytes: int | None
    explicit: bool
    default_limit_bytes: int | None
    used_bytes: int | None


class SharedToOut(WireModel):
    uuid: str
    email: str


class ShareOut(WireModel):
    vfolder_id: str
    vfolder_name: str
    status: str
    owner: str
    type: Literal["user", "project"]
    shared_to: SharedToOut
    perm: str


class SharedOut(WireModel):
    shared: list[ShareOut]


class MsgOut(WireModel):
    msg: str


class InvitationOut(WireModel):
    id: str
    inviter: str
    invitee: str
    perm: str
    state: str
    created_at: str | None
    modified_at: str | None
    vfolder_id: str
    vfolder_name: str


class InvitationsOut(WireModel):
    invitations: list[InvitationOut]


class InvitedOut(WireModel):
    invited_ids: list[str]


class SharedEmailsOut(WireModel):
    shared_emails: list[str]


class UnsharedEmailsOut(WireModel):
    unshared_emails: list[str]


class FilesOut(WireModel):
    items: list[dict[str, Any]]
    files: str  # Backend.AI's JSON-encoded listing (what its CLI prints)


class UploadOut(WireModel):
    token: str
    url: str
    session: str


class DownloadOut(WireModel):
    token: str
    url: str


class FileBrowserOut(WireModel):
    session_id: str
    session_name: str
    root: str


class SftpOut(WireModel):
    session_id: str
    session_name: str
    root: str
    user: str
    host: str
    port: int
    tcp_url: str
    key_path: str
    sftp_command: str
    idle_timeout: Number


# -- from the services' objects to the wire ----------------------------------------------------------------
def wire_ownership(ownership_type: str) -> Literal["user", "group"]:
    return "user" if ownership_type == "user" else "group"


def folder_wire(f: FolderView) -> dict[str, Any]:
    """A folder as ``GET /folders`` lists it (GraphQL's folder nodes start from this too)."""
    kind = wire_ownership(f.ownership_type)
    return {
        "id": f.id.hex, "name": f.name, "host": f.host, "quota_scope_id": f.quota_scope_id,
        "status": f.status, "usage_mode": f.usage_mode, "created_at": iso(f.created_at),
        "is_owner": f.is_owner, "permission": f.permission, "mount_permission": f.mount_permission,
        "user": str(f.owner_user_id) if f.owner_user_id else None,
        "group": str(f.project_id) if f.project_id else None,
        "creator": f.creator, "user_email": f.owner_email, "group_name": f.project_name,
        "ownership_type": kind, "type": kind, "cloneable": f.cloneable,
        "is_automount": f.is_automount, "shared": f.shared,
        "max_files": 0, "max_size": 0, "cur_size": f.used_bytes or 0,
        "last_used": iso(f.last_used), "status_changed": iso(f.status_changed),
        "allowed_actions": [str(a) for a in f.allowed_actions],
    }


def created_wire(c: CreatedFolder) -> dict[str, Any]:
    return {"id": c.id.hex, "name": c.name, "quota_scope_id": c.quota_scope_id, "host": c.host,
            "usage_mode": c.usage_mode, "permission": c.permission, "max_size": 0, "creator": c.creator,
            "ownership_type": wire_ownership(c.ownership_type),
            "user": str(c.owner_user_id) if c.owner_user_id else None,
            "group": str(c.project_id) if c.project_id else None, "cloneable": c.cloneable, "status": c.status}


def invitation_wire(i: Invitation) -> dict[str, Any]:
    return {"id": str(i.id), "inviter": i.inviter, "invitee": i.invitee, "perm": i.permission,
            "state": i.state, "created_at": iso(i.created_at), "modified_at": iso(i.modified_at),
            "vfolder_id": i.folder_id.hex, "vfolder_name": i.folder_name}


def share_wire(sh: Share) -> dict[str, Any]:
    return {"vfolder_id": sh.folder_id.hex, "vfolder_name": sh.folder_name, "status": sh.status,
            "owner": sh.owner_email, "type": sh.ownership_type,
            "shared_to": {"uuid": str(sh.user_id), "email": sh.user_email}, "perm": sh.permission}


def hosts_wire(h: StorageHosts) -> dict[str, Any]:
    return {"default": h.default, "allowed": h.allowed,
            "volume_info": {v.host: {"backend": v.backend, "capabilities": v.capabilities, "usage": v.usage,
                                     "sftp_scaling_groups": []} for v in h.volumes}}


def scope_usage_wire(u: ScopeUsage) -> dict[str, Any]:
    return {"used_bytes": u.used_bytes, "limit_bytes": u.limit_bytes}


def host_usage_wire(u: HostUsage) -> dict[str, Any]:
    return {"user": scope_usage_wire(u.user), "project": scope_usage_wire(u.project) if u.project else None}


def volume_wire(v: VolumeInfo) -> dict[str, Any]:
    return {"host": v.host, "backend": v.backend, "capabilities": v.capabilities,
            "quota_supported": v.quota_supported, "usage": v.usage}


def scope_from_wire(quota_scope_id: str) -> str:
    """Backend.AI also names a project's scope ``group:<uuid>``."""
    kind, sep, rest = quota_scope_id.partition(":")
    return f"project:{rest}" if sep and kind == "group" else quota_scope_id


def quota_wire(q: QuotaState) -> dict[str, Any]:
    return {"host": q.host, "quota_scope_id": q.quota_scope_id, "supported": q.supported,
            "limit_bytes": q.limit_bytes, "explicit": q.explicit, "default_limit_bytes": q.default_limit_bytes,
            "used_bytes": q.used_bytes}


def files_wire(listing: FileListing) -> dict[str, Any]:
    legacy = [{"filename": i["name"], "size": i["size"], "mode": mode_string(i),
               "ctime": i.get("created"), "mtime": i.get("modified"), "atime": i.get("modified")}
              for i in listing.items]
    return {"items": listing.items, "files": json.dumps(legacy)}


def mode_string(item: dict[str, Any]) -> str:
    """``0o644`` + type → ``-rw-r--r--`` (what the Backend.AI CLI prints)."""
    try:
        bits = int(str(item.get("mode", "0")), 8)
    except ValueError:
        bits = 0
    kind = {"DIRECTORY": "d", "SYMLINK": "l"}.get(item.get("type", ""), "-")
    flags = "".join(ch if bits & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return kind + flags


def ticket_wire(t: TransferTicket) -> dict[str, Any]:
    out = {"token": t.token, "url": t.url}
    if t.session is not None:
        out["session"] = t.session
    return out


# -- field errors, keyed by the wire field of the request --------------------------------------------------
T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)
# Workbay's field names in services' errors → the request's wire field.
CREATE_FIELDS = {"project": "group"}
# Workbay's names in a create error's ``data`` → Backend.AI's (the user policy's folder limit).
CREATE_DATA = {"max_folder_count": "max_vfolder_count"}
CLONE_FIELDS = {"name": "target_name", "host": "target_host"}
RENAME_FIELDS = {"name": "new_name"}


async def _form_params(request: Request, model: type[P]) -> P:
    """``request_params``, with ``field_errors`` on a validation error (each field's message)."""
    try:
        return await request_params(request, model)
    except InvalidAPIParameters as e:
        if isinstance(e.data, dict) and e.data:
            fields = {str(k).split(".")[0]: str(v) for k, v in e.data.items() if k != "_"}
            if fields:
                e.extra = {**e.extra, "field_errors": fields}
        raise


async def _with_field_errors(work: Awaitable[T], names: dict[str, str],
                             data_names: dict[str, str] | None = None) -> T:
    """Renames the services' ``field_errors`` keys to the request's wire fields (and the keys of
    ``data`` named in ``data_names`` to the wire's)."""
    try:
        return await work
    except BackendError as e:
        found = e.extra.get("field_errors")
        if isinstance(found, dict):
            e.extra = {**e.extra, "field_errors": {names.get(k, k): v for k, v in found.items()}}
        if data_names and isinstance(e.data, dict):
            e.data = {data_names.get(k, k): v for k, v in e.data.items()}
        raise


# -- collection and special paths (declared before /folders/{name}) ------------------------------
@router.post("/folders", status_code=201, response_model=CreatedOut, openapi_extra=body_schema(CreateParams, True))
async def create(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await _form_params(request, CreateParams)
    new = NewFolder(name=p.name, host=p.host, project=p.group, usage_mode=p.usage_mode, permission=p.permission,
                    cloneable=p.cloneable)
    return created_wire(await _with_field_errors(st.folders.create(who, new), CREATE_FIELDS, CREATE_DATA))


@router.get("/folders", response_model=list[FolderOut], openapi_extra=body_schema(ListParams))
async def list_folders(request: Request, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> list[dict[str, Any]]:
    p = await request_params(request, ListParams)
    found = await st.folders.list(who, all_folders=p.all, project_id=p.group_id, owner_email=p.owner_user_email)
    return [folder_wire(f) for f in found]


@router.delete("/folders", status_code=204, response_class=Response, responses=NO_CONTENT,
               openapi_extra=body_schema(IdParams, True))
async def delete_by_id(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    p = await request_params(request, IdParams)
    await st.folders.trash(who, p.id)
    return Response(status_code=204)


@router.get("/folders/_/hosts", response_model=HostsOut, openapi_extra=body_schema(GroupParams))
async def hosts(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    found = await st.folder_admin.hosts(who, (await request_params(request, GroupParams)).group_id)
    return hosts_wire(found)


@router.get("/folders/_/all_hosts", response_model=AllHostsOut)
@router.get("/folders/_/all-hosts", operation_id="all_hosts_alias", response_model=AllHostsOut)
async def all_hosts(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    found = await st.folder_admin.all_hosts(who)
    return {"default": found.default, "allowed": found.allowed}


@router.get("/folders/_/allowed_types", response_model=list[Literal["user", "group"]])
@router.get("/folders/_/allowed-types", operation_id="allowed_types_alias", response_model=list[Literal["user", "group"]])
async def allowed_types(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> list[str]:
    return [wire_ownership(t) for t in st.folder_admin.allowed_types(who)]


@router.get("/folders/_/status", response_model=StatusOut, openapi_extra=body_schema(GroupParams))
async def status(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    found = await st.folder_admin.status(who, (await request_params(request, GroupParams)).group_id)
    return {"user_count": found.user_count, "user_limit": found.user_limit, "project_count": found.project_count,
            "invited_count": found.invited_count,
            "hosts": {host: host_usage_wire(u) for host, u in found.hosts.items()}}


@router.get("/folders/_/volumes", response_model=VolumesOut)
async def volumes(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    return {"volumes": [volume_wire(v) for v in await st.folder_admin.volumes(who)]}


@router.get("/folders/_/quota", response_model=QuotaOut, openapi_extra=body_schema(QuotaParams, True))
async def get_quota(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, QuotaParams)
    return quota_wire(await st.folder_admin.get_quota(who, p.host, scope_from_wire(p.quota_scope_id)))


@router.put("/folders/_/quota", response_model=QuotaOut, openapi_extra=body_schema(SetQuotaParams, True))
async def set_quota(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, SetQuotaParams)
    return quota_wire(await st.folder_admin.set_quota(who, p.host, scope_from_wire(p.quota_scope_id), p.limit_bytes))


@router.delete("/folders/_/quota", response_model=QuotaOut, openapi_extra=body_schema(QuotaParams, True))
async def unset_quota(request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, QuotaParams)
    return quota_wire(await st.folder_admin.set_quota(who, p.host, scope_from_wire(p.quota_scope_id), None))


@router.get("/folders/_/shared", response_model=SharedOut, openapi_extra=body_schema(SharedParams))
async def shared(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    found = await st.folder_sharing.shared(who, (await request_params(request, SharedParams)).vfolder_id)
    return {"shared": [share_wire(sh) for sh in found]}


@router.post("/folders/_/shared", response_model=MsgOut, openapi_extra=body_schema(UpdateShareParams, True))
async def update_share(request: Request, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, UpdateShareParams)
    await st.folder_sharing.update_share(who, p.vfolder, p.user, p.perm)
    return {"msg": "updated" if p.perm else "removed"}


@router.get("/folders/invitations/list", response_model=InvitationsOut)
async def invitations(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    return {"invitations": [invitation_wire(i) for i in await st.folder_sharing.received(who)]}


@router.get("/folders/invitations/list-sent", response_model=InvitationsOut)
@router.get("/folders/invitations/list_sent", operation_id="invitations_sent_alias", response_model=InvitationsOut)
async def invitations_sent(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    return {"invitations": [invitation_wire(i) for i in await st.folder_sharing.sent(who)]}


@router.post("/folders/invitations/accept", response_model=Empty, openapi_extra=body_schema(InvitationParams, True))
async def accept(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    await st.folder_sharing.accept(who, (await request_params(request, InvitationParams)).inv_id)
    return {}


@router.delete("/folders/invitations/delete", response_model=Empty,
               openapi_extra=body_schema(InvitationParams, True))
async def delete_invitation(request: Request, who: Actor = Depends(actor),
                            st: ManagerState = Depends(state)) -> dict[str, Any]:
    await st.folder_sharing.delete_invitation(who, (await request_params(request, InvitationParams)).inv_id)
    return {}


@router.post("/folders/restore-from-trash-bin", response_model=Empty, openapi_extra=body_schema(IdParams, True))
async def restore_by_id(request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict[str, Any]:
    await st.folders.restore(who, (await request_params(request, IdParams)).id)
    return {}


@router.post("/folders/delete-from-trash-bin", status_code=204, response_class=Response, responses=NO_CONTENT,
             openapi_extra=body_schema(IdParams, True))
@router.delete("/folders/purge", status_code=204, operation_id="purge_by_id_alias", response_class=Response,
               responses=NO_CONTENT, openapi_extra=body_schema(IdParams, True))
async def purge_by_id(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.folders.purge(who, (await request_params(request, IdParams)).id)
    return Response(status_code=204)


# -- one folder --------------------------------------------------------------------------------------
@router.get("/folders/{name}", response_model=FolderInfoOut)
async def info(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    f = await st.folders.info(who, name)
    out = folder_wire(f)
    out.update({"numFiles": f.file_count or 0, "num_files": f.file_count or 0, "used_bytes": f.used_bytes or 0,
                "created": out["created_at"]})
    return out


@router.delete("/folders/{name}", status_code=204, response_class=Response, responses=NO_CONTENT)
async def trash(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.folders.trash(who, name)
    return Response(status_code=204)


@router.post("/folders/{name}/restore", response_model=Empty)
async def restore(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    await st.folders.restore(who, name)
    return {}


@router.delete("/folders/{name}/purge", status_code=204, response_class=Response, responses=NO_CONTENT)
async def purge(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.folders.purge(who, name)
    return Response(status_code=204)


@router.post("/folders/{name}/rename", status_code=201, response_class=Response, responses=CREATED_EMPTY,
             openapi_extra=body_schema(RenameParams, True))
async def rename(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    new_name = (await _form_params(request, RenameParams)).new_name
    await _with_field_errors(st.folders.rename(who, name, new_name), RENAME_FIELDS)
    return Response(status_code=201)


@router.post("/folders/{name}/update-options", status_code=201, response_class=Response, responses=CREATED_EMPTY,
             openapi_extra=body_schema(OptionsParams))
async def update_options(name: str, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> Response:
    p = await request_params(request, OptionsParams)
    await st.folders.update_options(who, name, p.cloneable, p.permission)
    return Response(status_code=201)


@router.post("/folders/{name}/mkdir", status_code=201, response_class=Response, responses=CREATED_EMPTY,
             openapi_extra=body_schema(MkdirParams, True))
async def mkdir(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    p = await request_params(request, MkdirParams)
    await st.folders.mkdir(who, name, p.path, p.parents, p.exist_ok)
    return Response(status_code=201)


@router.get("/folders/{name}/files", response_model=FilesOut, openapi_extra=body_schema(FilesParams))
async def files(name: str, request: Request, who: Actor = Depends(actor),
                st: ManagerState = Depends(state)) -> dict[str, Any]:
    return files_wire(await st.folders.list_files(who, name, (await request_params(request, FilesParams)).path))


@router.post("/folders/{name}/rename-file", response_model=Empty, openapi_extra=body_schema(RenameFileParams, True))
async def rename_file(name: str, request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, RenameFileParams)
    await st.folders.rename_file(who, name, p.target_path, p.new_name)
    return {}


@router.post("/folders/{name}/move-file", response_model=Empty, openapi_extra=body_schema(MoveFileParams, True))
async def move_file(name: str, request: Request, who: Actor = Depends(actor),
                    st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, MoveFileParams)
    await st.folders.move_file(who, name, p.src, p.dst)
    return {}


@router.delete("/folders/{name}/delete-files", response_model=Empty,
               openapi_extra=body_schema(DeleteFilesParams, True))
async def delete_files(name: str, request: Request, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, DeleteFilesParams)
    await st.folders.delete_files(who, name, p.files, p.recursive)
    return {}


@router.post("/folders/{name}/request-upload", response_model=UploadOut, openapi_extra=body_schema(UploadParams, True))
async def request_upload(name: str, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, UploadParams)
    return ticket_wire(await st.folders.request_upload(who, name, p.path, p.size, p.session))


@router.post("/folders/{name}/request-download", response_model=DownloadOut,
             openapi_extra=body_schema(DownloadParams))
async def request_download(name: str, request: Request, who: Actor = Depends(actor),
                           st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, DownloadParams)
    return ticket_wire(await st.folders.request_download(who, name, p.path, p.files, p.archive))


@router.post("/folders/{name}/invite", status_code=201, response_model=InvitedOut,
             openapi_extra=body_schema(InviteParams, True))
async def invite(name: str, request: Request, who: Actor = Depends(actor),
                 st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, InviteParams)
    return {"invited_ids": await st.folder_sharing.invite(who, name, p.perm, p.user_ids)}


@router.post("/folders/{name}/share", status_code=201, response_model=SharedEmailsOut,
             openapi_extra=body_schema(ShareParams, True))
async def share(name: str, request: Request, who: Actor = Depends(actor),
                st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, ShareParams)
    return {"shared_emails": await st.folder_sharing.share_project_folder(who, name, p.permission, p.emails)}


@router.delete("/folders/{name}/unshare", response_model=UnsharedEmailsOut,
               openapi_extra=body_schema(UnshareParams, True))
async def unshare(name: str, request: Request, who: Actor = Depends(actor),
                  st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, UnshareParams)
    return {"unshared_emails": await st.folder_sharing.unshare(who, name, p.emails)}


@router.post("/folders/{name}/leave", response_model=MsgOut, openapi_extra=body_schema(LeaveParams))
async def leave(name: str, request: Request, who: Actor = Depends(actor),
                st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await request_params(request, LeaveParams)
    await st.folder_sharing.leave(who, name, p.shared_user_uuid)
    return {"msg": "left the shared folder"}


@router.post("/folders/{name}/file-browser", status_code=201, response_model=FileBrowserOut)
async def file_browser(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    """AP-6: a File Browser session with this folder as its root; answers the app's opening link."""
    return await st.folder_apps.file_browser(who, name)


@router.post("/folders/{name}/sftp-server", status_code=201, response_model=SftpOut,
             openapi_extra=body_schema(SftpParams))
async def sftp_server(name: str, request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict[str, Any]:
    """AP-7: an SFTP-only session mounting this folder; answers host, port, user and the key's path."""
    params = await request_params(request, SftpParams)
    return await st.folder_apps.sftp_server(who, name, params.preferred_port)


@router.post("/folders/{name}/clone", status_code=201, response_model=ClonedOut,
             openapi_extra=body_schema(CloneParams, True))
async def clone(name: str, request: Request, who: Actor = Depends(actor),
                st: ManagerState = Depends(state)) -> dict[str, Any]:
    p = await _form_params(request, CloneParams)
    req = CloneFolder(target_name=p.target_name, target_host=p.target_host, usage_mode=p.usage_mode,
                      permission=p.permission, cloneable=p.cloneable)
    cloned = await _with_field_errors(st.folders.clone(who, name, req), CLONE_FIELDS)
    return {**created_wire(cloned), "bgtask_id": cloned.bgtask_id}

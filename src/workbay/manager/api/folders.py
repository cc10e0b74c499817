"""/folders: Backend.AI's virtual-folder API plus Workbay's trash, quota and status additions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from workbay.common.http import request_params
from workbay.manager.services.access import Actor
from workbay.manager.services.folders import CloneFolder, NewFolder
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(tags=["folders"])


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


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


# -- collection and special paths (declared before /folders/{name}) ------------------------------
@router.post("/folders", status_code=201)
async def create(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folders.create(who, await request_params(request, NewFolder))


@router.get("/folders")
async def list_folders(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> list:
    p = await request_params(request, ListParams)
    return await st.folders.list(who, all_folders=p.all, group_id=p.group_id, owner_email=p.owner_user_email)


@router.delete("/folders", status_code=204)
async def delete_by_id(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    p = await request_params(request, IdParams)
    await st.folders.trash(who, p.id)
    return Response(status_code=204)


@router.get("/folders/_/hosts")
async def hosts(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folder_admin.hosts(who, (await request_params(request, GroupParams)).group_id)


@router.get("/folders/_/all_hosts")
@router.get("/folders/_/all-hosts", operation_id="all_hosts_alias")
async def all_hosts(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folder_admin.all_hosts(who)


@router.get("/folders/_/allowed_types")
@router.get("/folders/_/allowed-types", operation_id="allowed_types_alias")
async def allowed_types(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> list:
    return st.folder_admin.allowed_types(who)


@router.get("/folders/_/status")
async def status(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folder_admin.status(who, (await request_params(request, GroupParams)).group_id)


@router.get("/folders/_/volumes")
async def volumes(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folder_admin.volumes(who)


@router.get("/folders/_/quota")
async def get_quota(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, QuotaParams)
    return await st.folder_admin.get_quota(who, p.host, p.quota_scope_id)


@router.put("/folders/_/quota")
async def set_quota(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, SetQuotaParams)
    return await st.folder_admin.set_quota(who, p.host, p.quota_scope_id, p.limit_bytes)


@router.delete("/folders/_/quota")
async def unset_quota(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, QuotaParams)
    return await st.folder_admin.set_quota(who, p.host, p.quota_scope_id, None)


@router.get("/folders/_/shared")
async def shared(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folder_sharing.shared(who, (await request_params(request, SharedParams)).vfolder_id)


@router.post("/folders/_/shared")
async def update_share(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, UpdateShareParams)
    await st.folder_sharing.update_share(who, p.vfolder, p.user, p.perm)
    return {"msg": "updated" if p.perm else "removed"}


@router.get("/folders/invitations/list")
async def invitations(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folder_sharing.received(who)


@router.get("/folders/invitations/list-sent")
@router.get("/folders/invitations/list_sent", operation_id="invitations_sent_alias")
async def invitations_sent(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folder_sharing.sent(who)


@router.post("/folders/invitations/accept")
async def accept(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    await st.folder_sharing.accept(who, (await request_params(request, InvitationParams)).inv_id)
    return {}


@router.delete("/folders/invitations/delete")
async def delete_invitation(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    await st.folder_sharing.delete_invitation(who, (await request_params(request, InvitationParams)).inv_id)
    return {}


@router.post("/folders/restore-from-trash-bin")
async def restore_by_id(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    await st.folders.restore(who, (await request_params(request, IdParams)).id)
    return {}


@router.post("/folders/delete-from-trash-bin", status_code=204)
@router.delete("/folders/purge", status_code=204, operation_id="purge_by_id_alias")
async def purge_by_id(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.folders.purge(who, (await request_params(request, IdParams)).id)
    return Response(status_code=204)


# -- one folder --------------------------------------------------------------------------------------
@router.get("/folders/{name}")
async def info(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folders.info(who, name)


@router.delete("/folders/{name}", status_code=204)
async def trash(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.folders.trash(who, name)
    return Response(status_code=204)


@router.post("/folders/{name}/restore")
async def restore(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    await st.folders.restore(who, name)
    return {}


@router.delete("/folders/{name}/purge", status_code=204)
async def purge(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.folders.purge(who, name)
    return Response(status_code=204)


@router.post("/folders/{name}/rename", status_code=201)
async def rename(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.folders.rename(who, name, (await request_params(request, RenameParams)).new_name)
    return Response(status_code=201)


@router.post("/folders/{name}/update-options", status_code=201)
async def update_options(name: str, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> Response:
    p = await request_params(request, OptionsParams)
    await st.folders.update_options(who, name, p.cloneable, p.permission)
    return Response(status_code=201)


@router.post("/folders/{name}/mkdir", status_code=201)
async def mkdir(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    p = await request_params(request, MkdirParams)
    await st.folders.mkdir(who, name, p.path, p.parents, p.exist_ok)
    return Response(status_code=201)


@router.get("/folders/{name}/files")
async def files(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folders.list_files(who, name, (await request_params(request, FilesParams)).path)


@router.post("/folders/{name}/rename-file")
async def rename_file(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, RenameFileParams)
    await st.folders.rename_file(who, name, p.target_path, p.new_name)
    return {}


@router.post("/folders/{name}/move-file")
async def move_file(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, MoveFileParams)
    await st.folders.move_file(who, name, p.src, p.dst)
    return {}


@router.delete("/folders/{name}/delete-files")
async def delete_files(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, DeleteFilesParams)
    await st.folders.delete_files(who, name, p.files, p.recursive)
    return {}


@router.post("/folders/{name}/request-upload")
async def request_upload(name: str, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, UploadParams)
    return await st.folders.request_upload(who, name, p.path, p.size, p.session)


@router.post("/folders/{name}/request-download")
async def request_download(name: str, request: Request, who: Actor = Depends(actor),
                           st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, DownloadParams)
    return await st.folders.request_download(who, name, p.path, p.files, p.archive)


@router.post("/folders/{name}/invite", status_code=201)
async def invite(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, InviteParams)
    return await st.folder_sharing.invite(who, name, p.perm, p.user_ids)


@router.post("/folders/{name}/share", status_code=201)
async def share(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, ShareParams)
    return await st.folder_sharing.share_project_folder(who, name, p.permission, p.emails)


@router.delete("/folders/{name}/unshare")
async def unshare(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, UnshareParams)
    return await st.folder_sharing.unshare(who, name, p.emails)


@router.post("/folders/{name}/leave")
async def leave(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, LeaveParams)
    return await st.folder_sharing.leave(who, name, p.shared_user_uuid)


@router.post("/folders/{name}/file-browser", status_code=201)
async def file_browser(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    """AP-6: a File Browser session with this folder as its root; answers the app's opening link."""
    return await st.folder_apps.file_browser(who, name)


class SftpParams(Params):
    preferred_port: int | None = Field(None, ge=1, le=65535)


@router.post("/folders/{name}/sftp-server", status_code=201)
async def sftp_server(name: str, request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict:
    """AP-7: an SFTP-only session mounting this folder; answers host, port, user and the key's path."""
    params = await request_params(request, SftpParams)
    return await st.folder_apps.sftp_server(who, name, params.preferred_port)


@router.post("/folders/{name}/clone", status_code=201)
async def clone(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.folders.clone(who, name, await request_params(request, CloneFolder))

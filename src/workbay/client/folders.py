"""SDK for storage folders (``/folders``): plain async functions over a :class:`~.sdk.Client`, used by
the CLI (``workbay vfolder``) and reusable by the WebUI's server side.  File bytes go through
:mod:`.transfer` (tus uploads and token downloads straight to the storage-proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from . import transfer
from .sdk import Client


def _n(name: str) -> str:
    """A folder name or id as a path segment."""
    return quote(name, safe="")


# -- folders ---------------------------------------------------------------------------------------
async def list_folders(client: Client, *, group_id: str | None = None,
                       all_folders: bool = False) -> list[dict[str, Any]]:
    data = await client.get("/folders", params={"group_id": group_id, "all": "true" if all_folders else None})
    if isinstance(data, dict):  # tolerate {"items": [...]}
        data = data.get("items", [])
    return list(data or [])


async def create_folder(client: Client, name: str, *, host: str | None = None, project: str | None = None,
                        usage_mode: str = "general", permission: str = "rw",
                        cloneable: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "usage_mode": usage_mode, "permission": permission,
                            "cloneable": cloneable}
    if host:
        body["host"] = host
    if project:
        body["group"] = project
    return await client.post("/folders", json=body)


async def get_folder(client: Client, name: str) -> dict[str, Any]:
    return await client.get(f"/folders/{_n(name)}")


async def rename_folder(client: Client, name: str, new_name: str) -> None:
    await client.post(f"/folders/{_n(name)}/rename", json={"new_name": new_name})


async def update_options(client: Client, name: str, *, cloneable: bool | None = None,
                         permission: str | None = None) -> None:
    body = {k: v for k, v in {"cloneable": cloneable, "permission": permission}.items() if v is not None}
    await client.post(f"/folders/{_n(name)}/update-options", json=body)


async def trash_folder(client: Client, name: str) -> None:
    await client.delete(f"/folders/{_n(name)}")


async def restore_folder(client: Client, name: str) -> None:
    await client.post(f"/folders/{_n(name)}/restore")


async def purge_folder(client: Client, name: str) -> None:
    await client.delete(f"/folders/{_n(name)}/purge")


async def clone_folder(client: Client, name: str, target_name: str, *, target_host: str | None = None,
                       usage_mode: str | None = None, permission: str | None = None,
                       cloneable: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"target_name": target_name}
    for key, value in (("target_host", target_host), ("usage_mode", usage_mode), ("permission", permission),
                       ("cloneable", cloneable)):
        if value is not None:
            body[key] = value
    return await client.post(f"/folders/{_n(name)}/clone", json=body)


async def folder_status(client: Client, group_id: str | None = None) -> dict[str, Any]:
    return await client.get("/folders/_/status", params={"group_id": group_id})


async def hosts(client: Client) -> dict[str, Any]:
    return await client.get("/folders/_/hosts")


async def volumes(client: Client) -> list[dict[str, Any]]:
    """Superadmins: the storage volumes with their usage."""
    return list((await client.get("/folders/_/volumes")).get("volumes") or [])


async def get_quota(client: Client, host: str, quota_scope_id: str) -> dict[str, Any]:
    return await client.get("/folders/_/quota", params={"host": host, "quota_scope_id": quota_scope_id})


async def set_quota(client: Client, host: str, quota_scope_id: str, limit_bytes: int) -> dict[str, Any]:
    return await client.request("PUT", "/folders/_/quota", json={"host": host, "quota_scope_id": quota_scope_id,
                                                                  "limit_bytes": limit_bytes})


async def unset_quota(client: Client, host: str, quota_scope_id: str) -> dict[str, Any]:
    """Back to the scope's resource-policy default."""
    return await client.delete("/folders/_/quota", params={"host": host, "quota_scope_id": quota_scope_id})


# -- files -----------------------------------------------------------------------------------------
async def list_files(client: Client, name: str, path: str = "") -> list[dict[str, Any]]:
    data = await client.get(f"/folders/{_n(name)}/files", params={"path": path})
    return list(data.get("items") or [])


async def mkdir(client: Client, name: str, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
    await client.post(f"/folders/{_n(name)}/mkdir", json={"path": path, "parents": parents, "exist_ok": exist_ok})


async def move_file(client: Client, name: str, src: str, dst: str) -> None:
    await client.post(f"/folders/{_n(name)}/move-file", json={"src": src, "dst": dst})


async def rename_file(client: Client, name: str, target_path: str, new_name: str) -> None:
    await client.post(f"/folders/{_n(name)}/rename-file", json={"target_path": target_path, "new_name": new_name})


async def delete_files(client: Client, name: str, paths: list[str], *, recursive: bool = False) -> None:
    await client.delete(f"/folders/{_n(name)}/delete-files", json={"files": paths, "recursive": recursive})


async def request_upload(client: Client, name: str, path: str, size: int,
                         session: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"path": path, "size": size}
    if session:
        body["session"] = session
    return await client.post(f"/folders/{_n(name)}/request-upload", json=body)


async def request_download(client: Client, name: str, path: str, *, archive: bool = False,
                           files: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"path": path, "archive": archive}
    if files:
        body["files"] = files
    return await client.post(f"/folders/{_n(name)}/request-download", json=body)


async def stat_path(client: Client, name: str, path: str) -> dict[str, Any] | None:
    """The listing entry of ``path`` (``type`` FILE/DIRECTORY/SYMLINK), None when absent; the
    folder itself (``""``) is a DIRECTORY."""
    path = transfer.normalize_remote(path, allow_root=True)
    if not path:
        return {"name": "", "type": "DIRECTORY"}
    parent, _, base = path.rpartition("/")
    for item in await list_files(client, name, parent):
        if item.get("name") == base:
            return item
    return None


# -- sharing ---------------------------------------------------------------------------------------
async def invite(client: Client, name: str, emails: list[str], perm: str = "ro") -> dict[str, Any]:
    return await client.post(f"/folders/{_n(name)}/invite", json={"perm": perm, "emails": emails})


async def share(client: Client, name: str, emails: list[str], permission: str = "ro") -> dict[str, Any]:
    """Admins: share a project folder with users directly (no invitation)."""
    return await client.post(f"/folders/{_n(name)}/share", json={"permission": permission, "emails": emails})


async def unshare(client: Client, name: str, emails: list[str]) -> dict[str, Any]:
    return await client.delete(f"/folders/{_n(name)}/unshare", json={"emails": emails})


async def leave(client: Client, name: str) -> dict[str, Any]:
    return await client.post(f"/folders/{_n(name)}/leave", json={"shared_user_uuid": None})


async def invitations(client: Client) -> list[dict[str, Any]]:
    return list((await client.get("/folders/invitations/list")).get("invitations") or [])


async def sent_invitations(client: Client) -> list[dict[str, Any]]:
    return list((await client.get("/folders/invitations/list-sent")).get("invitations") or [])


async def accept_invitation(client: Client, inv_id: str) -> None:
    await client.post("/folders/invitations/accept", json={"inv_id": inv_id})


async def delete_invitation(client: Client, inv_id: str) -> None:
    """Decline (invitee) or cancel (inviter) an invitation."""
    await client.delete("/folders/invitations/delete", json={"inv_id": inv_id})


async def shared_list(client: Client, vfolder_id: str | None = None) -> list[dict[str, Any]]:
    params = {"vfolder_id": vfolder_id} if vfolder_id else None
    return list((await client.get("/folders/_/shared", params=params)).get("shared") or [])


# -- transfers -------------------------------------------------------------------------------------
async def upload(client: Client, name: str, sources: list[Path | str], *, base_dir: str = "",
                 reporter: transfer.Reporter | None = None, state: transfer.StateFile | None = None,
                 chunk_size: int = transfer.CHUNK_SIZE, stop_after: int | None = None, jobs: int = 4,
                 http: httpx.AsyncClient | None = None) -> transfer.UploadPlan:
    """Upload files and directories (structure kept) into folder ``name`` below ``base_dir``,
    ``jobs`` files at a time; resumable through ``state`` (default: the user's cache)."""
    plan = transfer.plan_upload(sources, base_dir)
    state = state if state is not None else transfer.upload_state()

    async def grant(path: str, size: int, session: str | None) -> dict[str, Any]:
        return await request_upload(client, name, path, size, session)

    own = http is None
    http = http or transfer.new_http()
    try:
        for d in plan.empty_dirs:
            await mkdir(client, name, d, parents=True, exist_ok=True)

        def job(item: transfer.UploadItem):
            return lambda: transfer.upload_item(http, grant, name, item, state=state, reporter=reporter,
                                                chunk_size=chunk_size, stop_after=stop_after)

        await transfer.run_limited(jobs, [job(item) for item in plan.files])
    finally:
        if own:
            await http.aclose()
    return plan


async def download(client: Client, name: str, remote: str, out_dir: Path, *,
                   reporter: transfer.Reporter | None = None, state: transfer.StateFile | None = None,
                   http: httpx.AsyncClient | None = None, stop_after: int | None = None) -> tuple[Path, bool, int]:
    """Download a file (resumable) or a directory (as ``<dir>.zip``; the whole folder as
    ``<name>.zip``) into ``out_dir``; returns ``(saved path, is_archive, resumed_at)``."""
    path = transfer.normalize_remote(remote, allow_root=True)
    if path:
        entry = await stat_path(client, name, path)
        if entry is None:
            raise LookupError(f"No such file or directory in {name}: {remote!r}")
        archive = entry.get("type") == "DIRECTORY"
        base = path.rpartition("/")[2]
        dest = out_dir / (f"{base}.zip" if archive else base)
        grant = await request_download(client, name, path, archive=archive)
    else:  # the whole folder: every top-level entry in one zip
        top = [i["name"] for i in await list_files(client, name, "")]
        if not top:
            raise LookupError(f"{name} is empty: nothing to download")
        archive, dest = True, out_dir / f"{name}.zip"
        grant = await request_download(client, name, top[0], archive=True, files=top)
    state = state if state is not None else transfer.download_state()
    own = http is None
    http = http or transfer.new_http()
    try:
        saved, resumed = await transfer.download(http, grant["url"], grant["token"], dest, archive=archive,
                                                 reporter=reporter, state=state,
                                                 key=transfer.download_key(name, path, dest), name=path or name,
                                                 stop_after=stop_after)
    finally:
        if own:
            await http.aclose()
    return saved, archive, resumed

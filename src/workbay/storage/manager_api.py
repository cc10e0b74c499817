"""Manager-facing API: volumes, folders and quota scopes, authenticated with the storage secret."""

from __future__ import annotations

import hmac
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from workbay.common.errors import AuthFailed, InvalidAPIParameters
from workbay.common.http import json_body

from . import ownership, tus
from .quota import parse_scope, parse_vfid
from .volumes import Volumes

SECRET_HEADER = "X-Workbay-Secret"


def secret_matches(secret: str, given: str | None) -> bool:
    """Whether ``given`` is the storage secret (never true for an empty secret)."""
    return bool(secret) and given is not None and hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), secret.encode())


def manager_router(volumes: Volumes, secret: str) -> APIRouter:
    async def require_secret(request: Request) -> None:
        if not secret_matches(secret, request.headers.get(SECRET_HEADER)):
            raise AuthFailed("A valid X-Workbay-Secret header is required.")

    router = APIRouter(dependencies=[Depends(require_secret)])

    async def params(request: Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query_params)
        raw.update(await json_body(request))
        return raw

    def need(raw: dict[str, Any], *keys: str) -> list[Any]:
        missing = [k for k in keys if raw.get(k) in (None, "")]
        if missing:
            raise InvalidAPIParameters(f"Missing: {', '.join(missing)}",
                                       data={k: "required" for k in missing})
        return [raw[k] for k in keys]

    @router.get("/volumes")
    async def list_volumes() -> dict:
        infos = [await anyio.to_thread.run_sync(v.info) for v in volumes]
        return {"volumes": infos}

    @router.post("/folder/create", status_code=201)
    async def create_folder(request: Request) -> dict:
        raw = await params(request)
        volume_name, vfid, qsid = need(raw, "volume", "vfid", "quota_scope_id")
        volume, scope = volumes.get(volume_name), parse_scope(qsid)
        owner = ownership.parse_owner(raw.get("owner"))
        path = await anyio.to_thread.run_sync(lambda: volume.create_folder(scope, vfid, owner=owner))
        return {"volume": volume.name, "vfid": parse_vfid(vfid), "quota_scope_id": str(scope),
                "path": str(path)}

    @router.post("/folder/delete", status_code=204)
    async def delete_folder(request: Request) -> Response:
        volume_name, vfid = need(await params(request), "volume", "vfid")
        await anyio.to_thread.run_sync(volumes.get(volume_name).delete_folder, vfid)
        return Response(status_code=204)

    @router.post("/folder/clone", status_code=201)
    async def clone_folder(request: Request) -> dict:
        raw = await params(request)
        src_volume, src_vfid, dst_vfid, qsid = need(raw, "src_volume", "src_vfid", "dst_vfid",
                                                    "dst_quota_scope_id")
        dst = volumes.get(raw.get("dst_volume") or src_volume)
        src, scope = volumes.get(src_volume), parse_scope(qsid)
        owner = ownership.parse_owner(raw.get("owner"))
        path = await anyio.to_thread.run_sync(lambda: src.clone_folder(src_vfid, dst, scope, dst_vfid,
                                                                       owner=owner))
        return {"volume": dst.name, "vfid": parse_vfid(dst_vfid), "path": str(path)}

    @router.api_route("/folder/usage", methods=["GET", "POST"])
    async def folder_usage(request: Request) -> dict:
        volume_name, vfid = need(await params(request), "volume", "vfid")
        return await anyio.to_thread.run_sync(volumes.get(volume_name).folder_usage, vfid)

    @router.post("/folders/usage")
    async def folders_usage(request: Request) -> dict:
        """Usage of many folders of one volume in one call (a folder listing's sizes)."""
        volume_name, vfids = need(await params(request), "volume", "vfids")
        if not isinstance(vfids, list) or not all(isinstance(v, str) for v in vfids):
            raise InvalidAPIParameters("vfids must be a list of folder ids.")
        usage = await anyio.to_thread.run_sync(volumes.get(volume_name).folders_usage, vfids)
        return {"usage": usage}

    @router.api_route("/folder/mount-path", methods=["GET", "POST"])
    async def mount_path(request: Request) -> dict:
        volume_name, vfid = need(await params(request), "volume", "vfid")
        path = await anyio.to_thread.run_sync(volumes.get(volume_name).folder_path, vfid)
        return {"path": str(path)}

    @router.post("/folder/file/prepare-upload", status_code=204)
    async def prepare_upload(request: Request) -> Response:
        raw = await params(request)
        volume_name, vfid, relpath, size = need(raw, "volume", "vfid", "relpath", "size")
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise InvalidAPIParameters("size must be an integer.") from None
        if size < 0:
            raise InvalidAPIParameters("size must be >= 0.")
        session = raw.get("session")
        owner = ownership.parse_owner(raw.get("owner"))
        await anyio.to_thread.run_sync(tus.prepare_upload, volumes.get(volume_name), vfid,
                                       relpath, size, str(session) if session else None, owner)
        return Response(status_code=204)

    @router.get("/quota-scope")
    async def get_quota(request: Request) -> dict:
        raw = await params(request)
        volume_name, qsid = need(raw, "volume", "quota_scope_id")
        with_usage = str(raw.get("usage", "true")).lower() not in ("false", "0", "no")
        return await anyio.to_thread.run_sync(volumes.get(volume_name).get_quota, parse_scope(qsid),
                                              with_usage)

    @router.api_route("/quota-scope", methods=["PUT", "PATCH", "POST"])
    async def set_quota(request: Request) -> dict:
        raw = await params(request)
        volume_name, qsid, limit = need(raw, "volume", "quota_scope_id", "limit_bytes")
        try:
            limit = int(limit)
        except (TypeError, ValueError):
            raise InvalidAPIParameters("limit_bytes must be an integer.") from None
        volume, scope = volumes.get(volume_name), parse_scope(qsid)
        await anyio.to_thread.run_sync(volume.set_quota, scope, limit)
        return await anyio.to_thread.run_sync(volume.get_quota, scope)

    @router.delete("/quota-scope")
    async def unset_quota(request: Request) -> dict:
        volume_name, qsid = need(await params(request), "volume", "quota_scope_id")
        volume, scope = volumes.get(volume_name), parse_scope(qsid)
        await anyio.to_thread.run_sync(volume.unset_quota, scope)
        return await anyio.to_thread.run_sync(volume.get_quota, scope)

    return router

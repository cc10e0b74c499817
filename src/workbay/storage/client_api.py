"""Client-facing file API (browsers, CLI): every request carries a token the manager issued."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from workbay.common.errors import GenericBadRequest, InvalidAPIParameters
from workbay.common.http import json_body, problem_response

from . import files, ownership, safe_fs, tus
from .download import file_response, zip_response
from .errors import QuotaExceeded
from .tokens import bearer_token, verify_token
from .volumes import Volume, Volumes

TUS_HEADERS = {"Tus-Resumable": tus.TUS_VERSION}


def client_router(volumes: Volumes, secret: str) -> APIRouter:
    router = APIRouter()
    locks: dict[str, asyncio.Lock] = {}

    async def params(request: Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query_params)
        raw.update(await json_body(request))
        bearer = bearer_token(request.headers.get("authorization"))
        if bearer:
            raw["token"] = bearer
        return raw

    def authorize(raw: dict[str, Any], op: str, action: str | None = None) -> tuple[dict, Volume, Path]:
        claims = verify_token(secret, raw.get("token"), op, action)
        volume = volumes.get(claims["volume"])
        folder = volume.folder_path(claims["vfid"])
        return claims, volume, folder

    def base_of(claims: dict, path: Any) -> str:
        """A request path joined to the token's relpath (the token's subtree is the scope)."""
        if path is None:
            path = ""
        if not isinstance(path, str):
            raise InvalidAPIParameters("Paths must be strings.")
        base = claims["relpath"].strip("/")
        if path.startswith("/"):
            return path  # confine() refuses it
        return f"{base}/{path}" if base and base != "." else path

    # --- files ---
    @router.get("/files")
    async def list_files(request: Request) -> dict:
        raw = await params(request)
        claims, _, folder = authorize(raw, "files", "list")
        items = await anyio.to_thread.run_sync(files.list_dir, folder, base_of(claims, raw.get("path")))
        return {"items": items}

    @router.post("/files/mkdir", status_code=201)
    async def mkdir(request: Request) -> Response:
        raw = await params(request)
        claims, volume, folder = authorize(raw, "files", "mkdir")
        owner = ownership.parse_owner(claims.get("owner"))
        try:
            await anyio.to_thread.run_sync(lambda: files.mkdir(
                folder, base_of(claims, raw.get("path")), parents=_flag(raw.get("parents")),
                exist_ok=_flag(raw.get("exist_ok")), owner=owner))
        finally:
            volume.changed(folder)
        return Response(status_code=201)

    @router.post("/files/rename")
    async def rename(request: Request) -> dict:
        raw = await params(request)
        claims, volume, folder = authorize(raw, "files", "rename")
        new_name = raw.get("new_name")
        if not isinstance(new_name, str):
            raise InvalidAPIParameters("new_name is required.")
        # a renamed or moved entry keeps its owner: it may be another member's (project folders)
        try:
            await anyio.to_thread.run_sync(files.rename, folder,
                                           base_of(claims, raw.get("target_path")), new_name)
        finally:
            volume.changed(folder)
        return {}

    @router.post("/files/move")
    async def move(request: Request) -> dict:
        raw = await params(request)
        claims, volume, folder = authorize(raw, "files", "move")
        try:
            await anyio.to_thread.run_sync(files.move, folder, base_of(claims, raw.get("src")),
                                           base_of(claims, raw.get("dst")))
        finally:
            volume.changed(folder)
        return {}

    @router.api_route("/files/delete", methods=["POST", "DELETE"])
    async def delete(request: Request) -> dict:
        raw = await params(request)
        claims, volume, folder = authorize(raw, "files", "delete")
        names = raw.get("files")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise InvalidAPIParameters("files must be a non-empty list of paths.")
        paths = [base_of(claims, n) for n in names]
        try:
            await anyio.to_thread.run_sync(lambda: files.delete(
                folder, paths, recursive=_flag(raw.get("recursive"))))
        finally:
            volume.changed(folder)
        return {}

    # --- download ---
    @router.get("/download")
    async def download(request: Request) -> Response:
        raw = await params(request)
        claims, _, folder = authorize(raw, "download")
        archive = _flag(raw.get("archive")) or _flag(claims.get("archive"))
        relpaths = claims.get("relpaths")
        if isinstance(relpaths, list) and relpaths:
            opened = await anyio.to_thread.run_sync(_open_all, folder, [str(p) for p in relpaths])
            return zip_response(opened, "download.zip")
        fd, st, name = await anyio.to_thread.run_sync(_open_one, folder, claims["relpath"])
        if stat.S_ISDIR(st.st_mode):
            if not archive:
                safe_fs.close(fd)
                raise GenericBadRequest("A directory downloads only as an archive (archive=true).")
            name = name or claims["vfid"]
            return zip_response([(fd, st, name)], f"{name}.zip")
        return file_response(fd, st, name, request.headers.get("range"),
                             request.headers.get("if-range"))

    # --- upload (tus 1.0.0) ---
    def upload_state(request: Request) -> tuple[dict, Volume, Path, str]:
        raw: dict[str, Any] = dict(request.query_params)
        bearer = bearer_token(request.headers.get("authorization"))
        if bearer:
            raw["token"] = bearer
        claims, volume, folder = authorize(raw, "upload")
        ownership.parse_owner(claims.get("owner"))  # a bad owner claim fails before any byte
        tus.check_target(folder, claims["relpath"])  # checked on every request (by descriptor)
        # one upload per session claim (the manager's upload id); without one, per token
        session = claims.get("session") or f"exp:{claims['exp']}"
        key = tus.session_key(claims["vfid"], claims["relpath"], claims["size"], str(session))
        return claims, volume, folder, key

    @router.options("/upload")
    async def upload_options() -> Response:
        return Response(status_code=204, headers={**TUS_HEADERS, "Tus-Version": tus.TUS_VERSION,
                                                  "Tus-Max-Size": str(1 << 50),
                                                  "Tus-Extension": ""})

    @router.head("/upload")
    async def upload_head(request: Request) -> Response:
        claims, volume, folder, key = upload_state(request)
        size = claims["size"]
        offset = tus.current_offset(volume, key, size)
        return Response(status_code=200, headers={**TUS_HEADERS, "Upload-Offset": str(offset),
                                                  "Upload-Length": str(size),
                                                  "Cache-Control": "no-store"})

    @router.patch("/upload")
    async def upload_patch(request: Request) -> Response:
        claims, volume, folder, key = upload_state(request)
        if request.headers.get("tus-resumable") != tus.TUS_VERSION:
            return Response(status_code=412, headers={"Tus-Version": tus.TUS_VERSION})
        if request.headers.get("content-type", "").split(";")[0].strip() \
                != "application/offset+octet-stream":
            return Response(status_code=415, headers=TUS_HEADERS)
        try:
            offset = int(request.headers["upload-offset"])
        except (KeyError, ValueError):
            raise InvalidAPIParameters("Upload-Offset is required.") from None
        size = claims["size"]
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and offset + int(declared) > size:  # refused before it is read
            raise InvalidAPIParameters("The upload is longer than its declared size.")
        lock = locks.setdefault(key, asyncio.Lock())
        async with lock:
            partial = tus.partial_path(volume, key)
            stored = tus.current_offset(volume, key, size)
            if offset != stored:
                return problem_response(_offset_conflict(stored))
            if tus.done_marker(volume, key).exists():
                return Response(status_code=204, headers={**TUS_HEADERS, "Upload-Offset": str(size),
                                                          "Upload-Length": str(size)})
            if not tus.reservation_path(volume, key).exists():
                try:  # refused before any byte is written; nothing stays behind
                    await anyio.to_thread.run_sync(tus.reserve, volume, folder, key, size)
                except QuotaExceeded as e:
                    partial.unlink(missing_ok=True)
                    locks.pop(key, None)
                    return problem_response(e)
            stored = await _receive(request, partial, stored, size)
            headers = {**TUS_HEADERS, "Upload-Offset": str(stored), "Upload-Length": str(size)}
            if stored >= size:
                await anyio.to_thread.run_sync(tus.finish, volume, folder, key, claims["relpath"],
                                               ownership.parse_owner(claims.get("owner")))
                locks.pop(key, None)
            return Response(status_code=204, headers=headers)

    return router


WRITE_BATCH = 1 << 20  # bytes gathered before one write in a worker thread


async def _receive(request: Request, partial: Path, offset: int, size: int) -> int:
    """Append the request body to the partial file; keep what arrived if the client vanishes.
    The body arrives in pieces of about 64 KiB; they are written in batches of ``WRITE_BATCH``
    (one thread hop each instead of one per piece, about half the CPU per byte)."""
    f = await anyio.to_thread.run_sync(open, partial, "ab")
    batch: list[bytes] = []
    pending = 0

    async def flush() -> None:
        nonlocal offset, pending
        data = b"".join(batch)
        batch.clear()
        await anyio.to_thread.run_sync(f.write, data)
        offset += pending
        pending = 0

    try:
        try:
            async for chunk in request.stream():
                if not chunk:
                    continue
                if offset + pending + len(chunk) > size:
                    raise InvalidAPIParameters("The upload is longer than its declared size.")
                batch.append(chunk)
                pending += len(chunk)
                if pending >= WRITE_BATCH:
                    await flush()
        except ClientDisconnect:  # whatever arrived is kept; HEAD tells the client where to resume
            pass
        finally:
            if pending:  # also what arrived before an error or a disconnect
                await flush()
    finally:
        await anyio.to_thread.run_sync(f.close)
    return offset


def _open_one(folder: Path, relpath: str) -> tuple[int, os.stat_result, str]:
    """A regular file or directory of the folder, opened by descriptor walk (safe_fs)."""
    with safe_fs.folder_fd(folder) as rfd:
        return safe_fs.open_path(rfd, relpath)


def _open_all(folder: Path, relpaths: list[str]) -> list[tuple[int, os.stat_result, str]]:
    """``_open_one`` of each path (all or none: a missing one closes the others)."""
    opened: list[tuple[int, os.stat_result, str]] = []
    try:
        with safe_fs.folder_fd(folder) as rfd:
            for rel in relpaths:
                fd, st, name = safe_fs.open_path(rfd, rel)
                opened.append((fd, st, name or "folder"))
    except BaseException:
        for fd, _, _ in opened:
            safe_fs.close(fd)
        raise
    return opened


def _offset_conflict(stored: int) -> GenericBadRequest:
    err = GenericBadRequest(f"Upload-Offset does not match the stored offset {stored}.",
                            headers={**TUS_HEADERS, "Upload-Offset": str(stored)})
    err.status = 409
    return err


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)

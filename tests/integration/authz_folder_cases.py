"""Storage-folder rows of the authorization matrix (test_manager_authz_matrix.py).

Objects: the target user's folder (a plain user of the default domain: hidden from everyone but
superadmins), each actor's own fresh folders, and project folders of the default domain's
"default" project, which every default-domain actor belongs to."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.test_manager_authz_matrix import (
    ACTORS,
    OWN_200,
    SUPERADMIN_ONLY,
    Case,
    World,
    _ret,
    row,
    unique,
)

HOST = "local:volume1"
ALL = lambda ok: row(ok, ok, ok, ok, ok, 401)  # noqa: E731  own objects: everyone but the anonymous
OTHERS_USER_FOLDER = lambda ok: row(ok, 404, 404, 404, 404, 401)  # noqa: E731
PROJECT_READ = lambda ok: row(ok, ok, 404, ok, ok, 401)  # noqa: E731  members read project folders
PROJECT_MANAGE = lambda ok: row(ok, ok, 404, 403, 403, 401)  # noqa: E731


def _client(w: World, actor: str):
    return w.h.client(*w.creds[actor])


def _target(w: World):
    kp = w.target["keypair"]
    return w.h.client(kp["access_key"], kp["secret_key"])


async def _own(w: World, actor: str, **extra: Any) -> str:
    """A fresh folder of the actor (a name that exists nowhere for the anonymous caller)."""
    name = unique("mf")
    if actor != "anon":
        await _client(w, actor).post("/folders", json={"name": name, **extra})
    return name


async def _target_folder(w: World) -> str:
    name = unique("tf")
    await _target(w).post("/folders", json={"name": name})
    return name


async def _project_folder(w: World) -> str:
    name = unique("pf")
    await w.sa.post("/folders", json={"name": name, "group": w.default_project})
    return name


def own(suffix: str = "", b: Any = None, method_body=None, **create) -> Any:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        name = await _own(w, actor, **create)
        out: dict[str, Any] = {"path": f"/folders/{name}{suffix}"}
        if actor != "anon" and method_body is not None:
            out["body"] = await method_body(w, actor, name)
        elif b is not None:
            out["body"] = b
        return out
    return prep


def own_trashed(path: str | None = None, key: str = "vfolder_id") -> Any:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        name = await _own(w, actor)
        fid = uuid.uuid4().hex
        if actor != "anon":
            c = _client(w, actor)
            fid = (await c.get(f"/folders/{name}"))["id"]
            await c.delete(f"/folders/{name}")
        if path is None:
            return {"path": f"/folders/{name}{'' if key == 'vfolder_id' else ''}"}
        return {"path": path, "body": {key: fid}}
    return prep


def own_trashed_named(suffix: str) -> Any:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        name = await _own(w, actor)
        if actor != "anon":
            await _client(w, actor).delete(f"/folders/{name}")
        return {"path": f"/folders/{name}{suffix}"}
    return prep


def target(suffix: str = "", b: Any = None, query: str = "") -> Any:
    """The target's folder by id (names are per owner; only ids name other users' folders)."""
    async def prep(w: World, actor: str) -> dict[str, Any]:
        fid = (await _target(w).get(f"/folders/{await _target_folder(w)}"))["id"]
        out: dict[str, Any] = {"path": f"/folders/{fid}{suffix}", "query": query}
        if b is not None:
            out["body"] = b
        return out
    return prep


def project(suffix: str = "", b: Any = None) -> Any:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        name = await _project_folder(w)
        out: dict[str, Any] = {"path": f"/folders/{name}{suffix}"}
        if b is not None:
            out["body"] = b(w) if callable(b) else b
        return out
    return prep


async def _with_dir(w: World, actor: str, name: str) -> None:
    await _client(w, actor).post(f"/folders/{name}/mkdir", json={"path": "d/e", "parents": True})


def own_files(suffix: str, b: dict[str, Any]) -> Any:
    async def make(w: World, actor: str, name: str) -> dict[str, Any]:
        await _with_dir(w, actor, name)
        return b
    return own(suffix, b, method_body=make)


def quota(query_only: bool = True, limit: int | None = None) -> Any:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        qsid = f"user:{w.target['uuid']}"
        if limit is None:
            return {"path": "/folders/_/quota", "query": f"host={HOST}&quota_scope_id={qsid}"}
        return {"path": "/folders/_/quota", "body": {"host": HOST, "quota_scope_id": qsid, "limit_bytes": limit}}
    return prep


async def _invitation_for(w: World, actor: str) -> dict[str, Any]:
    """A pending invitation from the target to the actor."""
    if actor == "anon":
        return {"body": {"inv_id": str(uuid.uuid4())}}
    name = await _target_folder(w)
    await _target(w).post(f"/folders/{name}/invite", json={"perm": "ro", "user_ids": [w.emails[actor]]})
    invs = (await _client(w, actor).get("/folders/invitations/list"))["invitations"]
    return {"body": {"inv_id": next(i["id"] for i in invs if i["vfolder_name"] == name)}}


async def _shared_with_target(w: World, actor: str) -> dict[str, Any]:
    """The actor's folder, shared with the target (accepted): the owner changes the share."""
    name = await _own(w, actor)
    if actor != "anon":
        await _client(w, actor).post(f"/folders/{name}/invite", json={"perm": "rw", "user_ids": [w.target["email"]]})
        invs = (await _target(w).get("/folders/invitations/list"))["invitations"]
        inv = next(i["id"] for i in invs if i["vfolder_name"] == name)
        await _target(w).post("/folders/invitations/accept", json={"inv_id": inv})
    return {"path": "/folders/_/shared", "body": {"vfolder": name, "user": w.target["email"], "perm": "ro"}}


async def _shared_with_actor(w: World, actor: str) -> dict[str, Any]:
    """The target's folder, shared with the actor (accepted): the actor leaves it."""
    name = await _target_folder(w)
    if actor != "anon":
        await _target(w).post(f"/folders/{name}/invite", json={"perm": "ro", "user_ids": [w.emails[actor]]})
        invs = (await _client(w, actor).get("/folders/invitations/list"))["invitations"]
        inv = next(i["id"] for i in invs if i["vfolder_name"] == name)
        await _client(w, actor).post("/folders/invitations/accept", json={"inv_id": inv})
    return {"path": f"/folders/{name}/leave", "body": {}}


async def _new_project_folder(w: World, actor: str) -> dict[str, Any]:
    return {"body": {"name": unique("npf"), "group": w.default_project}}


FOLDER_CASES: list[Case] = [
    Case("POST", "/folders", ALL(201), lambda w, a: _ret({"body": {"name": unique("nf")}}), "own folder"),
    Case("POST", "/folders", row(201, 201, 404, 403, 403, 401), _new_project_folder, "project folder"),
    Case("GET", "/folders", OWN_200),
    Case("DELETE", "/folders", row(204, 404, 404, 404, 404, 401),
         lambda w, a: _target_id(w), "the target's folder by id"),
    Case("GET", "/folders/_/hosts", OWN_200),
    Case("GET", "/folders/_/all_hosts", SUPERADMIN_ONLY(200)),
    Case("GET", "/folders/_/all-hosts", SUPERADMIN_ONLY(200)),
    Case("GET", "/folders/_/allowed_types", OWN_200),
    Case("GET", "/folders/_/allowed-types", OWN_200),
    Case("GET", "/folders/_/status", OWN_200),
    Case("GET", "/folders/_/volumes", SUPERADMIN_ONLY(200)),
    Case("GET", "/folders/_/quota", PROJECT_MANAGE(200), quota()),
    Case("PUT", "/folders/_/quota", PROJECT_MANAGE(200), quota(limit=10 * 2**30)),
    Case("DELETE", "/folders/_/quota", PROJECT_MANAGE(200), quota()),
    Case("GET", "/folders/_/shared", OWN_200),
    Case("POST", "/folders/_/shared", ALL(200), _shared_with_target),
    Case("GET", "/folders/invitations/list", OWN_200),
    Case("GET", "/folders/invitations/list-sent", OWN_200),
    Case("GET", "/folders/invitations/list_sent", OWN_200),
    Case("POST", "/folders/invitations/accept", ALL(200), _invitation_for),
    Case("DELETE", "/folders/invitations/delete", ALL(200), _invitation_for),
    Case("POST", "/folders/restore-from-trash-bin", ALL(200), own_trashed("/folders/restore-from-trash-bin")),
    Case("POST", "/folders/delete-from-trash-bin", ALL(204), own_trashed("/folders/delete-from-trash-bin")),
    Case("DELETE", "/folders/purge", ALL(204), own_trashed("/folders/purge")),
    Case("GET", "/folders/{name}", ALL(200), own(), "own"),
    Case("GET", "/folders/{name}", OTHERS_USER_FOLDER(200), target(), "another user's"),
    Case("GET", "/folders/{name}", PROJECT_READ(200), project(), "project folder"),
    Case("DELETE", "/folders/{name}", ALL(204), own(), "own"),
    Case("DELETE", "/folders/{name}", OTHERS_USER_FOLDER(204), target(), "another user's"),
    Case("DELETE", "/folders/{name}", PROJECT_MANAGE(204), project(), "project folder"),
    Case("POST", "/folders/{name}/restore", ALL(200), own_trashed_named("/restore")),
    Case("DELETE", "/folders/{name}/purge", ALL(204), own_trashed_named("/purge")),
    Case("POST", "/folders/{name}/rename", ALL(201), own("/rename", method_body=lambda w, a, n: _ret(
        {"new_name": unique("rn")}))),
    Case("POST", "/folders/{name}/rename", PROJECT_MANAGE(201), project("/rename", lambda w: {"new_name": unique("rn")}),
         "project folder"),
    Case("POST", "/folders/{name}/update-options", ALL(201), own("/update-options", {"cloneable": True})),
    Case("POST", "/folders/{name}/mkdir", ALL(201), own("/mkdir", {"path": "a/b", "parents": True})),
    Case("POST", "/folders/{name}/mkdir", PROJECT_READ(201), project("/mkdir", {"path": "x"}),
         "project folder (members rw)"),
    Case("GET", "/folders/{name}/files", ALL(200), own("/files")),
    Case("GET", "/folders/{name}/files", OTHERS_USER_FOLDER(200), target("/files"), "another user's"),
    Case("POST", "/folders/{name}/rename-file", ALL(200), own_files("/rename-file",
                                                                    {"target_path": "d/e", "new_name": "f"})),
    Case("POST", "/folders/{name}/move-file", ALL(200), own_files("/move-file", {"src": "d/e", "dst": "e"})),
    Case("DELETE", "/folders/{name}/delete-files", ALL(200), own_files("/delete-files",
                                                                       {"files": ["d"], "recursive": True})),
    Case("POST", "/folders/{name}/request-upload", ALL(200), own("/request-upload", {"path": "u.bin", "size": 3})),
    Case("POST", "/folders/{name}/request-upload", OTHERS_USER_FOLDER(200),
         target("/request-upload", {"path": "u.bin", "size": 3}), "another user's"),
    Case("POST", "/folders/{name}/request-download", ALL(200), own("/request-download", {"path": "x"})),
    Case("POST", "/folders/{name}/request-download", OTHERS_USER_FOLDER(200),
         target("/request-download", {"path": "x"}), "another user's"),
    Case("POST", "/folders/{name}/invite", ALL(201), own("/invite", method_body=lambda w, a, n: _ret(
        {"perm": "ro", "user_ids": [w.target["email"]]}))),
    Case("POST", "/folders/{name}/share", PROJECT_MANAGE(201),
         project("/share", lambda w: {"permission": "ro", "emails": [w.target["email"]]})),
    Case("DELETE", "/folders/{name}/unshare", PROJECT_MANAGE(200),
         project("/unshare", lambda w: {"emails": [w.target["email"]]})),
    Case("POST", "/folders/{name}/leave", ALL(200), _shared_with_actor),
    # the matrix has no agent and no system image: allowed callers get as far as the image (404)
    Case("POST", "/folders/{name}/file-browser", row(404, 404, 404, 404, 404, 401), target("/file-browser"),
         "another user's"),
    Case("POST", "/folders/{name}/sftp-server", row(404, 404, 404, 404, 404, 401), target("/sftp-server"),
         "another user's"),
    Case("POST", "/folders/{name}/clone", ALL(201), own("/clone", method_body=lambda w, a, n: _ret(
        {"target_name": unique("cl")}), cloneable=True)),
]


def own_task(suffix: str = "") -> Any:
    """A background task of the actor (a clone); the anonymous get an unknown id."""
    async def prep(w: World, actor: str) -> dict[str, Any]:
        if actor == "anon":
            task = str(uuid.uuid4())
        else:
            c = _client(w, actor)
            name = await _own(w, actor, cloneable=True)
            task = (await c.post(f"/folders/{name}/clone", json={"target_name": unique("bg")}))["bgtask_id"]
        if suffix == "events":
            return {"path": "/events/background-task", "query": f"task_id={task}"}
        return {"path": f"/background-tasks/{task}"}
    return prep


async def _targets_task(w: World, actor: str) -> dict[str, Any]:
    """The target's background task: nobody else may watch it (superadmins may)."""
    name = unique("tc")
    await _target(w).post("/folders", json={"name": name, "cloneable": True})
    task = (await _target(w).post(f"/folders/{name}/clone", json={"target_name": unique("bg")}))["bgtask_id"]
    return {"path": f"/background-tasks/{task}"}


BGTASK_CASES: list[Case] = [
    Case("GET", "/background-tasks", OWN_200),
    Case("GET", "/background-tasks/{task_id}", ALL(200), own_task(), "own"),
    Case("GET", "/background-tasks/{task_id}", OTHERS_USER_FOLDER(200), _targets_task, "another user's"),
    Case("GET", "/events/background-task", ALL(200), own_task("events"), streaming=True),
]


async def _target_id(w: World) -> dict[str, Any]:
    name = await _target_folder(w)
    fid = (await _target(w).get(f"/folders/{name}"))["id"]
    return {"path": "/folders", "body": {"id": fid}}


assert all(set(c.expect) == set(ACTORS) for c in FOLDER_CASES)

"""Storage folders through the manager's API against a real storage-proxy on real directories,
on SQLite and PostgreSQL: lifecycle, files, tus uploads, downloads, quotas, path escapes, sharing."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid
import zipfile

import pytest

from tests.support.manager import ManagerHarness
from workbay.client.sdk import APIError
from workbay.manager.models import ComputeSession

PASSWORD = "F0lders!pass"
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}


def unique(prefix: str = "f") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_user(h: ManagerHarness, **fields):
    name = unique("u")
    u = await h.admin().post("/admin/users", json={"email": f"{name}@example.test", "username": name,
                                                     "password": PASSWORD, **fields})
    return u, h.client(u["keypair"]["access_key"], u["keypair"]["secret_key"])


async def expect_error(status: int, coro) -> APIError:
    with pytest.raises(APIError) as e:
        await coro
    assert e.value.status == status, e.value
    return e.value


def folder_dir(h: ManagerHarness, info: dict) -> str:
    kind, _, owner = info["quota_scope_id"].partition(":")
    return os.path.join(h.state.ctx.config.data_dir, "volumes", "volume1", kind, owner, info["id"])


async def upload(h: ManagerHarness, c, folder: str, path: str, data: bytes, chunk: int | None = None) -> dict:
    r = await c.post(f"/folders/{folder}/request-upload", json={"path": path, "size": len(data)})
    http = h.storage_http()
    offset = 0
    while offset < len(data):
        part = data[offset:offset + (chunk or len(data))]
        resp = await http.patch(r["url"], params={"token": r["token"]}, content=part,
                                headers={**TUS, "Upload-Offset": str(offset)})
        assert resp.status_code == 204, resp.text
        offset = int(resp.headers["Upload-Offset"])
    return r


async def download(h: ManagerHarness, c, folder: str, **body) -> bytes:
    r = await c.post(f"/folders/{folder}/request-download", json=body)
    resp = await h.storage_http().get(r["url"], params={"token": r["token"], **(
        {"archive": "true"} if body.get("archive") else {})})
    assert resp.status_code == 200, resp.text
    return resp.content


async def test_folder_lifecycle(manager):
    h = manager
    _, c = await new_user(h)
    name = unique()
    created = await c.post("/folders", json={"name": name, "usage_mode": "model", "cloneable": True})
    assert created["status"] == "ready" and created["ownership_type"] == "user" and created["usage_mode"] == "model"
    assert os.path.isdir(folder_dir(h, created))
    # VF-3 rules
    await expect_error(400, c.post("/folders", json={"name": name}))             # unique per owner
    await expect_error(400, c.post("/folders", json={"name": "x" * 65}))
    for bad in ("a/b", "..", "_", " lead", "nul\x00"):
        await expect_error(400, c.post("/folders", json={"name": bad}))
    await expect_error(400, c.post("/folders", json={"name": unique(), "usage_mode": "weird"}))
    await expect_error(400, c.post("/folders", json={"name": unique(), "host": "local:nope"}))
    await expect_error(403, c.post("/folders", json={"name": unique(), "group": "default"}))  # users: no project folders
    listed = {f["name"]: f for f in await c.get("/folders")}
    assert listed[name]["is_owner"] and listed[name]["permission"] == "wd" and listed[name]["cloneable"]
    # rename (owner) and its uniqueness
    other = unique()
    await c.post("/folders", json={"name": other})
    await expect_error(400, c.post(f"/folders/{name}/rename", json={"new_name": other}))
    await c.post(f"/folders/{name}/rename", json={"new_name": name + "-r"})
    name += "-r"
    info = await c.get(f"/folders/{name}")
    assert info["id"] == created["id"] and info["num_files"] == 0
    assert (await c.get(f"/folders/{created['id']}"))["name"] == name  # by id too
    # trash, the name stays taken, restore, purge only from the trash
    await upload(h, c, name, "keep.txt", b"kept")
    await expect_error(400, c.delete(f"/folders/{name}/purge"))
    await c.delete(f"/folders/{name}")
    trashed = {f["name"]: f for f in await c.get("/folders")}[name]
    assert trashed["status"] == "delete-pending"
    await expect_error(404, c.get(f"/folders/{name}/files"))
    await expect_error(400, c.post("/folders", json={"name": name}))
    await c.post(f"/folders/{name}/restore")
    assert await download(h, c, name, path="keep.txt") == b"kept"
    await expect_error(400, c.post(f"/folders/{name}/restore"))
    await c.delete(f"/folders/{name}")
    await c.delete(f"/folders/{name}/purge")
    assert name not in {f["name"] for f in await c.get("/folders")}
    assert not os.path.exists(folder_dir(h, created))
    # clone a cloneable folder
    src = unique()
    await c.post("/folders", json={"name": src, "cloneable": True})
    await upload(h, c, src, "a/b.txt", b"cloned bytes")
    clone = await c.post(f"/folders/{src}/clone", json={"target_name": src + "-c"})
    assert clone["id"] != (await c.get(f"/folders/{src}"))["id"] and clone["bgtask_id"]
    for _ in range(200):
        task = await c.get(f"/background-tasks/{clone['bgtask_id']}")
        if task["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert task["status"] == "done" and task["kind"] == "clone-folder", task
    assert {f["name"]: f["status"] for f in await c.get("/folders")}[src + "-c"] == "ready"
    assert await download(h, c, src + "-c", path="a/b.txt") == b"cloned bytes"


async def test_files_uploads_and_downloads(manager):
    h = manager
    _, c = await new_user(h)
    name = unique()
    await c.post("/folders", json={"name": name})
    await c.post(f"/folders/{name}/mkdir", json={"path": "foo/test", "parents": True})
    await expect_error(400, c.post(f"/folders/{name}/mkdir", json={"path": "foo/test"}))
    await c.post(f"/folders/{name}/mkdir", json={"path": "foo/test", "exist_ok": True})
    data = os.urandom(300_000)
    # an upload interrupted halfway goes on from the stored offset with a new token, same session
    first = await c.post(f"/folders/{name}/request-upload", json={"path": "foo/test/test2.txt", "size": len(data)})
    http = h.storage_http()
    resp = await http.patch(first["url"], params={"token": first["token"]}, content=data[:150_000],
                            headers={**TUS, "Upload-Offset": "0"})
    assert resp.status_code == 204 and resp.headers["Upload-Offset"] == "150000"
    again = await c.post(f"/folders/{name}/request-upload", json={
        "path": "foo/test/test2.txt", "size": len(data), "session": first["session"]})
    head = await http.head(again["url"], params={"token": again["token"]}, headers={"Tus-Resumable": "1.0.0"})
    assert head.headers["Upload-Offset"] == "150000"
    resp = await http.patch(again["url"], params={"token": again["token"]}, content=data[150_000:],
                            headers={**TUS, "Upload-Offset": "150000"})
    assert resp.status_code == 204
    await upload(h, c, name, "foo/test.txt", b"hello")
    await upload(h, c, name, "empty.txt", b"")
    assert hashlib.sha256(await download(h, c, name, path="foo/test/test2.txt")).digest() == \
        hashlib.sha256(data).digest()
    files = await c.get(f"/folders/{name}/files", params={"path": "foo"})
    items = {i["name"]: i for i in files["items"]}
    assert items["test"]["type"] == "DIRECTORY" and items["test.txt"]["size"] == 5
    assert '"filename": "test.txt"' in files["files"]
    root = {i["name"]: i for i in (await c.get(f"/folders/{name}/files"))["items"]}
    assert root["empty.txt"]["size"] == 0
    # a directory as a zip keeps its structure
    z = zipfile.ZipFile(io.BytesIO(await download(h, c, name, path="foo", archive=True)))
    assert {n.rstrip("/") for n in z.namelist()} >= {"foo/test.txt", "foo/test/test2.txt"} or \
        {n.rstrip("/") for n in z.namelist()} >= {"test.txt", "test/test2.txt"}
    # rename, move, delete
    await c.post(f"/folders/{name}/rename-file", json={"target_path": "foo/test.txt", "new_name": "renamed.txt"})
    await expect_error(400, c.post(f"/folders/{name}/rename-file", json={"target_path": "foo/renamed.txt",
                                                                         "new_name": "x" * 256}))
    await c.post(f"/folders/{name}/move-file", json={"src": "foo/renamed.txt", "dst": "moved.txt"})
    assert {i["name"] for i in (await c.get(f"/folders/{name}/files"))["items"]} == {"foo", "moved.txt", "empty.txt"}
    await expect_error(400, c.delete(f"/folders/{name}/delete-files", json={"files": ["foo"]}))  # not empty
    await c.delete(f"/folders/{name}/delete-files", json={"files": ["foo", "moved.txt"], "recursive": True})
    assert {i["name"] for i in (await c.get(f"/folders/{name}/files"))["items"]} == {"empty.txt"}


async def test_path_escapes_are_refused(manager):
    h = manager
    _, c = await new_user(h)
    name = unique()
    await c.post("/folders", json={"name": name})
    for bad in ("../x", "/etc/passwd", "a/../../b", "a\x00b", "x" * 256):
        await expect_error(400, c.post(f"/folders/{name}/mkdir", json={"path": bad}))
        await expect_error(400, c.post(f"/folders/{name}/request-upload", json={"path": bad, "size": 1}))
    await expect_error(400, c.get(f"/folders/{name}/files", params={"path": "../.."}))
    await c.post(f"/folders/{name}/mkdir", json={"path": "x"})
    await expect_error(400, c.post(f"/folders/{name}/move-file", json={"src": "x", "dst": "../../x"}))
    # a symlink planted on disk that points outside is not followed
    info = await c.get(f"/folders/{name}")
    os.symlink("/etc", os.path.join(folder_dir(h, info), "escape"))
    await expect_error(400, c.get(f"/folders/{name}/files", params={"path": "escape"}))
    await expect_error(400, c.post(f"/folders/{name}/request-upload", json={"path": "escape/x", "size": 1}))
    # a token is scoped to its folder and operation
    other = unique()
    await c.post("/folders", json={"name": other})
    r = await c.post(f"/folders/{name}/request-download", json={"path": "x"})
    resp = await h.storage_http().patch(r["url"].replace("/download", "/upload"), params={"token": r["token"]},
                                        content=b"x", headers={**TUS, "Upload-Offset": "0"})
    assert resp.status_code == 403


async def test_quota_refuses_before_writing(manager):
    h = manager
    u, c = await new_user(h)
    name = unique()
    await c.post("/folders", json={"name": name})
    qsid = f"user:{u['uuid']}"
    q = await h.admin().put("/folders/_/quota", json={"host": "local:volume1", "quota_scope_id": qsid,
                                                        "limit_bytes": 1000})
    assert q["limit_bytes"] == 1000 and q["explicit"] and q["supported"]
    await upload(h, c, name, "small.bin", b"x" * 600)
    e = await expect_error(413, c.post(f"/folders/{name}/request-upload", json={"path": "big.bin", "size": 600}))
    assert "quota" in e.type
    names = {i["name"] for i in (await c.get(f"/folders/{name}/files"))["items"]}
    assert names == {"small.bin"}                          # nothing partial behind
    status = await c.get("/folders/_/status")
    assert status["hosts"]["local:volume1"]["user"] == {"used_bytes": 600, "limit_bytes": 1000}
    # unset → the user policy's max size applies
    policy = unique("pol")
    await h.admin().post("/admin/resource-policies/user", json={"name": policy, "max_quota_scope_size": 5000,
                                                                 "max_folder_count": 2})
    await h.admin().patch(f"/admin/users/{u['email']}", json={"resource_policy": policy})
    q = await h.admin().delete("/folders/_/quota", params={"host": "local:volume1", "quota_scope_id": qsid})
    assert q["limit_bytes"] == 5000 and not q["explicit"] and q["default_limit_bytes"] == 5000
    await upload(h, c, name, "big.bin", b"y" * 3000)
    await expect_error(413, c.post(f"/folders/{name}/request-upload", json={"path": "huge.bin", "size": 2000}))
    # the policy's folder count (2)
    await c.post("/folders", json={"name": unique()})
    e = await expect_error(400, c.post("/folders", json={"name": unique()}))
    assert e.data == {"max_vfolder_count": 2}              # Backend.AI's name on its wire
    # quota administration: admins only, bad scopes refused
    await expect_error(403, c.get("/folders/_/quota", params={"host": "local:volume1", "quota_scope_id": qsid}))
    await expect_error(400, h.admin().put("/folders/_/quota", json={"host": "local:volume1",
                                                                      "quota_scope_id": "nobody:1",
                                                                      "limit_bytes": 1}))
    await expect_error(400, h.admin().put("/folders/_/quota", json={
        "host": "local:volume1", "quota_scope_id": qsid, "limit_bytes": -5}))


async def test_share_permission_matrix(manager):
    h = manager
    owner, oc = await new_user(h)
    rw_u, rwc = await new_user(h)
    ro_u, roc = await new_user(h)
    _, stranger = await new_user(h)
    name = unique("shared")
    await oc.post("/folders", json={"name": name})
    await upload(h, oc, name, "doc.txt", b"owned")
    await expect_error(400, oc.post(f"/folders/{name}/invite", json={"perm": "wd", "user_ids": [rw_u["email"]]}))
    await expect_error(404, oc.post(f"/folders/{name}/invite", json={"perm": "rw", "user_ids": ["no@x.test"]}))
    await oc.post(f"/folders/{name}/invite", json={"perm": "rw", "user_ids": [rw_u["email"]]})
    await oc.post(f"/folders/{name}/invite", json={"perm": "ro", "user_ids": [ro_u["email"]]})
    await expect_error(400, oc.post(f"/folders/{name}/invite", json={"perm": "ro", "user_ids": [ro_u["email"]]}))
    sent = (await oc.get("/folders/invitations/list-sent"))["invitations"]
    assert {i["invitee"] for i in sent} == {rw_u["email"], ro_u["email"]}
    for c in (rwc, roc):
        inv = (await c.get("/folders/invitations/list"))["invitations"]
        assert [i["vfolder_name"] for i in inv] == [name]
        await expect_error(404, stranger.post("/folders/invitations/accept", json={"inv_id": inv[0]["id"]}))
        await c.post("/folders/invitations/accept", json={"inv_id": inv[0]["id"]})
    assert {f["name"]: f["permission"] for f in await rwc.get("/folders")}[name] == "rw"
    assert {f["name"]: f["mount_permission"] for f in await roc.get("/folders")}[name] == "ro"
    # read: everyone with a share; the stranger does not learn the folder exists
    for c in (oc, rwc, roc):
        assert await download(h, c, name, path="doc.txt") == b"owned"
    await expect_error(404, stranger.get(f"/folders/{name}/files"))
    fid = (await oc.get(f"/folders/{name}"))["id"]
    await expect_error(404, stranger.get(f"/folders/{fid}"))
    await expect_error(404, stranger.post(f"/folders/{fid}/request-download", json={"path": "doc.txt"}))
    # write: owner and rw invitee; ro invitee refused
    await upload(h, rwc, name, "from-rw.txt", b"rw")
    await expect_error(403, roc.post(f"/folders/{name}/request-upload", json={"path": "x", "size": 1}))
    await expect_error(403, roc.post(f"/folders/{name}/mkdir", json={"path": "x"}))
    await expect_error(403, roc.delete(f"/folders/{name}/delete-files", json={"files": ["doc.txt"]}))
    # the folder itself: only its owner renames, trashes or manages shares
    for c in (rwc, roc):
        await expect_error(403, c.post(f"/folders/{name}/rename", json={"new_name": unique()}))
        await expect_error(403, c.delete(f"/folders/{name}"))
        await expect_error(403, c.post(f"/folders/{name}/invite", json={"perm": "ro", "user_ids": [owner["email"]]}))
        await expect_error(403, c.post("/folders/_/shared", json={"vfolder": name, "user": rw_u["email"], "perm": "ro"}))
    shares = (await oc.get("/folders/_/shared", params={"vfolder_id": fid}))["shared"]
    assert {s["shared_to"]["email"]: s["perm"] for s in shares} == {rw_u["email"]: "rw", ro_u["email"]: "ro"}
    # the owner downgrades the rw invitee, then removes the ro one; the ro one had left anyway
    await oc.post("/folders/_/shared", json={"vfolder": name, "user": rw_u["email"], "perm": "ro"})
    await expect_error(403, rwc.post(f"/folders/{name}/request-upload", json={"path": "y", "size": 1}))
    await roc.post(f"/folders/{name}/leave", json={})
    await expect_error(404, roc.get(f"/folders/{name}/files"))
    await oc.post("/folders/_/shared", json={"vfolder": name, "user": rw_u["email"], "perm": None})
    await expect_error(404, rwc.get(f"/folders/{name}"))


async def test_invitation_name_clash_and_decline(manager):
    h = manager
    _, oc = await new_user(h)
    invitee, ic = await new_user(h)
    name = unique("clash")
    await oc.post("/folders", json={"name": name})
    await ic.post("/folders", json={"name": name})
    e = await expect_error(400, oc.post(f"/folders/{name}/invite", json={"perm": "ro", "user_ids": [invitee["email"]]}))
    assert "already has a folder" in e.message
    other = unique("dec")
    await oc.post("/folders", json={"name": other})
    await oc.post(f"/folders/{other}/invite", json={"perm": "ro", "user_ids": [invitee["email"]]})
    inv = (await ic.get("/folders/invitations/list"))["invitations"][0]
    await ic.delete("/folders/invitations/delete", json={"inv_id": inv["id"]})
    assert (await ic.get("/folders/invitations/list"))["invitations"] == []
    await expect_error(404, ic.post("/folders/invitations/accept", json={"inv_id": inv["id"]}))
    # the inviter cancels a pending one
    await oc.post(f"/folders/{other}/invite", json={"perm": "rw", "user_ids": [invitee["email"]]})
    inv = (await oc.get("/folders/invitations/list-sent"))["invitations"][0]
    await oc.delete("/folders/invitations/delete", json={"inv_id": inv["id"]})
    assert (await ic.get("/folders/invitations/list"))["invitations"] == []


async def test_project_folders_members_and_admins(manager):
    h = manager
    sa = h.admin()
    project = await sa.post("/admin/projects", json={"name": unique("proj")})
    member, mc = await new_user(h)
    admin, ac = await new_user(h, role="admin")
    _, outsider = await new_user(h)
    await sa.post(f"/admin/projects/{project['id']}/members", json={"emails": [member["email"]]})
    name = unique("pf")
    created = await ac.post("/folders", json={"name": name, "group": project["id"], "permission": "ro"})
    assert created["ownership_type"] == "group" and created["quota_scope_id"] == f"project:{project['id']}"
    assert {f["name"]: f["permission"] for f in await mc.get("/folders")}[name] == "ro"   # VF-10
    await expect_error(404, outsider.get(f"/folders/{created['id']}"))
    await expect_error(403, mc.post(f"/folders/{name}/mkdir", json={"path": "x"}))
    await expect_error(403, mc.delete(f"/folders/{name}"))
    await ac.post(f"/folders/{name}/update-options", json={"permission": "rw"})
    await mc.post(f"/folders/{name}/mkdir", json={"path": "x"})
    # an admin share gives one user more than the members get
    await ac.post(f"/folders/{name}/update-options", json={"permission": "ro"})
    await ac.post(f"/folders/{name}/share", json={"permission": "rw", "emails": [member["email"]]})
    await mc.post(f"/folders/{name}/mkdir", json={"path": "y"})
    await ac.delete(f"/folders/{name}/unshare", json={"emails": [member["email"]]})
    await expect_error(403, mc.post(f"/folders/{name}/mkdir", json={"path": "z"}))
    status = await mc.get("/folders/_/status", params={"group_id": project["id"]})
    assert status["project_count"] >= 1 and status["hosts"]["local:volume1"]["project"] is not None
    await ac.delete(f"/folders/{name}")


async def test_a_mounted_folder_cannot_be_trashed(manager):
    h = manager
    u, c = await new_user(h)
    name = unique()
    f = await c.post("/folders", json={"name": name})
    async with h.state.ctx.db.begin() as s:
        project = (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
        sess = ComputeSession(name=unique("ms"), access_key=u["keypair"]["access_key"], user_id=uuid.UUID(u["uuid"]),
                              project_id=uuid.UUID(next(p["id"] for p in project if p["name"] == "default")),
                              domain_name="default", resource_group="default", image="x", status="RUNNING",
                              mounts=[{"folder_id": str(uuid.UUID(f["id"])), "name": name, "source": "/x",
                                       "target": f"/home/work/{name}", "read_only": False}])
        s.add(sess)
    e = await expect_error(409, c.delete(f"/folders/{name}"))
    assert sess.name in e.message
    async with h.state.ctx.db.begin() as s:
        row = await s.get(ComputeSession, sess.id)
        row.status = "TERMINATED"
    await c.delete(f"/folders/{name}")


async def test_hosts_and_volumes(manager):
    h = manager
    _, c = await new_user(h)
    hosts = await c.get("/folders/_/hosts")
    assert hosts["default"] == "local:volume1" and hosts["allowed"] == ["local:volume1"]
    info = hosts["volume_info"]["local:volume1"]
    assert info["backend"] == "vfs" and "quota" in info["capabilities"] and info["usage"]["total"] > 0
    assert await c.get("/folders/_/allowed_types") == ["user"]
    assert await h.admin().get("/folders/_/allowed_types") == ["user", "group"]
    vols = (await h.admin().get("/folders/_/volumes"))["volumes"]
    assert vols[0]["host"] == "local:volume1" and vols[0]["quota_supported"] is True
    # a policy without the host: creating a folder there is refused
    pol = unique("kpol")
    await h.admin().post("/admin/resource-policies/keypair", json={"name": pol, "allowed_folder_hosts": {}})
    u, c2 = await new_user(h)
    await h.admin().patch(f"/admin/keypairs/{u['keypair']['access_key']}", json={"resource_policy": pol})
    await expect_error(403, c2.post("/folders", json={"name": unique()}))
    assert (await c2.get("/folders/_/hosts"))["allowed"] == []


async def test_resuming_under_a_quota_and_whole_folder_archive(manager):
    h = manager
    u, c = await new_user(h)
    name = unique()
    await c.post("/folders", json={"name": name})
    await h.admin().put("/folders/_/quota", json={"host": "local:volume1", "quota_scope_id": f"user:{u['uuid']}",
                                                    "limit_bytes": 1000})
    data = os.urandom(600)
    first = await c.post(f"/folders/{name}/request-upload", json={"path": "big.bin", "size": 600})
    http = h.storage_http()
    resp = await http.patch(first["url"], params={"token": first["token"]}, content=data[:300],
                            headers={**TUS, "Upload-Offset": "0"})
    assert resp.status_code == 204
    # a fresh token for the same upload: its own reservation does not count against the quota
    again = await c.post(f"/folders/{name}/request-upload", json={"path": "big.bin", "size": 600,
                                                                  "session": first["session"]})
    resp = await http.patch(again["url"], params={"token": again["token"]}, content=data[300:],
                            headers={**TUS, "Upload-Offset": "300"})
    assert resp.status_code == 204
    # but another upload still is refused while the quota is used
    await expect_error(413, c.post(f"/folders/{name}/request-upload", json={"path": "more.bin", "size": 600}))
    z = zipfile.ZipFile(io.BytesIO(await download(h, c, name, path="", archive=True)))
    assert [n for n in z.namelist() if n.endswith("big.bin")] and \
        z.read(next(n for n in z.namelist() if n.endswith("big.bin"))) == data


async def test_group_filter_keeps_own_folders_and_upload_needs_a_path(manager):
    h = manager
    sa = h.admin()
    mine = unique("own")
    await sa.post("/folders", json={"name": mine})
    proj = await sa.post("/admin/projects", json={"name": unique("gp")})
    other = await sa.post("/admin/projects", json={"name": unique("gq")})
    await sa.post("/folders", json={"name": unique("pf"), "group": proj["id"]})
    theirs = unique("pf")
    await sa.post("/folders", json={"name": theirs, "group": other["id"]})
    names = {f["name"] for f in await sa.get("/folders", params={"group_id": proj["id"]})}
    assert mine in names and theirs not in names
    e = await expect_error(400, sa.post(f"/folders/{mine}/request-upload", json={"path": "", "size": 1}))
    assert e.data == {"path": "required"}


def _owner(path: str) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


async def test_files_belong_to_the_users_container_uid(manager):
    """A user whose sessions run as 2000:2000 owns what they create through the API (folder,
    directories, uploads, clones); a user without settings gets ``storage.file_owner``."""
    h = manager
    if os.geteuid() != 0:
        pytest.fail("the storage-proxy runs as root in these tests (as deployed)")
    _, mine = await new_user(h, container_uid=2000, container_gid=2000)
    _, plain = await new_user(h)
    for c, want in ((mine, (2000, 2000)), (plain, (1000, 1000))):
        name = unique()
        created = await c.post("/folders", json={"name": name, "cloneable": True})
        root = folder_dir(h, created)
        await c.post(f"/folders/{name}/mkdir", json={"path": "a/b", "parents": True})
        await upload(h, c, name, "up/loaded.txt", b"mine")
        await upload(h, c, name, "empty.txt", b"")
        made = [root, *(os.path.join(root, p) for p in ("a", "a/b", "up", "up/loaded.txt", "empty.txt"))]
        assert {p: _owner(p) for p in made} == {p: want for p in made}
        # renamed and moved entries keep their owner
        await c.post(f"/folders/{name}/rename-file", json={"target_path": "up/loaded.txt", "new_name": "r.txt"})
        assert _owner(os.path.join(root, "up", "r.txt")) == want
        clone = await c.post(f"/folders/{name}/clone", json={"target_name": name + "-c"})
        for _ in range(200):
            task = await c.get(f"/background-tasks/{clone['bgtask_id']}")
            if task["status"] != "running":
                break
            await asyncio.sleep(0.05)
        assert task["status"] == "done", task
        croot = folder_dir(h, clone)
        cloned = [croot, *(os.path.join(dp, n) for dp, dns, fns in os.walk(croot) for n in dns + fns)]
        assert len(cloned) == 6 and {_owner(p) for p in cloned} == {want}


async def test_listed_sizes_follow_uploads_and_deletes(manager):
    """GET /folders takes sizes from the storage-proxy's cached figures; writes through the API
    refresh them at once (the wire format stays: cur_size)."""
    h = manager
    _, c = await new_user(h)
    name, other = unique(), unique()
    await c.post("/folders", json={"name": name})
    await c.post("/folders", json={"name": other})

    async def sizes() -> dict[str, int]:
        return {f["name"]: f["cur_size"] for f in await c.get("/folders")}
    assert (await sizes()) == {name: 0, other: 0}
    await upload(h, c, name, "one.bin", b"1" * 1000)
    assert (await sizes()) == {name: 1000, other: 0}
    await upload(h, c, name, "two/three.bin", b"3" * 24)
    assert (await sizes())[name] == 1024
    info = await c.get(f"/folders/{name}")
    assert info["num_files"] == 2 and info["used_bytes"] == 1024
    await c.delete(f"/folders/{name}/delete-files", json={"files": ["one.bin"]})
    assert (await sizes()) == {name: 24, other: 0}
    await c.delete(f"/folders/{name}/delete-files", json={"files": ["two"], "recursive": True})
    assert (await sizes())[name] == 0

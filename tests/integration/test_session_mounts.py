"""Folders mounted into real sessions (VF-7, VF-11): read-write folders keep what sessions write,
read-only shares refuse writes, aliases, automount folders (.local keeps a pip --user package
across sessions, .linuxbrew, .ssh), and the refusals that come before anything runs."""

from __future__ import annotations

import io
import shlex
import uuid
import zipfile

import httpx
import pytest

from tests.support.sessions import IMAGE, SMALL, System, running_system, shell
from workbay.client.sdk import APIError
from workbay.manager.services.keys import generate_ssh_keypair

pytestmark = pytest.mark.timeout(300)
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("mounts")) as sysm:
        yield sysm


@pytest.fixture(scope="module")
async def users(system):
    return await system.login("user@workbay.local"), await system.login("user2@workbay.local")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def upload(client, folder: str, path: str, data: bytes) -> None:
    r = await client.post(f"/folders/{folder}/request-upload", json={"path": path, "size": len(data)})
    if data:
        async with httpx.AsyncClient() as http:
            resp = await http.patch(r["url"], params={"token": r["token"]}, content=data,
                                    headers={**TUS, "Upload-Offset": "0"})
            assert resp.status_code == 204, resp.text


async def download(client, folder: str, path: str) -> bytes:
    r = await client.post(f"/folders/{folder}/request-download", json={"path": path})
    async with httpx.AsyncClient() as http:
        resp = await http.get(r["url"], params={"token": r["token"]})
        assert resp.status_code == 200, resp.text
        return resp.content


async def start(client, name: str, **config) -> str:
    created = await client.post("/session", json={"image": IMAGE, "name": name,
                                                  "config": {"resources": SMALL, **config}})
    assert created["status"] == "RUNNING", created
    return created["sessionId"]


async def stop(system: System, client, sid: str) -> None:
    await client.delete(f"/session/{sid}")
    await system.wait_status(client, sid, "TERMINATED")


async def test_rw_persists_ro_share_refuses_and_aliases(system, users):
    user, user2 = users
    data, extra, shared = unique("data"), unique("extra"), unique("shared")
    await user.post("/folders", json={"name": data})
    await user.post("/folders", json={"name": extra})
    await user2.post("/folders", json={"name": shared})
    await upload(user2, shared, "readme.txt", b"from user2\n")
    await user2.post(f"/folders/{shared}/invite", json={"perm": "ro", "user_ids": ["user@workbay.local"]})
    inv = next(i for i in (await user.get("/folders/invitations/list"))["invitations"] if i["vfolder_name"] == shared)
    await user.post("/folders/invitations/accept", json={"inv_id": inv["id"]})

    sid = await start(user, unique("mnt"), mounts=[data, shared], mount_map={extra: "deep/extra"})
    out, err = await shell(user, sid, f"echo persisted > /home/work/{data}/out.txt && cat /home/work/{shared}/readme.txt"
                           f" && echo aliased > /home/work/deep/extra/a.txt && id -u")
    assert out.split() == ["from", "user2", "1000"], (out, err)
    out, err = await shell(user, sid, f"touch /home/work/{shared}/nope 2>&1; echo rc=$?")
    assert "Read-only file system" in out and "rc=1" in out, (out, err)
    # a folder mounted by a live session cannot go to the trash
    with pytest.raises(APIError) as e:
        await user.delete(f"/folders/{data}")
    assert e.value.status == 409
    await stop(system, user, sid)
    # what the session wrote is in the folders after it is gone
    assert await download(user, data, "out.txt") == b"persisted\n"
    assert await download(user, extra, "a.txt") == b"aliased\n"
    names = {i["name"] for i in (await user2.get(f"/folders/{shared}/files"))["items"]}
    assert names == {"readme.txt"}


def _wheel(module: str, value: int) -> bytes:
    """A minimal pure-Python wheel (no network, no build step inside the session)."""
    dist = f"{module}-0.1.dist-info"
    files = {
        f"{module}/__init__.py": f"VALUE = {value}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: workbay-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return buf.getvalue()


SSH_OPTS = ("-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o IdentitiesOnly=yes -o LogLevel=ERROR -p 2200")


async def ssh_rc(client, sid: str, private_key: str) -> int:
    """Exit code of ``ssh`` with ``private_key`` into the session's own sshd (tried a few times
    while sshd may still be starting; 255 when the key is refused)."""
    out, err = await shell(client, sid, (
        f"umask 077; printf '%s\\n' {shlex.quote(private_key.strip())} > /tmp/try-key; "
        f"for i in 1 2 3 4 5 6 7 8 9 10; do ssh -i /tmp/try-key {SSH_OPTS} work@127.0.0.1 true; "
        f"rc=$?; [ $rc = 0 ] && break; sleep 1; done; echo rc=$rc"))
    assert "rc=" in out, (out, err)
    return int(out.rsplit("rc=", 1)[1].split()[0])


async def ssh_folder(client) -> dict[str, bytes]:
    """Every file of the `.ssh` folder with its bytes (and size/mtime through the listing)."""
    items = (await client.get("/folders/.ssh/files"))["items"]
    return {i["name"]: (i["size"], i["modified"], await download(client, ".ssh", i["name"])) for i in items}


async def test_automount_folders(system, users):
    user, _ = users
    wheels = unique("wheels")
    await user.post("/folders", json={"name": wheels})
    await upload(user, wheels, "wbmountdemo-0.1-py3-none-any.whl", _wheel("wbmountdemo", 42))
    for name in (".local", ".linuxbrew", ".ssh"):
        await user.post("/folders", json={"name": name})
    # the user's own key (ID-13's kind: their pair, the public half in .ssh/authorized_keys)
    public, private = generate_ssh_keypair(comment="mount-test")
    await upload(user, ".ssh", "authorized_keys", (public + "\n").encode())
    await upload(user, ".ssh", "config", b"Host example\n  User me\n")
    before = await ssh_folder(user)
    listed = {f["name"]: f for f in await user.get("/folders")}
    assert listed[".local"]["is_automount"] and not listed[wheels]["is_automount"]

    first = await start(user, unique("pip1"), mounts=[wheels])
    await shell(user, first, f"pip install --user --no-index --no-cache-dir "
                f"/home/work/{wheels}/wbmountdemo-0.1-py3-none-any.whl")
    out, err = await shell(user, first, "touch /home/linuxbrew/.linuxbrew/brew-was-here; echo $?")
    assert out.strip() == "0", (out, err)
    out, err = await shell(user, first, "grep -c mount-test /home/work/.ssh/authorized_keys")
    assert out.strip() == "1", (out, err)
    old_session_key, err = await shell(user, first, "cat /home/work/id_container")
    assert "PRIVATE KEY" in old_session_key, err
    # both the session's key and the user's own key (from the .ssh folder) get in
    assert await ssh_rc(user, first, old_session_key) == 0
    assert await ssh_rc(user, first, private) == 0
    await stop(system, user, first)
    # the session left the persistent .ssh folder exactly as it was
    assert await ssh_folder(user) == before

    second = await start(user, unique("pip2"))  # no explicit mounts: the automount folders come anyway
    out, err = await shell(user, second, "python3 -c 'import wbmountdemo; print(wbmountdemo.VALUE)'")
    assert out.strip() == "42", (out, err)
    # an earlier session's key is not authorized any more; this session's and the user's are
    assert await ssh_rc(user, second, old_session_key) == 255
    this_session_key, _ = await shell(user, second, "cat /home/work/id_container")
    assert await ssh_rc(user, second, this_session_key) == 0
    assert await ssh_rc(user, second, private) == 0
    await stop(system, user, second)
    local = {i["name"] for i in (await user.get("/folders/.local/files"))["items"]}
    assert "lib" in local
    assert {i["name"] for i in (await user.get("/folders/.linuxbrew/files"))["items"]} == {"brew-was-here"}
    assert await ssh_folder(user) == before


async def test_files_uploaded_by_a_user_with_their_own_uid(system):
    """A user whose sessions run as 2000:2000 overwrites, in a session, a file they uploaded
    through the API (it is theirs, not storage.file_owner's), and creates files next to it."""
    email = f"{unique('uid')}@example.test"
    projects = (await system.admin.get("/admin/projects", params={"domain": "default"}))["items"]
    made = await system.admin.post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": "Uid2000!pass-word",
        "container_uid": 2000, "container_gid": 2000,
        "project_ids": [next(p["id"] for p in projects if p["name"] == "default")]})
    user = system.client(made["keypair"]["access_key"], made["keypair"]["secret_key"])
    data = unique("data")
    await user.post("/folders", json={"name": data})
    await user.post(f"/folders/{data}/mkdir", json={"path": "sub"})
    await upload(user, data, "sub/notes.txt", b"from the API\n")
    sid = await start(user, unique("uid"), mounts=[data])
    out, err = await shell(user, sid, f"cd /home/work/{data} && id -u && stat -c %u:%g sub/notes.txt && "
                           f"echo from the session > sub/notes.txt && touch sub/new.txt && echo ok")
    assert out.split() == ["2000", "2000:2000", "ok"], (out, err)
    await stop(system, user, sid)
    assert await download(user, data, "sub/notes.txt") == b"from the session\n"


async def test_mount_refusals(system, users):
    user, user2 = users
    theirs = unique("theirs")
    await user2.post("/folders", json={"name": theirs})
    fid = (await user2.get(f"/folders/{theirs}"))["id"]
    for mounts in ([theirs], [fid], ["no-such-folder"]):
        with pytest.raises(APIError) as e:
            await user.post("/session", json={"image": IMAGE, "name": unique("no"),
                                              "config": {"resources": SMALL, "mounts": mounts}})
        assert e.value.status == 404 and "No such virtual folder" in e.value.message
    mine = unique("mine")
    await user.post("/folders", json={"name": mine})
    for alias in ("../../etc", "/etc/x", "/home/work"):
        with pytest.raises(APIError) as e:
            await user.post("/session", json={"image": IMAGE, "name": unique("no"), "config": {
                "resources": SMALL, "mounts": [mine], "mount_map": {mine: alias}}})
        assert e.value.status == 400, alias
    assert (await user.get("/sessions", params={"status": "live"}))["items"] == []

"""The WebUI's storage folder pages against a real manager and storage-proxy: the Data page and its
tabs, the folder dialogs (create, rename, trash, restore, delete forever, clone), the explorer's
file operations, sharing and invitations on the Summary page, the admin Storage tab (volumes,
quotas), and API errors shown as clear messages."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from tests.support.manager import ADMIN_PASSWORD
from tests.support.webserver import WebVisitor, running_system

ADMIN = "admin@workbay.local"
PASSWORD = "Us3r!pass-word"
HOST = "local:volume1"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-folders")) as s:
        yield s


class Browser(WebVisitor):
    """A logged-in WebUI visitor: pages, and htmx requests carrying the CSRF token."""

    @property
    def hx(self) -> dict[str, str]:
        return {"HX-Request": "true", "X-CSRF-Token": self.token}

    async def get(self, url: str, htmx: bool = False, **kw) -> httpx.Response:
        return await self.http.get(url, headers=self.hx if htmx else None, **kw)

    async def post(self, url: str, data: dict | None = None) -> httpx.Response:
        return await self.http.post(url, data=data or {}, headers=self.hx)

    async def folder_id(self, name: str, tab: str = "general") -> str:
        page = (await self.get(f"/data?tab={tab}&size=100")).text
        row = re.search(r'<tr data-folder="' + re.escape(name) + r'">.*?</tr>', page, re.S)
        assert row, f"{name} not on the {tab} tab"
        return re.search(r"/data/([0-9a-f]{32})/", row.group(0)).group(1)


def trigger(resp: httpx.Response) -> dict:
    return json.loads(resp.headers.get("HX-Trigger") or "{}")


def toast(resp: httpx.Response) -> str:
    return trigger(resp).get("wb:toast", {}).get("message", "")


async def new_user(system, prefix: str = "u") -> str:
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
    await system.manager.admin().post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": PASSWORD})
    return email


@pytest.fixture
async def user(system):
    email = await new_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield email, await Browser(client).login(email, PASSWORD)


async def create(b: Browser, name: str, **extra) -> httpx.Response:
    return await b.post("/data", {"name": name, "host": HOST, "usage_mode": "general", "type": "user", **extra})


async def test_summary_and_data_pages_render_for_a_user(user):
    email, b = user
    summary = await b.get("/summary")
    assert summary.status_code == 200
    assert "Invitations" in summary.text and "No invitations" in summary.text
    assert 'href="/data"' in summary.text and 'href="/summary"' in summary.text
    assert 'href="/resources"' not in summary.text  # admin section hidden from users
    data = await b.get("/data")
    assert data.status_code == 200
    assert "No folders yet" in data.text and "Storage status" in data.text
    assert HOST in data.text  # the per-host quota panel
    for tab in ("automount", "models", "trash"):
        assert (await b.get(f"/data?tab={tab}")).status_code == 200
    # the manager has no "pipeline" usage mode, so the page has no such tab
    assert 'data-tab="pipeline"' not in data.text
    assert 'aria-current="page" data-tab="general"' in (await b.get("/data?tab=pipeline")).text
    assert (await b.get("/resources")).status_code == 403
    # the storage-proxy is reachable from the page (tus uploads go there directly)
    csp = data.headers["content-security-policy"]
    assert re.search(r"connect-src 'self' http://127\.0\.0\.1:\d+", csp)
    dialog = await b.get("/data/new", htmx=True)
    assert dialog.status_code == 200 and HOST in dialog.text
    assert 'id="fc-type-project"' not in dialog.text  # only admins create project folders
    assert "Capacity of local:volume1" in dialog.text


async def test_create_checks_names_and_shows_api_errors_in_place(user):
    email, b = user
    too_long = await create(b, "x" * 65)
    assert too_long.status_code == 200 and "1–64 characters long" in too_long.text  # the manager's rule
    assert 'id="fc-name-error"' in too_long.text
    assert not toast(too_long)
    slash = await create(b, "a/b")
    assert "cannot contain" in slash.text
    ok = await create(b, "first")
    assert toast(ok) == "Folder first was created."
    assert trigger(ok)["wb:close-modal"] is True and trigger(ok)["wb:changed"] is True
    again = await create(b, "first")
    assert not toast(again) and "A folder named first already exists." in again.text  # the manager's answer
    assert 'id="fc-name-error"' in again.text  # next to the name
    assert toast(await create(b, ".local")) == "Folder .local was created."
    assert toast(await create(b, "weights", usage_mode="model", cloneable="on")) == "Folder weights was created."
    general = (await b.get("/data")).text
    assert 'data-folder="first"' in general and 'data-folder=".local"' not in general
    assert 'data-folder=".local"' in (await b.get("/data?tab=automount")).text
    models = (await b.get("/data?tab=models")).text
    assert 'data-folder="weights"' in models and "Clone weights" in models
    assert 'data-folder="first"' not in (await b.get("/data?q=zzz")).text
    assert 'data-folder="first"' in (await b.get("/data?q=FIR")).text


async def test_rename_trash_restore_and_delete_forever(user):
    email, b = user
    await create(b, "old-name")
    fid = await b.folder_id("old-name")
    form = await b.get(f"/data/{fid}/rename", htmx=True)
    assert 'value="old-name"' in form.text
    renamed = await b.post(f"/data/{fid}/rename", {"new_name": "new-name"})
    assert toast(renamed) == "Folder old-name was renamed to new-name."
    confirm = await b.get(f"/data/{fid}/trash", htmx=True)
    assert "Move folder new-name to the trash?" in confirm.text
    assert toast(await b.post(f"/data/{fid}/trash")) == "Folder new-name was moved to the trash."
    trash = (await b.get("/data?tab=trash")).text
    assert 'data-folder="new-name"' in trash and "DELETE-PENDING" in trash
    assert 'data-folder="new-name"' not in (await b.get("/data")).text
    assert toast(await b.post(f"/data/{fid}/restore")) == "Folder new-name was restored."
    assert 'data-folder="new-name"' in (await b.get("/data")).text
    # restoring a folder that is not in the trash: the API's refusal as a toast
    again = await b.post(f"/data/{fid}/restore")
    assert again.status_code == 400 and trigger(again)["wb:toast"]["level"] == "danger"
    await b.post(f"/data/{fid}/trash")
    purge = await b.get(f"/data/{fid}/purge", htmx=True)
    assert 'data-wb-confirm="new-name"' in purge.text
    wrong = await b.post(f"/data/{fid}/purge", {"confirm": "new-nam"})
    assert "Type the folder&#39;s name exactly" in wrong.text and not toast(wrong)
    done = await b.post(f"/data/{fid}/purge", {"confirm": "new-name"})
    assert toast(done) == "Folder new-name was deleted forever."
    assert "The trash is empty." in (await b.get("/data?tab=trash")).text


async def upload(system, b: Browser, fid: str, path: str, content: bytes) -> None:
    """What the browser's tus client does: request-upload through /func, PATCH to the proxy."""
    ticket = (await b.http.post(f"/func/folders/{fid}/request-upload", json={"path": path, "size": len(content)})).json()
    storage = system.manager.storage_http()
    resp = await storage.patch(ticket["url"], params={"token": ticket["token"]}, content=content, headers={
        "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert resp.status_code == 204, resp.text


async def test_explorer_lists_makes_renames_and_deletes(system, user):
    email, b = user
    await create(b, "files")
    fid = await b.folder_id("files")
    empty = await b.get(f"/data/{fid}/explorer", htmx=True)
    assert "This folder is empty." in empty.text and "Upload folder" in empty.text
    assert 'data-writable="true"' in empty.text
    made = await b.post(f"/data/{fid}/mkdir", {"path": "", "name": "docs"})
    assert "Folder docs was created." in made.text and 'data-entry="docs"' in made.text
    await upload(system, b, fid, "docs/readme.txt", b"hello world")
    inside = await b.get(f"/data/{fid}/files?path=docs", htmx=True)
    assert 'data-entry="readme.txt"' in inside.text and "11 B" in inside.text
    assert 'data-path="docs"' in inside.text and "breadcrumb" in inside.text
    renamed = await b.post(f"/data/{fid}/rename-file", {"path": "docs", "target": "docs/readme.txt", "new_name": "README.md"})
    assert "readme.txt was renamed to README.md." in renamed.text and 'data-entry="README.md"' in renamed.text
    long_name = await b.post(f"/data/{fid}/rename-file", {"path": "docs", "target": "docs/README.md", "new_name": "n" * 256})
    assert "At most 255 characters." in long_name.text
    clash = await b.post(f"/data/{fid}/mkdir", {"path": "", "name": "docs"})
    assert 'role="alert"' in clash.text and "docs" in clash.text  # the storage-proxy's refusal, in place
    deleted = await b.post(f"/data/{fid}/delete-files", {"path": "", "target": "docs"})
    assert "docs deleted." in deleted.text and 'data-entry="docs"' not in deleted.text
    # a path trying to leave the folder lists the root instead
    assert 'data-path=""' in (await b.get(f"/data/{fid}/files?path=../..", htmx=True)).text


async def test_sharing_invitations_and_read_only_access(system, user):
    owner, b = user
    friend = await new_user(system, "friend")
    await create(b, "shared-stuff")
    fid = await b.folder_id("shared-stuff")
    dialog = await b.get(f"/data/{fid}/share", htmx=True)
    assert "Nobody uses this folder through a share yet." in dialog.text
    bad = await b.post(f"/data/{fid}/invite", {"emails": "not-an-email", "perm": "ro"})
    assert "Enter valid email addresses." in bad.text
    unknown = await b.post(f"/data/{fid}/invite", {"emails": "nobody-here@example.com", "perm": "ro"})
    assert "is-invalid" in unknown.text or "alert-danger" in unknown.text  # the manager's refusal, shown
    sent = await b.post(f"/data/{fid}/invite", {"emails": friend, "perm": "ro"})
    assert f"Invitation sent to {friend}." in sent.text
    assert f'data-invitation="{friend}"' in sent.text

    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        f = await Browser(client).login(friend, PASSWORD)
        summary = (await f.get("/summary")).text
        assert 'data-invitation="shared-stuff"' in summary and owner in summary
        inv_id = re.search(r"/summary/invitations/([^/]+)/accept", summary).group(1)
        accepted = await f.post(f"/summary/invitations/{inv_id}/accept")
        assert "You accepted the invitation to shared-stuff" in toast(accepted)
        assert "No invitations" in accepted.text
        page = (await f.get("/data")).text
        row = re.search(r'<tr data-folder="shared-stuff">.*?</tr>', page, re.S).group(0)
        assert "Read only" in row and "Shared with you" in row
        for control in ("Rename", "Move to trash", "Share"):
            assert f"{control} shared-stuff" not in row
        ffid = re.search(r"/data/([0-9a-f]{32})/", row).group(1)
        explorer = (await f.get(f"/data/{ffid}/explorer", htmx=True)).text
        assert "read-only for you" in explorer and "Upload files" not in explorer
        refused = await f.post(f"/data/{ffid}/mkdir", {"path": "", "name": "nope"})
        assert 'role="alert"' in refused.text  # the API refuses it anyway

    shares = await b.get(f"/data/{fid}/share", htmx=True)
    assert f'data-share="{friend}"' in shares.text and "No invitation is waiting" in shares.text
    user_uuid = re.search(r'name="user" value="([^"]+)"', shares.text).group(1)
    changed = await b.post(f"/data/{fid}/shares", {"user": user_uuid, "email": friend, "perm": "rw"})
    assert f"Permission of {friend} was changed." in changed.text
    assert re.search(r'<option value="rw" selected>', changed.text)
    removed = await b.post(f"/data/{fid}/shares", {"user": user_uuid, "email": friend, "perm": ""})
    assert f"{friend} can no longer use this folder." in removed.text
    assert "Nobody uses this folder through a share yet." in removed.text

    # an invitation can be canceled while pending, and declined by the invitee
    await b.post(f"/data/{fid}/invite", {"emails": friend, "perm": "rw"})
    pending = (await b.get(f"/data/{fid}/share", htmx=True)).text
    cancel_url = re.search(r'hx-post="(/data/[0-9a-f]+/invitations/[^/]+/cancel)"', pending).group(1)
    canceled = await b.post(cancel_url)
    assert "The invitation was canceled." in canceled.text and "No invitation is waiting" in canceled.text
    await b.post(f"/data/{fid}/invite", {"emails": friend, "perm": "ro"})
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        f = await Browser(client).login(friend, PASSWORD)
        summary = (await f.get("/summary")).text
        inv_id = re.search(r"/summary/invitations/([^/]+)/decline", summary).group(1)
        declined = await f.post(f"/summary/invitations/{inv_id}/decline")
        assert toast(declined) == "You declined the invitation to shared-stuff."
        assert 'data-folder="shared-stuff"' not in (await f.get("/data")).text
        # accepted, then left by the invitee
        await b.post(f"/data/{fid}/invite", {"emails": friend, "perm": "rw"})
        summary = (await f.get("/summary")).text
        inv_id = re.search(r"/summary/invitations/([^/]+)/accept", summary).group(1)
        await f.post(f"/summary/invitations/{inv_id}/accept")
        ffid = await f.folder_id("shared-stuff")
        assert "Stop using shared-stuff?" in (await f.get(f"/data/{ffid}/leave", htmx=True)).text
        left = await f.post(f"/data/{ffid}/leave")
        assert toast(left) == "You left the shared folder shared-stuff."
        assert 'data-folder="shared-stuff"' not in (await f.get("/data")).text
    assert "Nobody uses this folder through a share yet." in (await b.get(f"/data/{fid}/share", htmx=True)).text


async def test_api_errors_become_clear_messages(user):
    email, b = user
    missing = await b.get(f"/data/{uuid.uuid4().hex}/explorer", htmx=True)
    assert missing.status_code == 404
    message = toast(missing)
    assert message and "Traceback" not in message
    page = await b.get(f"/data/{uuid.uuid4().hex}/rename")
    assert page.status_code == 404 and "virtual folder" in page.text.lower()


async def test_admin_storage_tab_volumes_and_quotas(system):
    target = await new_user(system, "quota")
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        a = await Browser(client).login(ADMIN, ADMIN_PASSWORD)
        page = await a.get("/resources")
        assert page.status_code == 200
        assert 'data-volume="local:volume1"' in page.text and "vfs" in page.text
        assert "Select a user or a project first" in page.text
        shown = await a.get("/resources", params={"tab": "storage", "host": HOST, "scope": "user", "target": target})
        assert "Policy default" in shown.text and target in shown.text
        scope_id = re.search(r'data-scope="(user:[0-9a-f-]+)"', shown.text).group(1)
        dialog = await a.get("/resources/quota/edit", htmx=True, params={"host": HOST, "quota_scope_id": scope_id, "label": target})
        assert 'id="quota-limit_gib"' in dialog.text
        bad = await a.post("/resources/quota", {"host": HOST, "quota_scope_id": scope_id, "label": target, "limit_gib": "-1"})
        assert "greater than 0" in bad.text and not toast(bad)
        ok = await a.post("/resources/quota", {"host": HOST, "quota_scope_id": scope_id, "label": target, "limit_gib": "1.5"})
        assert toast(ok) == f"The quota of {target} on {HOST} was set."
        shown = await a.get("/resources", params={"tab": "storage", "host": HOST, "scope": "user", "target": target})
        assert "1.5 GiB" in shown.text and "Set here" in shown.text
        unset = await a.post("/resources/quota/unset", {"host": HOST, "quota_scope_id": scope_id, "label": target})
        assert toast(unset) == f"The quota of {target} on {HOST} was unset."
        shown = await a.get("/resources", params={"tab": "storage", "host": HOST, "scope": "user", "target": target})
        assert "Policy default" in shown.text
        projects = await a.get("/resources", params={"tab": "storage", "host": HOST, "scope": "project"})
        assert "Select a project" in projects.text and ">default" in projects.text
        nobody = await a.get("/resources", params={"tab": "storage", "host": HOST, "scope": "user", "target": "ghost@example.com"})
        assert nobody.status_code == 200 and 'role="alert"' in nobody.text
        # admins may create project folders; members see them without an invitation (VF-10)
        dialog = await a.get("/data/new", htmx=True)
        assert 'id="fc-type-project"' in dialog.text and 'id="fc-group"' in dialog.text
        project = re.search(r'<option value="([0-9a-f-]+)"[^>]*>default</option>', dialog.text).group(1)
        missing = await create(a, "team-data", type="project", group="")
        assert "Choose a project." in missing.text
        made = await create(a, "team-data", type="project", group=project, permission="ro")
        assert toast(made) == "Folder team-data was created."
        await system.manager.admin().post(f"/admin/projects/{project}/members", json={"emails": [target]})
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        member = await Browser(client).login(target, PASSWORD)
        page = (await member.get("/data")).text
        row = re.search(r'<tr data-folder="team-data">.*?</tr>', page, re.S).group(0)
        assert "Project" in row and "Read only" in row
        assert "Move to trash team-data" not in row and "Rename team-data" not in row
        assert re.search(r'data-testid="stat-project">\s*<div class="wb-stat-value">1', page)


async def test_domain_admins_see_their_hosts_on_the_storage_tab(system):
    email = f"dadmin-{uuid.uuid4().hex[:8]}@example.com"
    await system.manager.admin().post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": PASSWORD, "role": "admin"})
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        a = await Browser(client).login(email, PASSWORD)
        page = await a.get("/resources")
        assert page.status_code == 200  # volumes are superadmin-only: the allowed hosts instead
        assert 'data-volume="local:volume1"' in page.text and "vfs" in page.text


async def names_in(system, email: str, folder: str, path: str = "") -> set[str]:
    """What the folder holds at ``path``, as its owner sees it through the API (not the page)."""
    api = await system.manager.login(email, PASSWORD)
    return {e["name"] for e in (await api.get(f"/folders/{folder}/files", params={"path": path}))["items"]}


def notice(resp: httpx.Response) -> str:
    found = re.search(r'data-testid="explorer-notice">.*?<div>(.*?)</div>', resp.text, re.S)
    return found.group(1).strip() if found else ""


async def test_explorer_moves_entries_into_another_directory(system, user):
    email, b = user
    await create(b, "movable")
    fid = await b.folder_id("movable")
    for path, name in (("", "docs"), ("", "archive"), ("archive", "old")):
        await b.post(f"/data/{fid}/mkdir", {"path": path, "name": name})
    for path in ("docs/a.txt", "docs/b.txt", "c.txt", "archive/c.txt"):
        await upload(system, b, fid, path, path.encode())
    shown = await b.get(f"/data/{fid}/files?path=docs", htmx=True)
    assert 'hx-post="/data/' + fid + '/move-files"' in shown.text
    assert 'name="target" value="docs/a.txt" form="explorer-move"' in shown.text
    for choice in ("/", "/docs"):  # the root and the directories above are suggested
        assert f'<option value="{choice}">' in shown.text
    assert 'data-wb-move-target="/"' in shown.text  # the breadcrumb takes dropped entries

    moved = await b.post(f"/data/{fid}/move-files", {"path": "docs", "target": ["docs/a.txt", "docs/b.txt"],
                                                     "destination": "/archive/old/"})
    assert notice(moved) == "a.txt, b.txt moved to /archive/old."
    assert 'data-entry="a.txt"' not in moved.text and 'data-path="docs"' in moved.text
    assert await names_in(system, email, "movable", "archive/old") == {"a.txt", "b.txt"}
    assert await names_in(system, email, "movable", "docs") == set()
    # a directory with what it holds, back to the top
    up = await b.post(f"/data/{fid}/move-files", {"path": "archive", "target": "archive/old", "destination": "/"})
    assert notice(up) == "old moved to /."
    assert await names_in(system, email, "movable", "old") == {"a.txt", "b.txt"}

    async def refused(target, destination, path=""):
        before = {p: await names_in(system, email, "movable", p) for p in ("", "archive", "docs", "old")}
        resp = await b.post(f"/data/{fid}/move-files", {"path": path, "target": target, "destination": destination})
        assert resp.status_code == 200 and 'role="alert"' in resp.text
        assert {p: await names_in(system, email, "movable", p) for p in before} == before  # nothing moved
        for chosen in [target] if isinstance(target, str) else target:  # still chosen, to fix and retry
            assert re.search(rf'value="{re.escape(chosen)}" form="explorer-move"[^>]*checked', resp.text)
        if target:
            assert f'name="destination" value="{destination}"' in resp.text.replace("&#39;", "'")
        return notice(resp)

    # one name taken in the destination: none of the chosen entries move
    assert await refused(["old", "c.txt"], "archive") == (
        "/archive already holds c.txt. Rename or delete it first; nothing was moved.")
    assert await refused("docs", "/docs/deeper") == "A folder cannot be moved into itself: docs."
    assert await refused("c.txt", "/") == "c.txt is already in /."
    assert await refused("c.txt", "/nowhere") == "There is no directory /nowhere in this folder."
    assert await refused("c.txt", "/old/a.txt") == "There is no directory /old/a.txt in this folder."
    assert (await refused("c.txt", "../../etc")).startswith("Enter a directory of this folder")
    assert (await refused("c.txt", "x" * 256)).startswith("Enter a directory of this folder")
    assert await refused([], "/docs") == "Choose a file."


async def test_moving_needs_write_permission(system, user):
    owner, b = user
    await create(b, "guarded")
    fid = await b.folder_id("guarded")
    await b.post(f"/data/{fid}/mkdir", {"path": "", "name": "inbox"})
    await upload(system, b, fid, "note.txt", b"keep me")
    reader, writer = await new_user(system, "reader"), await new_user(system, "writer")
    for friend, perm in ((reader, "ro"), (writer, "rw")):
        await b.post(f"/data/{fid}/invite", {"emails": friend, "perm": perm})
        api = await system.manager.login(friend, PASSWORD)
        inv = (await api.get("/folders/invitations/list"))["invitations"][0]
        await api.post("/folders/invitations/accept", json={"inv_id": inv["id"]})
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        r = await Browser(client).login(reader, PASSWORD)
        rfid = await r.folder_id("guarded")
        listing = (await r.get(f"/data/{rfid}/files", htmx=True)).text
        assert "move-files" not in listing and 'name="target"' not in listing and "draggable" not in listing
        refused = await r.post(f"/data/{rfid}/move-files", {"path": "", "target": "note.txt", "destination": "/inbox"})
        assert 'role="alert"' in refused.text and "permission" in notice(refused)  # the API's refusal
    assert await names_in(system, owner, "guarded") == {"inbox", "note.txt"}
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        w = await Browser(client).login(writer, PASSWORD)
        wfid = await w.folder_id("guarded")
        done = await w.post(f"/data/{wfid}/move-files", {"path": "", "target": "note.txt", "destination": "inbox"})
        assert notice(done) == "note.txt moved to /inbox."
    assert await names_in(system, owner, "guarded", "inbox") == {"note.txt"}
    # someone without access learns nothing about the folder
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        stranger = await Browser(client).login(await new_user(system, "stranger"), PASSWORD)
        resp = await stranger.post(f"/data/{fid}/move-files", {"path": "inbox", "target": "inbox/note.txt",
                                                              "destination": "/"})
        assert resp.status_code == 404
    assert await names_in(system, owner, "guarded", "inbox") == {"note.txt"}


async def test_admins_share_a_project_folder_with_named_users(system):
    admin_api = system.manager.admin()
    side = await admin_api.post("/admin/projects", json={"name": f"side-{uuid.uuid4().hex[:6]}"})
    named = await new_user(system, "named")
    member = await new_user(system, "member")
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        a = await Browser(client).login(ADMIN, ADMIN_PASSWORD)
        dialog = await a.get("/data/new", htmx=True)
        project = re.search(r'<option value="([0-9a-f-]+)"[^>]*>default</option>', dialog.text).group(1)
        await admin_api.post(f"/admin/projects/{project}/members", json={"emails": [member]})
        # the named user works in another project: a shared project folder shows anyway
        await admin_api.post(f"/admin/projects/{side['id']}/members", json={"emails": [named]})
        assert toast(await create(a, "team-share", type="project", group=project, permission="ro")) \
            == "Folder team-share was created."
        fid = await a.folder_id("team-share")
        row = re.search(r'<tr data-folder="team-share">.*?</tr>', (await a.get("/data")).text, re.S).group(0)
        assert "Share team-share" in row
        share = await a.get(f"/data/{fid}/share", htmx=True)
        assert "Share with users" in share.text and f'hx-post="/data/{fid}/project-shares"' in share.text
        assert "Pending invitations" not in share.text and "Invite users" not in share.text
        unknown = await a.post(f"/data/{fid}/project-shares", {"emails": "ghost@example.com", "perm": "ro"})
        assert 'id="share-emails-error"' in unknown.text and "ghost@example.com" in unknown.text
        bad = await a.post(f"/data/{fid}/project-shares", {"emails": named, "perm": "wd"})
        assert "Choose read only or read &amp; write." in bad.text
        assert (await admin_api.get("/folders/_/shared", params={"vfolder_id": fid}))["shared"] == []
        done = await a.post(f"/data/{fid}/project-shares", {"emails": named, "perm": "ro"})
        assert f"{named} can now use this folder." in done.text and f'data-share="{named}"' in done.text

        async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as other:
            n = await Browser(other).login(named, PASSWORD)
            row = re.search(r'<tr data-folder="team-share">.*?</tr>', (await n.get("/data")).text, re.S).group(0)
            assert "Read only" in row and "Shared with you" in row and "Share team-share" not in row
            nfid = await n.folder_id("team-share")
            assert "read-only for you" in (await n.get(f"/data/{nfid}/explorer", htmx=True)).text

            user_uuid = re.search(r'name="user" value="([^"]+)"', done.text).group(1)
            changed = await a.post(f"/data/{fid}/shares", {"user": user_uuid, "email": named, "perm": "rw"})
            assert f"Permission of {named} was changed." in changed.text
            row = re.search(r'<tr data-folder="team-share">.*?</tr>', (await n.get("/data")).text, re.S).group(0)
            assert "Read &amp; write" in row
            removed = await a.post(f"/data/{fid}/shares", {"user": user_uuid, "email": named, "perm": ""})
            assert f"The share of {named} was removed." in removed.text and 'data-testid="no-shares"' in removed.text
            assert 'data-folder="team-share"' not in (await n.get("/data")).text

        # a member who is no admin sees the folder, but neither the share button nor the dialog
        async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as other:
            m = await Browser(other).login(member, PASSWORD)
            row = re.search(r'<tr data-folder="team-share">.*?</tr>', (await m.get("/data")).text, re.S).group(0)
            assert "Share team-share" not in row
            assert (await m.get(f"/data/{fid}/share", htmx=True)).status_code == 403
            sneaky = await m.post(f"/data/{fid}/project-shares", {"emails": named, "perm": "rw"})
            assert sneaky.status_code == 403
        assert (await admin_api.get("/folders/_/shared", params={"vfolder_id": fid}))["shared"] == []

"""The File Browser app (AP-6) in real sessions through the real app-proxy: a storage folder mounted
as its root; a directory tree uploaded, listed, renamed, moved, deleted and downloaded (files and zips)
through the API with the circuit's cookie; what it wrote is in the folder after the session; a
read-only share refuses writes; roots outside /home/work and paths leading outside the root are
refused; other users without the cookie get 403."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
import zipfile

import httpx
import pytest

from tests.support.sessions import IMAGE, SMALL, running_system
from workbay.client.sdk import APIError

pytestmark = pytest.mark.timeout(300)
XHR = {"X-Requested-With": "XMLHttpRequest"}
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("filebrowser"), appproxy=True) as sysm:
        yield sysm


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def start_session(client, mounts: list[str]) -> str:
    created = await client.post("/session", json={"image": IMAGE, "name": unique("fb"),
                                                  "config": {"resources": SMALL, "mounts": mounts}})
    assert created["status"] == "RUNNING", created
    return created["sessionId"]


async def shell(client, sid: str, command: str) -> str:
    result = (await client.post(f"/session/{sid}", json={
        "mode": "batch", "runId": "", "code": "", "options": {"exec": command}}))["result"]
    while result["status"] in ("continued", "clean-finished", "build-finished"):
        result = (await client.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"],
                                                              "code": ""}))["result"]
    return "".join(d for t, d in result["console"] if t == "stdout")


async def open_browser(client, sid: str, root: str | None) -> tuple[httpx.AsyncClient, str]:
    """Start the File Browser and follow its opening link: (a client holding the cookie, base URL)."""
    body = {"app": "filebrowser"}
    if root is not None:
        body["arguments"] = {"root": root}
    opened = await client.post(f"/session/{sid}/start-service", json=body)
    assert opened["protocol"] == "http" and opened["url"], opened
    base = f"http://127.0.0.1:{opened['port']}"
    browser = httpx.AsyncClient(follow_redirects=True, timeout=120)
    page = await browser.get(opened["url"])
    assert page.status_code == 200, page.text
    assert str(page.url).rstrip("/") == base
    assert "File Browser" in page.text and "webkitdirectory" in page.text and "webkitGetAsEntry" in page.text
    assert "<script src=" not in page.text and "<link rel=\"stylesheet\"" not in page.text  # self-contained
    return browser, base


async def listing(browser: httpx.AsyncClient, base: str, path: str = "") -> dict:
    resp = await browser.get(f"{base}/api/list", params={"path": path})
    assert resp.status_code == 200, resp.text
    return resp.json()


def names(listed: dict) -> dict[str, str]:
    return {i["name"]: i["type"] for i in listed["items"]}


async def post(browser: httpx.AsyncClient, base: str, op: str, body: dict, status: int = 200) -> dict:
    resp = await browser.post(f"{base}/api/{op}", json=body, headers=XHR)
    assert resp.status_code == status, (op, body, resp.status_code, resp.text)
    return resp.json()


async def upload(browser: httpx.AsyncClient, base: str, path: str, content, status: int = 201,
                 **params: str) -> dict:
    resp = await browser.put(f"{base}/api/upload", params={"path": path, **params}, content=content,
                             headers={**XHR, "Content-Type": "application/octet-stream"})
    assert resp.status_code == status, (path, resp.status_code, resp.text)
    return resp.json()


async def test_file_browser_on_a_mounted_folder(system):
    user = await system.login("user@workbay.local")
    data = unique("fbdata")
    await user.post("/folders", json={"name": data})
    sid = await start_session(user, [data])
    browser, base = await open_browser(user, sid, f"/home/work/{data}")
    async with contextlib.aclosing(browser):
        assert (await listing(browser, base)) == {"path": "", "root": data, "readonly": False,
                                                  "writable": True, "items": []}
        # a directory tree, as the page uploads it: one PUT per file with its relative path
        assert (await upload(browser, base, "a/b/c.txt", b"see\n")) == {"path": "a/b/c.txt", "size": 4}
        await upload(browser, base, "a/d.txt", b"dee\n")
        big = os.urandom(3 * 1024 * 1024 + 123)

        async def chunks():  # streamed (chunked) through the app-proxy
            for i in range(0, len(big), 256 * 1024):
                yield big[i:i + 256 * 1024]
        assert (await upload(browser, base, "a/big.bin", chunks()))["size"] == len(big)
        assert names(await listing(browser, base)) == {"a": "dir"}
        listed = await listing(browser, base, "a")
        assert names(listed) == {"b": "dir", "d.txt": "file", "big.bin": "file"}
        assert {i["name"]: i["size"] for i in listed["items"]}["big.bin"] == len(big)
        assert names(await listing(browser, base, "a/b")) == {"c.txt": "file"}

        # conflicts, overwrite, and what the API refuses
        await upload(browser, base, "a/d.txt", b"again", status=409)
        await upload(browser, base, "a/d.txt", b"dee v2\n", overwrite="1")
        for bad in ("../escape.txt", "/etc/x", "a/../../x", "a/" + "n" * 256):
            await upload(browser, base, bad, b"x", status=400)
        no_header = await browser.put(f"{base}/api/upload", params={"path": "csrf.txt"}, content=b"x")
        assert no_header.status_code == 403
        no_header = await browser.post(f"{base}/api/mkdir", json={"path": "csrf"})
        assert no_header.status_code == 403
        for bad in ("..", "/etc", "a/../.."):
            assert (await browser.get(f"{base}/api/list", params={"path": bad})).status_code == 400
        # a symlink leading outside the root is listed but never followed
        await shell(user, sid, f"ln -s /etc /home/work/{data}/etc-link")
        assert names(await listing(browser, base))["etc-link"] == "outside"
        assert (await browser.get(f"{base}/api/list", params={"path": "etc-link"})).status_code == 403
        assert (await browser.get(f"{base}/api/download", params={"path": "etc-link/passwd"})).status_code == 403
        await upload(browser, base, "etc-link/x.txt", b"x", status=403)

        # new folder, new file, rename, move, delete
        await post(browser, base, "mkdir", {"path": "moved"})
        await post(browser, base, "mkdir", {"path": "moved"}, status=409)
        await post(browser, base, "touch", {"path": "moved/empty.txt"})
        assert (await post(browser, base, "rename", {"path": "a/d.txt", "name": "e.txt"})) == {"path": "a/e.txt"}
        await post(browser, base, "rename", {"path": "a/e.txt", "name": "../x"}, status=400)
        assert (await post(browser, base, "move", {"paths": ["a/e.txt"], "to": "moved"})) == {
            "paths": ["moved/e.txt"]}
        await post(browser, base, "move", {"paths": ["a"], "to": "a/b"}, status=400)
        await post(browser, base, "move", {"paths": ["moved/e.txt"], "to": "../"}, status=400)
        await post(browser, base, "mkdir", {"path": "trash/deep/er", "parents": True})
        await upload(browser, base, "trash/deep/er/f.txt", b"f")
        assert (await post(browser, base, "delete", {"paths": ["trash", "moved/empty.txt", "etc-link"]})) == {
            "deleted": 3}
        await post(browser, base, "delete", {"paths": [""]}, status=400)
        assert names(await listing(browser, base)) == {"a": "dir", "moved": "dir"}
        assert names(await listing(browser, base, "moved")) == {"e.txt": "file"}
        assert (await shell(user, sid, "ls /etc/passwd")).strip() == "/etc/passwd"

        # downloads: a file as is, a folder (or several items) as a zip stream
        resp = await browser.get(f"{base}/api/download", params={"path": "moved/e.txt"})
        assert resp.status_code == 200 and resp.content == b"dee v2\n"
        assert 'filename="e.txt"' in resp.headers["content-disposition"]
        resp = await browser.get(f"{base}/api/download", params={"path": "a/big.bin"})
        assert resp.content == big
        resp = await browser.get(f"{base}/api/download", params={"path": "a"})
        assert resp.headers["content-type"] == "application/zip" and 'filename="a.zip"' in resp.headers[
            "content-disposition"]
        z = zipfile.ZipFile(io.BytesIO(resp.content))
        assert set(z.namelist()) == {"a/", "a/b/", "a/b/c.txt", "a/big.bin"}
        assert z.read("a/b/c.txt") == b"see\n" and z.read("a/big.bin") == big
        resp = await browser.get(f"{base}/api/download", params=[("path", "a/b"), ("path", "moved")])
        assert set(zipfile.ZipFile(io.BytesIO(resp.content)).namelist()) == {"b/", "b/c.txt", "moved/",
                                                                              "moved/e.txt"}
        assert (await browser.get(f"{base}/api/download", params={"path": "nope"})).status_code == 404

    # other users: no cookie, no app; and they cannot start one in this session
    async with httpx.AsyncClient(timeout=30) as stranger:
        for path in ("/", "/api/list", "/api/download?path=a/b/c.txt"):
            assert (await stranger.get(base + path)).status_code == 403, path
        refused = await stranger.put(f"{base}/api/upload", params={"path": "x.txt"}, content=b"x", headers=XHR)
        assert refused.status_code == 403
    other = await system.login("user2@workbay.local")
    with pytest.raises(APIError) as e:
        await other.post(f"/session/{sid}/start-service", json={"app": "filebrowser"})
    assert e.value.status == 404

    # what was written is in the storage folder after the session
    await user.delete(f"/session/{sid}")
    await system.wait_status(user, sid, "TERMINATED")
    top = {i["name"] for i in (await user.get(f"/folders/{data}/files"))["items"]}
    assert top == {"a", "moved"}
    inner = {i["name"] for i in (await user.get(f"/folders/{data}/files", params={"path": "a/b"}))["items"]}
    assert inner == {"c.txt"}
    r = await user.post(f"/folders/{data}/request-download", json={"path": "moved/e.txt"})
    async with httpx.AsyncClient() as http:
        got = await http.get(r["url"], params={"token": r["token"]})
    assert got.status_code == 200 and got.content == b"dee v2\n"


async def test_read_only_share_and_roots(system):
    user, owner = await system.login("user@workbay.local"), await system.login("user2@workbay.local")
    shared, mine = unique("fbshared"), unique("fbmine")
    await owner.post("/folders", json={"name": shared})
    r = await owner.post(f"/folders/{shared}/request-upload", json={"path": "readme.txt", "size": 5})
    async with httpx.AsyncClient() as http:
        resp = await http.patch(r["url"], params={"token": r["token"]}, content=b"hello",
                                headers={**TUS, "Upload-Offset": "0"})
        assert resp.status_code == 204, resp.text
    await owner.post(f"/folders/{shared}/invite", json={"perm": "ro", "user_ids": ["user@workbay.local"]})
    inv = next(i for i in (await user.get("/folders/invitations/list"))["invitations"]
               if i["vfolder_name"] == shared)
    await user.post("/folders/invitations/accept", json={"inv_id": inv["id"]})
    await user.post("/folders", json={"name": mine})
    sid = await start_session(user, [shared, mine])

    # roots outside /home/work (or missing) are refused before anything starts
    for root in ("/etc", "/home/work/../../etc", "/home", f"/home/work/{shared}/missing"):
        with pytest.raises(APIError) as e:
            await user.post(f"/session/{sid}/start-service",
                            json={"app": "filebrowser", "arguments": {"root": root}})
        assert e.value.status == 400 and "root" in e.value.message, (root, e.value.message)

    browser, base = await open_browser(user, sid, None)  # the default root: the whole home
    async with contextlib.aclosing(browser):
        top = await listing(browser, base)
        assert top["root"] == "work" and {shared: "dir", mine: "dir"}.items() <= names(top).items()
        ro = await listing(browser, base, shared)
        assert ro["readonly"] is True and ro["writable"] is False and names(ro) == {"readme.txt": "file"}
        refused = await upload(browser, base, f"{shared}/new.txt", b"nope", status=403)
        assert refused["error"] == "Read-only file system"
        refused = await upload(browser, base, f"{shared}/dir/tree/new.txt", b"nope", status=403)
        assert "Read-only file system" in refused["error"]
        for op, body in (("mkdir", {"path": f"{shared}/d"}), ("touch", {"path": f"{shared}/t"}),
                         ("rename", {"path": f"{shared}/readme.txt", "name": "x"}),
                         ("delete", {"paths": [f"{shared}/readme.txt"]}),
                         ("move", {"paths": [f"{shared}/readme.txt"], "to": mine})):
            got = await post(browser, base, op, body, status=403)
            assert "Read-only file system" in got["error"], (op, got)
        resp = await browser.get(f"{base}/api/download", params={"path": f"{shared}/readme.txt"})
        assert resp.content == b"hello"
        # the writable folder next to it takes uploads
        await upload(browser, base, f"{mine}/ok.txt", b"ok")
    await user.delete(f"/session/{sid}")
    await system.wait_status(user, sid, "TERMINATED")
    assert {i["name"] for i in (await owner.get(f"/folders/{shared}/files"))["items"]} == {"readme.txt"}
    assert {i["name"] for i in (await user.get(f"/folders/{mine}/files"))["items"]} == {"ok.txt"}


CHROMIUM = os.environ.get("WORKBAY_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


async def test_the_page_in_a_browser(system, tmp_path):
    """The page itself, through the proxy: a folder uploaded with its structure from the folder
    picker (progress shown per file), a new folder from the keyboard, the read-only error."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no chromium at {CHROMIUM} (WORKBAY_E2E_CHROMIUM)")
    from playwright.async_api import async_playwright

    user, owner = await system.login("user@workbay.local"), await system.login("user2@workbay.local")
    data, shared = unique("fbpage"), unique("fbpagero")
    await user.post("/folders", json={"name": data})
    await owner.post("/folders", json={"name": shared})
    await owner.post(f"/folders/{shared}/invite", json={"perm": "ro", "user_ids": ["user@workbay.local"]})
    inv = next(i for i in (await user.get("/folders/invitations/list"))["invitations"]
               if i["vfolder_name"] == shared)
    await user.post("/folders/invitations/accept", json={"inv_id": inv["id"]})
    sid = await start_session(user, [data, shared])
    opened = await user.post(f"/session/{sid}/start-service", json={"app": "filebrowser"})
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "one.txt").write_text("one")
    (tree / "sub" / "two.txt").write_text("two")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await b.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(opened["url"])
            await page.wait_for_selector(f"tr[data-name='{data}']")
            await page.focus(f"tr[data-name='{data}']")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#empty:not([hidden])")
            await page.set_input_files("#f-dir", str(tree))
            await page.wait_for_selector("#uploads li.done >> nth=1")
            assert await page.locator("#uploads li.err").count() == 0
            await page.wait_for_selector("tr[data-name='tree']")
            await page.keyboard.press("n")
            await page.wait_for_selector("dialog[open]")
            await page.fill("#dlg-input", "from-keyboard")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("tr[data-name='from-keyboard']")
            # the read-only share: the page says so, and an upload fails with the error
            await page.goto(opened["url"].split("/__workbay")[0] + f"/#/{shared}")
            await page.wait_for_selector("#notice:not([hidden])")
            await page.set_input_files("#f-files", str(tree / "one.txt"))
            await page.wait_for_selector("#uploads li.err")
            assert "Read-only file system" in await page.text_content("#alert")
            assert errors == []
        finally:
            await b.close()
    out = await shell(user, sid, f"cd /home/work/{data} && find . | sort && cat tree/sub/two.txt")
    assert out.split() == [".", "./from-keyboard", "./tree", "./tree/one.txt", "./tree/sub",
                           "./tree/sub/two.txt", "two"], out
    await user.delete(f"/session/{sid}")
    await system.wait_status(user, sid, "TERMINATED")

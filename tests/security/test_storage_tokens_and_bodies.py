"""Finding 10 (the storage half) and the storage-proxy parts of 13 and 14.

10: the manager's own file calls put a ``files`` token in the URL (``GET …/files?token=…``, which
httpx logs), and that token listed, created, renamed and deleted for about 27 minutes.  Now the
manager sends it in a header, it allows the one action it was issued for and lives a minute.
13: 50,000 nested ``[`` to ``/files/mkdir`` gave a 500.  14: bodies had no size limit, and
unauthenticated ones were read before the credential check.  Now a JSON body over 1 MiB is
refused 413 from its ``Content-Length`` (before it is read), a bad token in the query string or a
missing secret on the manager-facing API is refused 401 with the body unread, and deep nesting
is a 400."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import jwt
import pytest

from tests.security.test_storage_symlink_races import lite, make_folder  # noqa: F401 - fixture
from workbay.manager.services import storage_proxy


@pytest.fixture
def issued(monkeypatch):
    """The storage tokens the manager issues, as it issues them."""
    tokens: list[str] = []
    real = storage_proxy.issue_token

    def recording(*args, **kw):
        token = real(*args, **kw)
        tokens.append(token)
        return token

    monkeypatch.setattr(storage_proxy, "issue_token", recording)
    return tokens


async def test_files_token_not_in_urls_one_action_short_lived(lite, issued, caplog):  # noqa: F811
    caplog.set_level(logging.INFO, logger="httpx")
    _, user, data_dir, handle = lite
    folder = await make_folder(user, "tok", data_dir)
    (folder / "keep.txt").write_text("keep")
    issued.clear()
    items = (await user.get("/folders/tok/files"))["items"]
    assert [i["name"] for i in items] == ["keep.txt"]
    assert len(issued) == 1
    token = issued[0]
    # the manager's request to the proxy carried no token in its URL (httpx logs URLs)
    lines = [r.getMessage() for r in caplog.records if "/files" in r.getMessage()]
    assert lines and not any("token=" in line for line in lines), lines

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["op"] == "files" and claims["action"] == "list"
    assert claims["exp"] - time.time() <= 60  # storage.token_ttl is 1800 for transfers
    # what a leaked listing token can do: list, nothing else
    proxy = f"http://127.0.0.1:{handle.config.storage.client_port}"
    async with httpx.AsyncClient(base_url=proxy, timeout=20) as http:
        assert (await http.get("/files", params={"token": token})).status_code == 200
        for path, body in (("/files/delete", {"files": ["keep.txt"]}),
                           ("/files/mkdir", {"path": "made"}),
                           ("/files/rename", {"target_path": "keep.txt", "new_name": "x"}),
                           ("/files/move", {"src": "keep.txt", "dst": "y"})):
            r = await http.post(path, json={"token": token, **body})
            assert r.status_code == 403, (path, r.status_code, r.text)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def raw_request(port: int, head: str, body: bytes = b"") -> str:
    """Send a request head (and maybe part of the body) and return the status line of what
    comes back before the rest of the body is sent (a server that waits for it times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode()


async def test_bodies_capped_and_unauthenticated_bodies_unread(lite, issued):  # noqa: F811
    _, user, data_dir, handle = lite
    await make_folder(user, "bodies", data_dir)
    issued.clear()
    await user.get("/folders/bodies/files")
    token = issued[0]
    client_port, manager_port = handle.config.storage.client_port, handle.config.storage.manager_port
    big = 50 * 1024 * 1024

    def head(path: str, extra: str = "") -> str:
        return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {big}\r\n{extra}")

    # an over-sized body is refused from its Content-Length, before it is sent
    assert " 413 " in raw_request(client_port, head(f"/files/mkdir?token={token}"), b'{"pa')
    # a bad token, or none on the manager-facing API: refused with the body unread
    assert " 401 " in raw_request(client_port, head("/files/mkdir?token=forged"), b'{"pa')
    assert " 401 " in raw_request(manager_port, head("/folder/create"), b'{"vo')
    assert " 401 " in raw_request(manager_port, head("/folder/create", "X-Workbay-Secret: nope\r\n"))

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{client_port}", timeout=20) as http:
        r = await http.post("/files/mkdir", params={"token": token}, content=b"[" * 50_000,
                            headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500 and r.headers["content-type"] == "application/problem+json"
        r = await http.post("/files/mkdir", content=b'{"token": ' + b"[" * 50_000,
                            headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, r.text
    # a body streamed without a Content-Length is cut off as it passes the cap (1 MiB)
    piece = b'{"path": "' + b"a" * (1024 * 1024 + 100)
    chunked = (f"POST /files/mkdir?token={token} HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
    assert " 413 " in raw_request(client_port, chunked, f"{len(piece):x}\r\n".encode() + piece)

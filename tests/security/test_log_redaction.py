"""Finding 10 (the logging half): storage tokens were logged in full
(``httpx: HTTP Request: GET …/files?token=…``), and a logged token still worked for about 27
minutes.  Every log line the process makes -- httpx's, uvicorn's access log, any component's --
now carries ``?token=REDACTED``; Authorization and Cookie values are redacted too."""

from __future__ import annotations

import io
import logging

import httpx
import pytest

from tests.support.ports import free_port_base
from workbay.client.sdk import Client
from workbay.common.logging import redact
from workbay.lite import lite_config, start_in_thread

ADMIN_PASSWORD = "Adm1n!pass-word"
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}


def capture_access_log() -> tuple[logging.Handler, io.StringIO]:
    """uvicorn's access log switched on (Workbay keeps it at WARNING) and captured as uvicorn's
    own formatter prints it (the logger does not propagate to the root: caplog misses it).  Done
    after the servers started: uvicorn's logging config replaces the logger's handlers."""
    from uvicorn.logging import AccessFormatter

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s',
                                         use_colors=False))
    logger = logging.getLogger("uvicorn.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler, buf


async def test_storage_tokens_never_reach_the_log(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv("WORKBAY_ADMIN_PASSWORD", ADMIN_PASSWORD)
    caplog.set_level(logging.INFO)
    config = lite_config(tmp_path / "var", free_port_base())
    handle = start_in_thread(tmp_path / "var", 0, components=("manager", "storage-proxy"), config=config)
    tokens: list[str] = []
    access_handler, access_buf = capture_access_log()
    try:
        anon = Client(handle.manager_url)
        login = (await anon.post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": "admin@workbay.local",
            "password": ADMIN_PASSWORD}))["data"]
        admin = Client(handle.manager_url, login["access_key"], login["secret_key"])
        try:
            await admin.post("/folders", json={"name": "tokens"})
            up = await admin.post("/folders/tokens/request-upload", json={"path": "a.txt", "size": 5})
            down = await admin.post("/folders/tokens/request-download", json={"path": "a.txt"})
            tokens += [up["token"], down["token"], login["secret_key"]]
            async with httpx.AsyncClient(timeout=30) as http:
                r = await http.patch(up["url"], params={"token": up["token"]}, content=b"hello",
                                     headers={**TUS, "Upload-Offset": "0"})
                assert r.status_code == 204, r.text
                r = await http.get(down["url"], params={"token": down["token"]})
                assert r.content == b"hello"
                # the token in the URL itself, and a request that fails
                r = await http.get(f"{down['url']}?token={down['token']}")
                assert r.status_code == 200
                r = await http.get(down["url"], params={"token": down["token"] + "x"})
                assert r.status_code >= 400
        finally:
            await admin.close()
            await anon.close()
    finally:
        handle.stop()
        logging.getLogger("uvicorn.access").removeHandler(access_handler)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logged = caplog.text + access_buf.getvalue() + "".join(capfd.readouterr())
    # the lines are there (httpx's and uvicorn's), the tokens are not
    assert "HTTP Request: GET" in caplog.text and "/download?token=REDACTED" in caplog.text
    assert '"GET /download?token=REDACTED HTTP/1.1" 200' in access_buf.getvalue()
    assert '"PATCH /upload?token=REDACTED HTTP/1.1" 204' in access_buf.getvalue()
    for token in tokens:
        assert token not in logged
        assert token.split(".")[-1] not in logged  # not even the signature part


@pytest.mark.parametrize("line, secret", [
    ("GET http://h/files?token=abc.def.ghi&path=x", "abc.def.ghi"),
    ("GET /download?archive=true&token=s3cr3t#frag", "s3cr3t"),
    ("Authorization: BackendAI signMethod=HMAC-SHA256, credential=AKIAXX:deadbeef", "deadbeef"),
    ("{'cookie': 'workbay_session=s3ss10n', 'host': 'x'}", "s3ss10n"),
    ("[(b'authorization', b'Bearer t0k3n')]", "t0k3n"),
    ("Set-Cookie: workbay_session=c00k1e; HttpOnly", "c00k1e"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJvcCI6ImRvd25sb2FkIn0.c2lnbmF0dXJl in prose", "c2lnbmF0dXJl"),
])
def test_redact(line, secret):
    assert secret not in redact(line)
    assert "REDACTED" in redact(line)


def test_lines_without_secrets_are_left_alone():
    for line in ("GET /folders HTTP/1.1 200", "did you mean x? yes", "50% done", "cookies: 3",
                 "INSERT INTO t (a, b) VALUES (?, ?)"):
        assert redact(line) == line

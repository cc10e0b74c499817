"""CORS on the storage-proxy: the WebUI (another origin) calls the client-facing app straight from
the browser with tokens; the manager-facing app answers no CORS at all."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from workbay.common.config import load_config
from workbay.storage.app import create_client_app, create_manager_app
from workbay.storage.tokens import issue_token
from workbay.storage.volumes import Volumes

SECRET = "storage-secret-for-cors-tests-" + "y" * 16
QSID = f"user:{uuid.UUID(int=0xC0)}"
ORIGIN = "http://127.0.0.1:8090"


def _listed(value: str | None) -> set[str]:
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


class Proxy:
    def __init__(self, tmp_path) -> None:
        config = load_config(data_dir=tmp_path, secrets={"storage": SECRET})
        self.volumes = Volumes(config)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_client_app(config, self.volumes)),
            base_url="http://storage")
        self.manager = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_manager_app(config, self.volumes)),
            base_url="http://storage-mgr", headers={"X-Workbay-Secret": SECRET})

    async def folder(self):
        vfid = uuid.uuid4().hex
        r = await self.manager.post("/folder/create", json={"volume": "volume1", "vfid": vfid,
                                                            "quota_scope_id": QSID})
        assert r.status_code == 201, r.text
        return vfid, self.volumes.get("volume1").folder_path(vfid)

    def token(self, op: str, vfid: str, relpath: str = "", **extra) -> str:
        return issue_token(SECRET, op, "local:volume1", vfid, relpath, 60, **extra)


@pytest.fixture
async def proxy(tmp_path):
    p = Proxy(tmp_path)
    yield p
    await p.client.aclose()
    await p.manager.aclose()


async def test_preflight_for_a_tus_patch(proxy):
    vfid, _ = await proxy.folder()
    tok = proxy.token("upload", vfid, "up.bin", size=10)
    r = await proxy.client.options("/upload", params={"token": tok}, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "tus-resumable, upload-offset, upload-length, "
                                          "content-type"})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    assert {"get", "head", "post", "patch", "delete", "options"} \
        <= _listed(r.headers["access-control-allow-methods"])
    allowed = _listed(r.headers["access-control-allow-headers"])
    assert {"tus-resumable", "upload-offset", "upload-length", "content-type", "range",
            "if-range"} <= allowed
    # other preflights the WebUI makes: a ranged download, a JSON POST, a DELETE
    for method, req_headers in (("GET", "range, if-range"), ("POST", "content-type"),
                                ("DELETE", "content-type"), ("HEAD", "tus-resumable")):
        r = await proxy.client.options("/files/delete" if method in ("POST", "DELETE")
                                       else "/download", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": req_headers})
        assert r.status_code == 200, (method, r.text)
        assert r.headers["access-control-allow-origin"] == "*"
    # a method the client API does not offer is refused
    r = await proxy.client.options("/upload", headers={"Origin": ORIGIN,
                                                       "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 400 and "access-control-allow-methods" in r.headers
    assert "put" not in _listed(r.headers["access-control-allow-methods"])


async def test_plain_tus_options_still_answers_tus(proxy):
    for headers in ({}, {"Origin": ORIGIN}):  # no Access-Control-Request-Method: not a preflight
        r = await proxy.client.options("/upload", headers=headers)
        assert r.status_code == 204, r.text
        assert r.headers["tus-version"] == "1.0.0" and r.headers["tus-resumable"] == "1.0.0"
        assert "tus-max-size" in r.headers
        if headers:
            assert r.headers["access-control-allow-origin"] == "*"
            assert {"tus-version", "tus-max-size"} \
                <= _listed(r.headers["access-control-expose-headers"])
        else:
            assert "access-control-allow-origin" not in r.headers


async def test_tus_patch_from_another_origin_exposes_upload_headers(proxy):
    vfid, path = await proxy.folder()
    data = os.urandom(3000)
    tok = proxy.token("upload", vfid, "dir/up.bin", size=len(data), session="cors-1")
    tus = {"Origin": ORIGIN, "Tus-Resumable": "1.0.0",
           "Content-Type": "application/offset+octet-stream"}
    r = await proxy.client.patch("/upload", params={"token": tok}, content=data[:1000],
                                 headers=tus | {"Upload-Offset": "0"})
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    exposed = _listed(r.headers["access-control-expose-headers"])
    assert {"upload-offset", "upload-length", "tus-resumable", "tus-version", "tus-max-size",
            "content-disposition", "content-length", "location"} <= exposed
    assert r.headers["upload-offset"] == "1000" and r.headers["upload-length"] == "3000"
    # HEAD (resume) and an offset conflict: the browser must be able to read Upload-Offset
    r = await proxy.client.head("/upload", params={"token": tok},
                                headers={"Origin": ORIGIN, "Tus-Resumable": "1.0.0"})
    assert r.status_code == 200 and r.headers["upload-offset"] == "1000"
    assert r.headers["access-control-allow-origin"] == "*"
    r = await proxy.client.patch("/upload", params={"token": tok}, content=data[:10],
                                 headers=tus | {"Upload-Offset": "0"})
    assert r.status_code == 409 and r.headers["upload-offset"] == "1000"
    assert r.headers["access-control-allow-origin"] == "*"
    assert "upload-offset" in _listed(r.headers["access-control-expose-headers"])
    r = await proxy.client.patch("/upload", params={"token": tok}, content=data[1000:],
                                 headers=tus | {"Upload-Offset": "1000"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "3000"
    assert (path / "dir" / "up.bin").read_bytes() == data


async def test_download_and_files_from_another_origin(proxy):
    vfid, path = await proxy.folder()
    data = os.urandom(5000)
    (path / "résumé.bin").write_bytes(data)
    tok = proxy.token("download", vfid, "résumé.bin")
    r = await proxy.client.get("/download", params={"token": tok}, headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.content == data
    assert r.headers["access-control-allow-origin"] == "*"
    exposed = _listed(r.headers["access-control-expose-headers"])
    assert {"content-disposition", "content-length"} <= exposed
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.bin" in r.headers["content-disposition"]
    r = await proxy.client.get("/download", params={"token": tok},
                               headers={"Origin": ORIGIN, "Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["access-control-allow-origin"] == "*"

    r = await proxy.client.get("/files", params={"token": proxy.token("files", vfid)},
                               headers={"Origin": ORIGIN})
    assert r.status_code == 200 and [i["name"] for i in r.json()["items"]] == ["résumé.bin"]
    assert r.headers["access-control-allow-origin"] == "*"
    # errors are readable too (problem+json with the CORS headers)
    r = await proxy.client.get("/download", params={"token": "bogus"}, headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.json()["type"].endswith("/auth-failed")
    assert r.headers["access-control-allow-origin"] == "*"
    # no Origin: no CORS headers
    r = await proxy.client.get("/download", params={"token": tok})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_manager_facing_app_has_no_cors(proxy):
    r = await proxy.manager.options("/volumes", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-workbay-secret"})
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code != 200
    r = await proxy.manager.get("/volumes", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers

"""Issue 10, findings 13 and 14: request bodies at the manager.

A real manager (and storage-proxy) over loopback HTTP.  Every refusal is problem+json with a
4xx type and changes nothing:

- a body over ``manager.max_request_body`` (4 MiB) is answered 413 before it is parsed -- from
  its Content-Length, and while it streams when it has none (chunked); a 5 MiB folder-creation
  body used to create the folder;
- an unsigned (or wrongly signed) request to a protected path is refused before its body is read:
  the answer comes while the client has sent only the headers of a 50 MB body;
- the public login path takes at most 64 KiB;
- 50,000 nested ``[`` to ``POST /folders`` and to ``/auth/authorize`` answer 400
  ``invalid-api-params`` (they used to be a 500 and a 400 typed ``internal-server-error``), and so
  do ``NaN``/``Infinity`` literals, which are not JSON.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.sessions import System
from workbay.common import signing
from workbay.common.http import MAX_JSON_DEPTH

MIB = 1024 * 1024
PROBLEM = "https://api.backend.ai/probs/"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    sysm = System(tmp_path_factory.mktemp("bodies"))
    try:
        await sysm.start(agent=False)
        sysm.user = await sysm.login("user@workbay.local")
        yield sysm
    finally:
        await sysm.close()


def signed(sysm: System, method: str, path: str, ctype: str = "application/json") -> dict[str, str]:
    c = sysm.user
    host = urlsplit(sysm.url).netloc
    return {"X-BackendAI-Version": c.api_version, "Content-Type": ctype,
            **signing.sign_headers(c.access_key, c.secret_key, method, path, host, ctype, c.api_version)}


async def folder_names(sysm: System) -> set[str]:
    return {f["name"] for f in await sysm.user.get("/folders")}


def assert_problem(resp: httpx.Response, status: int, kind: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"] == PROBLEM + kind, body
    return body


async def test_a_body_over_the_limit_is_refused_before_parsing(system):
    before = await folder_names(system)
    big = json.dumps({"name": "big-body", "pad": "x" * (5 * MIB)}).encode()
    async with httpx.AsyncClient(timeout=60) as http:
        resp = await http.post(system.url + "/folders", content=big, headers=signed(system, "POST", "/folders"))
    body = assert_problem(resp, 413, "request-too-large")
    assert body["data"]["max_bytes"] == 4 * MIB
    assert await folder_names(system) == before

    # the same without a Content-Length (chunked): counted while it streams
    async def chunks():
        yield b'{"name": "chunked-body", "pad": "'
        for _ in range(8):
            yield b"x" * MIB
        yield b'"}'

    async with httpx.AsyncClient(timeout=60) as http:
        resp = await http.post(system.url + "/folders", content=chunks(), headers=signed(system, "POST", "/folders"))
    assert_problem(resp, 413, "request-too-large")
    # ... and answered once past the limit, while the body has not ended (nor ever will)
    host = urlsplit(system.url).netloc
    chunked_head = "\r\n".join([
        "POST /folders HTTP/1.1", f"Host: {host}", "Transfer-Encoding: chunked",
        *(f"{k}: {v}" for k, v in signed(system, "POST", "/folders").items())]) + "\r\n\r\n"
    one_mib_chunk = b"%x\r\n" % MIB + b"x" * MIB + b"\r\n"
    status, body = await raw_request(system.url, chunked_head, b'7\r\n{"pad":\r\n' + one_mib_chunk * 5)
    assert status == 413 and json.loads(body)["type"] == PROBLEM + "request-too-large"
    assert await folder_names(system) == before

    # a body under the limit still works
    await system.user.post("/folders", json={"name": "small-body", "pad": "x" * 1000})
    assert "small-body" in await folder_names(system)


async def raw_request(url: str, head: str, body_prefix: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` (and a first bit of body), never the rest; the status line and body that come
    back.  An answer here proves the server did not wait for the body."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head.encode() + body_prefix)
        await writer.drain()
        data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        status = int(data.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in data.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return status, await asyncio.wait_for(reader.readexactly(length), 20)
    finally:
        writer.close()


def head(method: str, path: str, host: str, length: int, headers: dict[str, str] | None = None) -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}",
             "Content-Type: application/json", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return "\r\n".join(lines) + "\r\n\r\n"


async def test_unsigned_bodies_are_not_read(system):
    host = urlsplit(system.url).netloc
    fifty_mb = 50 * 1000 * 1000
    # no signature: 401 while the 50 MB body is still unsent
    status, body = await raw_request(system.url, head("POST", "/folders", host, fifty_mb), b'{"name": "')
    assert status == 401 and json.loads(body)["type"] == PROBLEM + "auth-failed"
    # a wrong signature: the same
    bad = signed(system, "POST", "/folders")
    bad["Authorization"] = bad["Authorization"][:-4] + "AAAA"
    status, body = await raw_request(system.url, head("POST", "/folders", host, fifty_mb, bad))
    assert status == 401
    # the agents' internal API without the cluster secret
    status, _ = await raw_request(system.url, head("POST", "/internal/agents/heartbeat", host, fifty_mb))
    assert status == 401
    # the public login path: 64 KiB at most, refused from the Content-Length alone
    status, body = await raw_request(system.url, head("POST", "/auth/authorize", host, fifty_mb))
    assert status == 413 and json.loads(body)["type"] == PROBLEM + "request-too-large"
    # the 5 MiB a signed request may not send either
    status, _ = await raw_request(system.url, head("POST", "/folders", host, 5 * MIB, signed(system, "POST", "/folders")))
    assert status == 413


async def test_deep_nesting_is_a_400_everywhere(system):
    before = await folder_names(system)
    deep = b"[" * 50_000
    async with httpx.AsyncClient(timeout=60) as http:
        resp = await http.post(system.url + "/folders", content=deep, headers=signed(system, "POST", "/folders"))
        body = assert_problem(resp, 400, "invalid-api-params")
        assert "nested too deeply" in body["msg"]
        # a body model parsed by the framework (/auth/authorize): the same, typed
        resp = await http.post(system.url + "/auth/authorize", content=deep,
                               headers={"Content-Type": "application/json"})
        assert_problem(resp, 400, "invalid-api-params")
        # nesting inside an otherwise valid object; brackets inside strings do not count
        nested = b'{"name": "deep-one", "x": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}"
        resp = await http.post(system.url + "/folders", content=nested, headers=signed(system, "POST", "/folders"))
        assert_problem(resp, 400, "invalid-api-params")
        # a number too large for a float is not infinity
        resp = await http.post(system.url + "/folders", content=b'{"name": "big-number", "quota": 1e400}',
                               headers=signed(system, "POST", "/folders"))
        assert "out of range" in assert_problem(resp, 400, "invalid-api-params")["msg"]
        # NaN / Infinity are not JSON
        for literal in (b"NaN", b"Infinity", b"-Infinity"):
            resp = await http.post(system.url + "/folders", content=b'{"name": "nan-one", "quota": ' + literal + b"}",
                                   headers=signed(system, "POST", "/folders"))
            assert_problem(resp, 400, "invalid-api-params")
        # a body the framework cannot read at all answers a 4xx type, not internal-server-error
        resp = await http.post(system.url + "/auth/authorize", content=b'{"type": "keypair", "username": ',
                               headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500 and "internal-server-error" not in resp.text
    await system.user.post("/folders", json={"name": "fine-one", "note": "[" * 500})
    assert await folder_names(system) == before | {"fine-one"}

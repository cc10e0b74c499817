"""Property-based fuzzing of every manager operation from its own OpenAPI schema (schemathesis):
whatever a client sends, the answer is never a 5xx, errors are problem+json, and every answer has a
status code, a content type and a body that the schema declares for it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.databases import throwaway_db
from tests.support.manager import start_manager
from workbay.common import signing
from workbay.common.config import load_config
from workbay.manager.app import create_app

schema = schemathesis.openapi.from_dict(create_app(load_config()).openapi())
# The answer must be one the operation declares: its status code, its media type, its body's schema.
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
async def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    async with throwaway_db("sqlite", tmp) as url:
        h = await start_manager(url, tmp)
        try:
            yield h
        finally:
            await h.close()


@pytest.fixture(scope="module")
def signer(live):
    def request(method: str, path: str, query: dict | None, body) -> httpx.Request:
        qs = urlencode(query or {}, doseq=True)
        pq = f"{path}?{qs}" if qs else path
        content = json.dumps(body).encode() if body is not None else b""
        ctype = "application/json" if body is not None else "text/plain"
        headers = signing.sign_headers(live.admin_access_key, live.admin_secret_key, method, pq,
                                       "manager.test", ctype, "v7.20230615")
        return method, pq, content, headers
    return request


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
async def test_no_server_errors(case, live, signer):
    if case.path.startswith("/events/"):
        return  # endless SSE streams: covered by the integration tests
    body = case.body if isinstance(case.body, (dict, list)) else None
    method, pq, content, headers = signer(case.method.upper(), case.formatted_path, case.query, body)
    transport = httpx.ASGITransport(app=live.app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://manager.test") as client:
        resp = await client.request(method, pq, content=content, headers=headers)
    assert resp.status_code < 500, f"{method} {pq} {content[:200]!r} -> {resp.status_code} {resp.text[:300]}"
    if resp.status_code >= 400:
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["type"].startswith("https://api.backend.ai/probs/") and problem["title"]
    case.validate_response(resp, checks=CONFORMANCE)

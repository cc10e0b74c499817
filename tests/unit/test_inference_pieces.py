"""The pure pieces of the inference listener (appproxy/inference.py) and the service table
(appproxy/services.py): path split, token header, the head a replica gets, percentiles, the rate
window, and what a PUT keeps, replaces and retires."""

from __future__ import annotations

import json
import time

import pytest

from workbay.appproxy.inference import bearer, problem, request_head, split_target
from workbay.appproxy.services import NameTaken, RateWindow, RouteSpec, ServiceSpec, ServiceTable, percentile
from workbay.appproxy.tokens import issue_service_token

SECRET = "unit-test-secret-of-32-bytes-or-more"


@pytest.mark.parametrize(("target", "name", "rest"), [
    (b"/svc/v1/models", b"svc", b"/v1/models"),
    (b"/svc/", b"svc", b"/"),
    (b"/svc", b"svc", b"/"),
    (b"/svc?x=1", b"svc", b"/?x=1"),
    (b"/svc/a/b?x=/y", b"svc", b"/a/b?x=/y"),
    (b"/", b"", b"/"),
])
def test_split_target(target: bytes, name: bytes, rest: bytes) -> None:
    assert split_target(target) == (name, rest)


def test_bearer() -> None:
    assert bearer([]) is None
    assert bearer([(b"Authorization", b"Bearer abc")]) == b"abc"
    assert bearer([(b"authorization", b"BackendAI  abc ")]) == b"abc"
    assert bearer([(b"AUTHORIZATION", b"bearer abc")]) == b"abc"
    assert bearer([(b"Authorization", b"Basic abc")]) == b""
    assert bearer([(b"Authorization", b"Bearer")]) == b""


def test_request_head_drops_authorization_hop_by_hop_and_forged_forwarding() -> None:
    headers = [(b"Host", b"models.example"), (b"Authorization", b"Bearer t"), (b"Connection", b"close"),
               (b"X-Forwarded-For", b"6.6.6.6"), (b"Content-Type", b"application/json"),
               (b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")]
    first, rest = request_head(b"POST", b"/v1/completions", "1.1", headers, client_ip=b"10.0.0.1", chunked=True)
    assert first == b"POST /v1/completions HTTP/1.1"
    lines = rest.split(b"\r\n")
    assert rest.endswith(b"\r\n\r\n")
    assert b"Content-Type: application/json" in lines and b"transfer-encoding: chunked" in lines
    assert b"x-forwarded-for: 10.0.0.1" in lines and b"x-forwarded-host: models.example" in lines
    lowered = rest.lower()
    for gone in (b"authorization", b"connection", b"content-length", b"6.6.6.6", b"\r\nhost:"):
        assert gone not in lowered
    _, plain = request_head(b"GET", b"/", "1.1", headers[4:5], client_ip=b"x", chunked=False)
    assert b"Content-Type: application/json" in plain and b"transfer-encoding" not in plain


def test_problem_is_problem_json() -> None:
    raw = problem(401, "auth-failed", "Needs a token.", "why", [(b"www-authenticate", b"Bearer")], close=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 Unauthorized")
    assert b"content-type: application/problem+json" in head and b"connection: close" in head
    assert b"content-length: %d" % len(body) in head
    assert json.loads(body)["msg"] == "why"


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([7.0], 99) == 7.0


def test_rate_window_counts_the_last_ten_seconds() -> None:
    w = RateWindow()
    for t in range(20):
        for _ in range(3):
            w.add(1000.0 + t)
    assert w.rate(1019.5) == 3.0
    assert w.rate(1025.0) == pytest.approx(1.2)
    assert w.rate(1040.0) == 0.0
    assert len(w.buckets) <= 11


def spec(name: str = "svc", routes: tuple[tuple[str, int, float], ...] = (("a", 1, 1.0),), **kw) -> ServiceSpec:
    return ServiceSpec(name=name, routes=[RouteSpec(rid, "127.0.0.1", port, "s", ratio) for rid, port, ratio in routes],
                       **kw)


def test_put_keeps_unchanged_routes_and_retires_removed_ones() -> None:
    table = ServiceTable()
    svc = table.put("s1", spec(routes=(("a", 1, 1.0), ("b", 2, 1.0))))
    a, b = svc.routes["a"], svc.routes["b"]
    a.figures.requests = 7
    table.put("s1", spec(routes=(("a", 1, 3.0), ("c", 3, 1.0))))
    assert svc.routes["a"] is a and a.traffic_ratio == 3.0 and not a.removed
    assert b.removed and "b" not in svc.routes
    table.put("s1", spec(routes=(("a", 9, 3.0),)))  # a new target: a new route, the figures go on
    assert svc.routes["a"] is not a and a.removed and svc.routes["a"].figures.requests == 7


def test_names_are_unique_and_renames_move() -> None:
    table = ServiceTable()
    table.put("s1", spec("one"))
    with pytest.raises(NameTaken):
        table.put("s2", spec("one"))
    table.put("s1", spec("uno"))
    assert set(table.by_name) == {b"uno"}
    assert table.delete("s1") and not table.delete("s1") and table.by_name == {}


def test_check_token_remembers_valid_tokens_but_not_past_expiry_or_revocation() -> None:
    table = ServiceTable()
    svc = table.put("s1", spec())
    token = issue_service_token(SECRET, "s1", "t1", time.time() + 60).encode()
    assert svc.check_token(SECRET, token) is None
    assert token in svc.tokens
    table.put("s1", spec(revoked=["t1"]))
    assert svc.check_token(SECRET, token) == "the token has been revoked"
    svc.tokens[token] = (time.time() - 1, "t2")
    assert svc.check_token(SECRET, token) == "the token has expired"
    assert "needs a token" in (svc.check_token(SECRET, None) or "")

"""The webserver's pure parts: lockout and session stores (memory and Redis), cookie signing,
the CSRF origin check, language negotiation, policy forms and exports, formatting, paging."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from starlette.datastructures import FormData as StarletteForm

from tests.support.databases import REDIS_URL
from workbay.common.secrets import SecretBox
from workbay.web import formatting
from workbay.web import policy_fields as pf
from workbay.web.cookies import CookieSigner
from workbay.web.csrf import is_cross_site
from workbay.web.forms import FieldError, FormData
from workbay.web.i18n import negotiate
from workbay.web.lockout import MemoryLockout, RedisLockout, account_key
from workbay.web.sessions import LoginSession, MemorySessionStore, RedisSessionStore
from workbay.web.tables import Pager


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# -- lockout ------------------------------------------------------------------------------------
async def test_memory_lockout_locks_after_the_limit_and_expires():
    clock = Clock()
    lockout = MemoryLockout(attempts=3, seconds=60, clock=clock)
    assert await lockout.register_failure("a") is None
    assert await lockout.register_failure("a") is None
    lock = await lockout.register_failure("a")
    assert lock is not None and lock.until == clock.now + 60
    assert (await lockout.current_lock("a")).until == lock.until
    assert await lockout.current_lock("b") is None
    clock.now += 61
    assert await lockout.current_lock("a") is None
    assert await lockout.register_failure("a") is None  # the count started over


async def test_memory_lockout_forgets_old_failures_and_resets_on_success():
    clock = Clock()
    lockout = MemoryLockout(attempts=3, seconds=60, clock=clock)
    await lockout.register_failure("a")
    await lockout.register_failure("a")
    clock.now += 61  # long after the last failure
    assert await lockout.register_failure("a") is None
    await lockout.register_failure("a")
    await lockout.reset("a")
    assert await lockout.register_failure("a") is None


async def test_redis_lockout():
    import redis.asyncio as aioredis

    redis = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        lockout = RedisLockout(redis, attempts=2, seconds=30)
        account = f"parts-{uuid.uuid4().hex}@example.com"
        assert await lockout.register_failure(account) is None
        lock = await lockout.register_failure(account)
        assert lock is not None and 0 < lock.seconds_left() <= 30
        assert (await lockout.current_lock(account)).until == pytest.approx(lock.until)
        await lockout.reset(account)
        assert await lockout.current_lock(account) is None
    finally:
        await redis.aclose()


def test_accounts_are_keyed_case_insensitively():
    assert account_key("  Alice@Example.COM ") == "alice@example.com"


# -- sessions -----------------------------------------------------------------------------------
def _session() -> LoginSession:
    return LoginSession.new(access_key="AK", secret_key="SK", email="a@example.com", role="user",
                            status="active", preferences={"theme": "dark"})


async def test_memory_sessions_expire_after_inactivity():
    clock = Clock()
    store = MemorySessionStore(ttl=100, clock=clock)
    session = _session()
    await store.save(session)
    clock.now += 90
    assert (await store.get(session.id)).email == "a@example.com"  # and the expiry slides
    clock.now += 90
    assert await store.get(session.id) is not None
    clock.now += 101
    assert await store.get(session.id) is None


async def test_redis_sessions_round_trip():
    import redis.asyncio as aioredis

    redis = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        store = RedisSessionStore(redis, ttl=60, box=SecretBox("webserver secret"))
        session = _session()
        session.access_key, session.secret_key = "AKIAEXAMPLEACCESS0001", "secret-key-of-the-user-0123456789"
        await store.save(session)
        key = f"workbay:web:session:{session.id}"
        assert await redis.ttl(key) > 0
        # sealed: Redis never holds the user's secret key (issue 10, secrets at rest)
        raw = await redis.get(key)
        assert session.secret_key not in raw and session.access_key not in raw
        loaded = await store.get(session.id)
        assert loaded == session and loaded.preferences == {"theme": "dark"}
        # a value moved under another id, or sealed with another webserver secret, is no login
        other = _session()
        await redis.set(f"workbay:web:session:{other.id}", raw, ex=60)
        assert await store.get(other.id) is None
        assert await RedisSessionStore(redis, ttl=60, box=SecretBox("other")).get(session.id) is None
        await store.delete(session.id)
        assert await store.get(session.id) is None
    finally:
        await redis.aclose()


def test_sessions_have_distinct_ids_and_csrf_tokens():
    a, b = _session(), _session()
    assert a.id != b.id and a.csrf_token != b.csrf_token and len(a.csrf_token) >= 40


# -- cookies and CSRF ---------------------------------------------------------------------------
def test_cookie_signer_rejects_tampering_and_other_secrets():
    signer = CookieSigner("secret")
    signed = signer.sign("session-id")
    assert signer.unsign(signed) == "session-id"
    assert signer.unsign(signed[:-1] + ("A" if signed[-1] != "A" else "B")) is None
    assert signer.unsign("other" + signed[len("session-id"):]) is None
    assert CookieSigner("another").unsign(signed) is None
    assert signer.unsign(None) is None and signer.unsign("no-dot") is None


@pytest.mark.parametrize(("headers", "cross"), [
    ({"host": "web:8090"}, False),                                            # CLI: no Origin
    ({"host": "web:8090", "origin": "http://web:8090"}, False),
    ({"host": "web:8090", "origin": "https://evil.example"}, True),
    ({"host": "web:8090", "origin": "null"}, True),
    ({"host": "web:8090", "referer": "http://web:8090/users?x=1"}, False),
    ({"host": "web:8090", "referer": "http://evil.example/"}, True),
])
def test_cross_site_detection(headers, cross):
    assert is_cross_site(headers) is cross


def test_forwarded_host_counts_only_from_a_trusted_proxy():
    behind = {"host": "10.0.0.1", "x-forwarded-host": "console.example", "origin": "https://console.example"}
    assert is_cross_site(behind, from_proxy=True) is False
    assert is_cross_site(behind) is True  # anyone can send the header: not believed
    forged = {"host": "web:8090", "x-forwarded-host": "evil.example", "origin": "https://evil.example"}
    assert is_cross_site(forged) is True


# -- languages ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("header", "language"), [
    (None, "en"), ("ko-KR,ko;q=0.9,en;q=0.8", "ko"), ("en-US,ko;q=0.5", "en"),
    ("fr-FR,ko;q=0.3", "ko"), ("de", "en"), ("ko;q=0", "en"), ("en;q=0.5,ko;q=0.5", "en"),
])
def test_language_negotiation(header, language):
    assert negotiate(header) == language


# -- resource policy forms ----------------------------------------------------------------------
def _form(**values: str) -> FormData:
    return FormData(StarletteForm(list(values.items())))


def test_keypair_policy_form_reads_units_and_unlimited():
    form = _form(slot_cpu="2.5", slot_mem="4", slot_cuda_device__unlimited="on",
                 slot_cuda_shares__unlimited="on", max_containers_per_session="2",
                 max_session_lifetime__unlimited="on", max_concurrent_sessions="5",
                 max_concurrent_sftp_sessions="1", max_pending_session_count__unlimited="on",
                 idle_timeout="600", allowed_folder_hosts="local:volume1\nnfs: download-file, upload-file")
    body, errors = pf.read_policy_form("keypair", form, "bad number", "unknown: %(names)s")
    assert errors == {}
    assert body["total_resource_slots"] == {"cpu": "2.5", "mem": str(4 * 2**30)}
    assert body["max_session_lifetime"] == 0 and body["max_pending_session_count"] is None
    assert body["allowed_folder_hosts"] == {"local:volume1": list(pf.HOST_PERMISSIONS),
                                             "nfs": ["download-file", "upload-file"]}
    assert pf.hosts_text(body["allowed_folder_hosts"]) == \
        "local:volume1\nnfs: download-file, upload-file"


def test_policy_form_errors_name_their_field():
    form = _form(max_folder_count="-1", max_quota_scope_size="1.5", max_network_count="x")
    body, errors = pf.read_policy_form("project", form, "bad number", "unknown: %(names)s")
    assert set(errors) == {"max_folder_count", "max_network_count"}
    assert body["max_quota_scope_size"] == int(1.5 * 2**30)
    _, errors = pf.read_policy_form("keypair", _form(allowed_folder_hosts="h: fly"), "n",
                                    "unknown: %(names)s")
    assert errors["allowed_folder_hosts"] == "unknown: fly"
    with pytest.raises(FieldError):
        pf.SLOTS[2].parse(_form(slot_cuda_device="1.5"), "whole GPUs only")


def test_policy_exports():
    items = [{"name": "gold", "max_folder_count": 0, "max_quota_scope_size": -1,
              "max_network_count": 3, "created_at": "2026-01-01T00:00:00+00:00"}]
    assert json.loads(pf.export_json(items)) == items
    rows = list(csv.DictReader(io.StringIO(pf.export_csv("project", items))))
    assert rows == [{"name": "gold", "max_folder_count": "0", "max_quota_scope_size": "-1",
                     "max_network_count": "3", "created_at": "2026-01-01T00:00:00+00:00"}]
    keypair = [{"name": "k", "total_resource_slots": {"cpu": "2"}, "allowed_folder_hosts": {}}]
    row = next(csv.DictReader(io.StringIO(pf.export_csv("keypair", keypair))))
    assert json.loads(row["total_resource_slots"]) == {"cpu": "2"}


# -- formatting and paging ----------------------------------------------------------------------
def test_formatting():
    assert formatting.binary_size(3 * 2**30) == "3 GiB"
    assert formatting.binary_size(1536) == "1.5 KiB"
    assert formatting.binary_size("Infinity") == "∞"
    assert formatting.duration(93784) == "1d 02:03:04"
    assert formatting.duration(600) == "00:10:00"
    assert formatting.short_datetime("2026-01-02T03:04:05+00:00") == "2026-01-02 03:04 UTC"
    assert formatting.decimal_text("2.50") == "2.5"


def test_pager():
    pager = Pager(total=95, page=3, size=20)
    assert (pager.offset, pager.page_count, pager.first_item, pager.last_item) == (40, 5, 41, 60)
    assert pager.window() == [1, 2, 3, 4, 5]
    assert Pager(total=200, page=9, size=20).window() == [6, 7, 8, 9, 10]
    assert Pager(total=0, page=1, size=20).first_item == 0

"""Request signing end to end and the /auth/* + /user/* endpoints (ID-2…ID-8, ID-13).

Runs once on SQLite and once on PostgreSQL (the ``manager`` fixture)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest

from tests.support.manager import ADMIN_PASSWORD
from workbay.common import signing
from workbay.common.signing import SUPPORTED_VERSIONS
from workbay.manager.services import keys

VERSION = "v7.20230615"
PROBLEM = "https://api.backend.ai/probs/"
PASSWORD = "Us3r!pass"


# -- helpers ------------------------------------------------------------------------------------
async def call(h, method: str, path: str, *, ak: str | None = None, sk: str | None = None,
               json: Any = None, query: str = "", headers: dict[str, str] | None = None,
               date: datetime | None = None, version: str | None = VERSION,
               peer: str = "127.0.0.1", sign_path: str | None = None,
               hash_name: str = "sha256") -> httpx.Response:
    """One raw request to the manager, signed like the official client when ``ak`` is given."""
    path_and_query = f"{path}?{query}" if query else path
    content = None
    ctype = "text/plain"
    if json is not None:
        import json as jsonlib

        content, ctype = jsonlib.dumps(json).encode(), "application/json"
    hdrs: dict[str, str] = {"Content-Type": ctype}
    if version is not None:
        hdrs["X-BackendAI-Version"] = version
    if ak is not None:
        hdrs.update(signing.sign_headers(ak, sk or "", method, sign_path or path_and_query,
                                         "manager.test", ctype, version or VERSION,
                                         now=date, hash_name=hash_name))
        if version is None:
            hdrs.pop("X-BackendAI-Version")
    hdrs.update(headers or {})
    transport = httpx.ASGITransport(app=h.app, client=(peer, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://manager.test") as c:
        return await c.request(method, path_and_query, content=content, headers=hdrs)


def problem(resp: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["type"] == PROBLEM + kind, body
    assert isinstance(body["title"], str) and body["title"]
    return body


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def new_user(h, password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
    """Create a user as the superadmin; returns the user with ``keypair`` and ``email``."""
    name = unique()
    body = {"email": f"{name}@example.test", "username": name, "password": password, **fields}
    return await h.admin().post("/admin/users", json=body)


async def authorize(h, email: str, password: str, **extra: Any) -> httpx.Response:
    return await call(h, "POST", "/auth/authorize", json={
        "type": "keypair", "domain": "default", "username": email, "password": password, **extra})


def keys_of(user: dict[str, Any]) -> tuple[str, str]:
    return user["keypair"]["access_key"], user["keypair"]["secret_key"]


# -- root, version negotiation, signing -------------------------------------------------------
async def test_root_is_unauthenticated_and_reports_the_api_version(manager):
    resp = await call(manager, "GET", "/", version=None)
    assert resp.status_code == 200
    body = resp.json()
    assert re.fullmatch(r"v\d+\.\d{8}", body["version"]) and body["version"] == VERSION
    assert body["manager"]
    # unprotected even when signed, even with a wrong secret (the signature is not looked at)
    resp = await call(manager, "GET", "/", ak=manager.admin_access_key, sk="x" * 40)
    assert resp.status_code == 200 and resp.json()["version"] == VERSION
    ann = await call(manager, "GET", "/manager/announcement")
    assert ann.status_code == 200 and ann.json() == {"enabled": False, "message": ""}


async def test_signed_requests_are_accepted(manager):
    ak, sk = manager.admin_access_key, manager.admin_secret_key
    resp = await call(manager, "GET", "/auth/test", query="echo=hi%20there", ak=ak, sk=sk)
    assert resp.status_code == 200 and resp.json() == {"authorized": "yes", "echo": "hi there"}
    resp = await call(manager, "POST", "/auth", json={"echo": {"a": 1}}, ak=ak, sk=sk)
    assert resp.json() == {"authorized": "yes", "echo": {"a": 1}}
    # other hashes, the legacy scheme, every supported version, RFC 1123 and X-BackendAI-Date
    assert (await call(manager, "GET", "/auth/test", ak=ak, sk=sk, hash_name="sha512")).status_code == 200
    for version in sorted(SUPPORTED_VERSIONS):
        assert (await call(manager, "GET", "/auth", ak=ak, sk=sk, version=version)).status_code == 200
    sorna = signing.sign_headers(ak, sk, "GET", "/auth/test", "manager.test", "text/plain", VERSION)
    sorna["Authorization"] = sorna["Authorization"].replace("BackendAI ", "Sorna ", 1)
    assert (await call(manager, "GET", "/auth/test", headers=sorna)).status_code == 200
    now = datetime.now(UTC).replace(microsecond=0)
    rfc = now.strftime("%a, %d %b %Y %H:%M:%S GMT")
    sig = signing.signature(sk, "GET", "/auth/test", rfc, "manager.test", "text/plain", VERSION)
    hdrs = {"Date": rfc, "Authorization": f"BackendAI signMethod=HMAC-SHA256, credential={ak}:{sig}"}
    assert (await call(manager, "GET", "/auth/test", headers=hdrs)).status_code == 200
    hdrs = {"X-BackendAI-Date": rfc, "Authorization": hdrs["Authorization"]}
    assert (await call(manager, "GET", "/auth/test", headers=hdrs)).status_code == 200


async def test_wrong_secret_is_refused(manager):
    resp = await call(manager, "GET", "/auth/test", ak=manager.admin_access_key, sk="y" * 40)
    body = problem(resp, 401, "auth-failed")
    assert body["title"] == "Credential/signature mismatch."


async def test_the_signature_covers_the_query_and_the_method(manager):
    ak, sk = manager.admin_access_key, manager.admin_secret_key
    resp = await call(manager, "GET", "/auth/test", query="echo=b", sign_path="/auth/test?echo=a",
                      ak=ak, sk=sk)
    problem(resp, 401, "auth-failed")
    hdrs = signing.sign_headers(ak, sk, "POST", "/auth/test", "manager.test", "text/plain", VERSION)
    problem(await call(manager, "GET", "/auth/test", headers=hdrs), 401, "auth-failed")


async def test_unknown_access_key(manager):
    resp = await call(manager, "GET", "/auth/test", ak="AKIANOSUCHKEY0000000", sk="z" * 40)
    assert problem(resp, 401, "auth-failed")["msg"] == "Access key not found"


@pytest.mark.parametrize("minutes", [16, -16])
async def test_clock_skew_over_fifteen_minutes_is_refused(manager, minutes):
    ak, sk = manager.admin_access_key, manager.admin_secret_key
    date = datetime.now(UTC) + timedelta(minutes=minutes)
    body = problem(await call(manager, "GET", "/auth/test", ak=ak, sk=sk, date=date),
                   400, "invalid-auth-params")
    assert body["msg"] == "Date/time sync error"
    date = datetime.now(UTC) + timedelta(minutes=14 if minutes > 0 else -14)
    assert (await call(manager, "GET", "/auth/test", ak=ak, sk=sk, date=date)).status_code == 200


async def test_unsupported_api_version(manager):
    body = problem(await call(manager, "GET", "/", version="v8.20990101"), 400, "generic-bad-request")
    assert body["title"] == "Unsupported API version."
    resp = await call(manager, "GET", "/auth/test", ak=manager.admin_access_key,
                      sk=manager.admin_secret_key, version="v3.20170615")
    problem(resp, 400, "generic-bad-request")


@pytest.mark.parametrize("headers, msg", [
    ({"Date": ""}, "Date header is required."),
    ({"Date": "not a date"}, "Malformed Date header."),
    ({"Authorization": "BackendAI nonsense"}, None),
    ({"Authorization": "Bearer abc"}, None),
    ({"Authorization": "BackendAI signMethod=HMAC-SHA256, credential=nocolon"}, None),
    ({"Authorization": "BackendAI signMethod=RSA-SHA256, credential=AK:sig"}, None),
])
async def test_malformed_auth_parameters(manager, headers, msg):
    base = signing.sign_headers(manager.admin_access_key, manager.admin_secret_key, "GET",
                                "/auth/test", "manager.test", "text/plain", VERSION)
    base.update(headers)
    body = problem(await call(manager, "GET", "/auth/test", headers=base), 400, "invalid-auth-params")
    if msg:
        assert body["msg"] == msg


async def test_signed_request_without_a_version_header(manager):
    resp = await call(manager, "GET", "/auth/test", ak=manager.admin_access_key,
                      sk=manager.admin_secret_key, version=None)
    assert problem(resp, 400, "invalid-auth-params")["msg"] == "API version missing in request headers"


async def test_protected_endpoints_need_a_signature_and_errors_are_problems(manager):
    body = problem(await call(manager, "GET", "/user/me"), 401, "auth-failed")
    assert body["title"] == "Unauthorized access"
    problem(await call(manager, "GET", "/no/such/path"), 404, "url-not-found")
    problem(await call(manager, "PUT", "/auth/test", ak=manager.admin_access_key,
                       sk=manager.admin_secret_key), 405, "method-not-allowed")
    bad_json = await call(manager, "POST", "/auth/update-full-name", ak=manager.admin_access_key,
                          sk=manager.admin_secret_key, json=[1])
    problem(bad_json, 400, "invalid-api-params")


async def test_inactive_keypair_and_inactive_owner(manager):
    user = await new_user(manager)
    ak, sk = keys_of(user)
    admin = manager.admin()
    assert (await call(manager, "GET", "/auth/test", ak=ak, sk=sk)).status_code == 200
    await admin.patch(f"/admin/keypairs/{ak}", json={"is_active": False})
    body = problem(await call(manager, "GET", "/auth/test", ak=ak, sk=sk), 401, "auth-failed")
    assert body["msg"] == "Access key not found"
    # an inactive user's keypair, even if re-activated, authenticates nothing
    await admin.patch(f"/admin/keypairs/{ak}", json={"is_active": True})
    await admin.patch(f"/admin/users/{user['email']}", json={"status": "inactive"})
    await admin.patch(f"/admin/keypairs/{ak}", json={"is_active": True})
    body = problem(await call(manager, "GET", "/auth/test", ak=ak, sk=sk), 401, "auth-failed")
    assert body["title"] == "Unauthorized access"
    # ... and a wrong signature on it says nothing about the account
    body = problem(await call(manager, "GET", "/auth/test", ak=ak, sk="w" * 40), 401, "auth-failed")
    assert body["title"] == "Credential/signature mismatch."


# -- /auth/authorize ----------------------------------------------------------------------------
async def test_authorize(manager):
    user = await new_user(manager)
    resp = await authorize(manager, user["email"].upper(), PASSWORD)
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert (data["access_key"], data["secret_key"]) == keys_of(user)
    assert data["role"] == "user" and data["status"] == "active"
    signed = await call(manager, "GET", "/user/me", ak=data["access_key"], sk=data["secret_key"])
    assert signed.json()["email"] == user["email"]


async def test_authorize_refusals(manager):
    user = await new_user(manager)
    wrong = problem(await authorize(manager, user["email"], "Wr0ng!pass"), 401, "auth-failed")
    assert wrong["title"] == "User credential mismatch."
    unknown = problem(await authorize(manager, "nobody@example.test", PASSWORD), 401, "auth-failed")
    assert unknown == wrong                          # the same answer: no account enumeration
    other_domain = await call(manager, "POST", "/auth/authorize", json={
        "type": "keypair", "domain": "nosuch", "username": user["email"], "password": PASSWORD})
    problem(other_domain, 401, "auth-failed")
    resp = await call(manager, "POST", "/auth/authorize", json={
        "type": "jwt", "domain": "default", "username": user["email"], "password": PASSWORD})
    problem(resp, 400, "generic-bad-request")
    problem(await call(manager, "POST", "/auth/authorize", json={"type": "keypair"}),
            400, "invalid-api-params")
    await manager.admin().patch(f"/admin/users/{user['email']}", json={"status": "inactive"})
    inactive = problem(await authorize(manager, user["email"], PASSWORD), 401, "auth-failed")
    assert "inactive" in inactive["msg"]


async def test_authorize_refuses_users_of_an_inactive_domain(manager):
    admin = manager.admin()
    name = f"dorm-{uuid.uuid4().hex[:8]}"
    await admin.post("/admin/domains", json={"name": name})
    user = await new_user(manager, domain_name=name)
    login = await call(manager, "POST", "/auth/authorize", json={
        "type": "keypair", "domain": name, "username": user["email"], "password": PASSWORD})
    assert login.status_code == 200
    await admin.patch(f"/admin/domains/{name}", json={"is_active": False})
    refused = await call(manager, "POST", "/auth/authorize", json={
        "type": "keypair", "domain": name, "username": user["email"], "password": PASSWORD})
    assert "domain is inactive" in problem(refused, 401, "auth-failed")["msg"]
    await admin.patch(f"/admin/domains/{name}", json={"is_active": True})


# -- /auth/signup ---------------------------------------------------------------------------------
async def test_signup(manager):
    admin = manager.admin()
    email = f"{unique('s')}@example.test"
    body = {"domain": "default", "email": email, "password": PASSWORD}
    off = problem(await call(manager, "POST", "/auth/signup", json=body), 403, "generic-forbidden")
    assert off["msg"] == "Sign-up is disabled."
    await admin.patch("/admin/settings", json={"signup_enabled": True})
    try:
        resp = await call(manager, "POST", "/auth/signup", json={**body, "full_name": "Sig Nup"})
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert set(created) == {"access_key", "secret_key"}
        assert keys.valid_access_key(created["access_key"]) and keys.valid_secret_key(created["secret_key"])
        me = (await call(manager, "GET", "/user/me", ak=created["access_key"], sk=created["secret_key"])).json()
        assert me["email"] == email and me["role"] == "user" and me["full_name"] == "Sig Nup"
        assert me["username"] == email                           # Backend.AI's default
        assert [p["name"] for p in me["projects"]] == ["default"]
        # duplicate e-mail: 400, as Backend.AI answers
        dup = problem(await call(manager, "POST", "/auth/signup", json=body), 400, "generic-bad-request")
        assert dup["data"] == {"email": "already exists"}
        # the same local part at another domain is another user
        twin = {**body, "email": email.replace("@example.test", "@example.org")}
        assert (await call(manager, "POST", "/auth/signup", json=twin)).status_code == 201
        weak = problem(await call(manager, "POST", "/auth/signup", json={
            **body, "email": f"{unique('w')}@example.test", "password": "abcdefgh"}), 400, "invalid-api-params")
        assert "at least one digit" in weak["msg"] and "at least one special character" in weak["msg"]
        problem(await call(manager, "POST", "/auth/signup", json={**body, "email": "not-an-email"}),
                400, "invalid-api-params")
        problem(await call(manager, "POST", "/auth/signup", json={
            **body, "email": f"{unique('d')}@example.test", "domain": "nosuch"}), 400, "invalid-api-params")
        # invitation token
        await admin.patch("/admin/settings", json={"signup_invitation_token": "s3cret-token"})
        fresh = {**body, "email": f"{unique('t')}@example.test"}
        problem(await call(manager, "POST", "/auth/signup", json=fresh), 403, "generic-forbidden")
        problem(await call(manager, "POST", "/auth/signup", json={**fresh, "invitation_token": "nope"}),
                403, "generic-forbidden")
        ok = await call(manager, "POST", "/auth/signup", json={**fresh, "invitation_token": "s3cret-token"})
        assert ok.status_code == 201
    finally:
        await admin.patch("/admin/settings", json={"signup_enabled": False,
                                                   "signup_invitation_token": None})
    problem(await call(manager, "POST", "/auth/signup", json={**body, "email": f"{unique()}@x.test"}),
            403, "generic-forbidden")


# -- own account ----------------------------------------------------------------------------------
async def test_update_password(manager):
    user = await new_user(manager)
    ak, sk = keys_of(user)

    async def update(old, new, new2):
        return await call(manager, "POST", "/auth/update-password", ak=ak, sk=sk,
                          json={"old_password": old, "new_password": new, "new_password2": new2})

    for weak, rule in [("short1!", "at least 8 characters"), ("abcdefgh1", "at least one special character"),
                       ("abcdefgh!", "at least one digit"), ("12345678!", "at least one letter")]:
        body = problem(await update(PASSWORD, weak, weak), 400, "invalid-api-params")
        assert body["msg"] == f"Password must contain {rule}."
    mismatch = problem(await update(PASSWORD, "N3w!pass-1", "N3w!pass-2"), 400, "generic-bad-request")
    assert mismatch["error_msg"] == "new password mismatch"
    wrong = problem(await update("Wr0ng!pass", "N3w!pass-1", "N3w!pass-1"), 401, "auth-failed")
    assert wrong["msg"] == "Old password mismatch"
    assert (await authorize(manager, user["email"], PASSWORD)).status_code == 200  # unchanged so far
    resp = await update(PASSWORD, "N3w!pass-1", "N3w!pass-1")
    assert resp.status_code == 200 and resp.json() == {}
    problem(await authorize(manager, user["email"], PASSWORD), 401, "auth-failed")
    assert (await authorize(manager, user["email"], "N3w!pass-1")).status_code == 200
    problem(await call(manager, "POST", "/auth/update-password-no-auth", json={
        "domain": "default", "username": user["email"], "current_password": "N3w!pass-1",
        "new_password": "An0ther!pass"}), 400, "generic-bad-request")


async def test_update_full_name(manager):
    user = await new_user(manager)
    ak, sk = keys_of(user)
    name = "Ω" * 64
    resp = await call(manager, "POST", "/auth/update-full-name", ak=ak, sk=sk, json={"full_name": name})
    assert resp.status_code == 200 and resp.json() == {}
    assert (await call(manager, "GET", "/user/me", ak=ak, sk=sk)).json()["full_name"] == name
    body = problem(await call(manager, "POST", "/auth/update-full-name", ak=ak, sk=sk,
                              json={"full_name": "x" * 65}), 400, "invalid-api-params")
    assert "full_name" in body["data"]
    assert (await call(manager, "GET", "/user/me", ak=ak, sk=sk)).json()["full_name"] == name


async def test_ssh_keypair(manager):
    user = await new_user(manager)
    ak, sk = keys_of(user)
    get = await call(manager, "GET", "/auth/ssh-keypair", ak=ak, sk=sk)
    assert get.json() == {"ssh_public_key": None}
    generated = (await call(manager, "PATCH", "/auth/ssh-keypair", ak=ak, sk=sk)).json()
    assert generated["ssh_public_key"].startswith("ssh-ed25519 ")
    assert "PRIVATE KEY" in generated["ssh_private_key"]
    keys.validate_ssh_keypair(generated["ssh_public_key"], generated["ssh_private_key"])
    get = await call(manager, "GET", "/auth/ssh-keypair", ak=ak, sk=sk)
    assert get.json() == {"ssh_public_key": generated["ssh_public_key"]}
    # a manual pair
    pub, priv = keys.generate_ssh_keypair(comment="laptop")
    resp = await call(manager, "POST", "/auth/ssh-keypair", ak=ak, sk=sk, json={"pubkey": pub, "privkey": priv})
    assert resp.status_code == 200 and resp.json() == {"ssh_public_key": pub, "ssh_private_key": priv}
    assert (await call(manager, "GET", "/auth/ssh-keypair", ak=ak, sk=sk)).json()["ssh_public_key"] == pub
    # a mismatched pair and garbage are refused and change nothing
    other_pub, _ = keys.generate_ssh_keypair()
    body = problem(await call(manager, "POST", "/auth/ssh-keypair", ak=ak, sk=sk,
                              json={"pubkey": other_pub, "privkey": priv}), 400, "invalid-api-params")
    assert "does not belong" in body["msg"]
    problem(await call(manager, "POST", "/auth/ssh-keypair", ak=ak, sk=sk,
                       json={"pubkey": "ssh-rsa AAAA", "privkey": "nope"}), 400, "invalid-api-params")
    problem(await call(manager, "POST", "/auth/ssh-keypair", ak=ak, sk=sk, json={"pubkey": pub}),
            400, "invalid-api-params")
    assert (await call(manager, "GET", "/auth/ssh-keypair", ak=ak, sk=sk)).json()["ssh_public_key"] == pub


async def test_role(manager):
    user = await new_user(manager)
    ak, sk = keys_of(user)
    me = (await call(manager, "GET", "/user/me", ak=ak, sk=sk)).json()
    assert me["projects"] == []
    resp = await call(manager, "GET", "/auth/role", ak=ak, sk=sk)
    assert resp.json() == {"global_role": "user", "domain_role": "user"}
    admin = manager.admin()
    default = next(p for p in (await admin.get("/admin/projects"))["items"] if p["name"] == "default"
                   and p["domain_name"] == "default")
    problem(await call(manager, "GET", "/auth/role", query=f"group={default['id']}", ak=ak, sk=sk),
            404, "object-not-found")
    await admin.post(f"/admin/projects/{default['id']}/members", json={"emails": [user["email"]]})
    resp = await call(manager, "GET", "/auth/role", query=f"group={default['id']}", ak=ak, sk=sk)
    assert resp.json() == {"global_role": "user", "domain_role": "user", "group_role": "user"}
    # the group may come in a JSON body too (Backend.AI reads the body when there is one)
    resp = await call(manager, "GET", "/auth/role", json={"group": default["id"]}, ak=ak, sk=sk)
    assert resp.json()["group_role"] == "user"
    problem(await call(manager, "GET", "/auth/role", query="group=not-a-uuid", ak=ak, sk=sk),
            400, "invalid-api-params")
    sa = await call(manager, "GET", "/auth/role", query=f"group={default['id']}",
                    ak=manager.admin_access_key, sk=manager.admin_secret_key)
    assert sa.json() == {"global_role": "superadmin", "domain_role": "admin", "group_role": "admin"}


async def test_totp_register_confirm_login_disable(manager):
    user = await new_user(manager)
    ak, sk = keys_of(user)
    email = user["email"]
    assert (await call(manager, "GET", "/auth/totp", ak=ak, sk=sk)).json() == {"enabled": False}
    reg = (await call(manager, "POST", "/auth/totp", ak=ak, sk=sk)).json()
    assert reg["uri"].startswith("otpauth://totp/") and reg["secret"] in reg["uri"]
    assert reg["qr_svg"].lstrip().startswith("<svg")
    totp = pyotp.TOTP(reg["secret"])
    wrong = "000000" if totp.now() != "000000" else "111111"
    problem(await call(manager, "POST", "/auth/totp/confirm", ak=ak, sk=sk, json={"otp": wrong}),
            400, "invalid-api-params")
    # a registered but unconfirmed secret does not change the login
    assert (await authorize(manager, email, PASSWORD)).status_code == 200
    ok = await call(manager, "POST", "/auth/totp/confirm", ak=ak, sk=sk, json={"otp": totp.now()})
    assert ok.status_code == 200 and ok.json() == {"enabled": True}
    assert (await call(manager, "GET", "/auth/totp", ak=ak, sk=sk)).json() == {"enabled": True}
    problem(await call(manager, "POST", "/auth/totp", ak=ak, sk=sk), 400, "generic-bad-request")
    # login now asks for the OTP
    no_otp = problem(await authorize(manager, email, PASSWORD), 401, "auth-failed")
    assert no_otp["msg"] == "OTP not provided"
    bad_otp = problem(await authorize(manager, email, PASSWORD, otp=wrong), 401, "auth-failed")
    assert bad_otp["msg"] == "Invalid OTP"
    problem(await authorize(manager, email, "Wr0ng!pass", otp=totp.now()), 401, "auth-failed")
    assert (await authorize(manager, email, PASSWORD, otp=totp.now())).status_code == 200
    # disabling needs a valid OTP too
    problem(await call(manager, "DELETE", "/auth/totp", ak=ak, sk=sk, json={"otp": wrong}),
            400, "invalid-api-params")
    off = await call(manager, "DELETE", "/auth/totp", ak=ak, sk=sk, json={"otp": totp.now()})
    assert off.status_code == 200 and off.json() == {"enabled": False}
    assert (await authorize(manager, email, PASSWORD)).status_code == 200
    problem(await call(manager, "DELETE", "/auth/totp", ak=ak, sk=sk, json={"otp": totp.now()}),
            400, "generic-bad-request")


async def test_preferences(manager):
    user = await new_user(manager)
    ak, sk = keys_of(user)
    defaults = {"theme": None, "language": None, "project": None, "compact_sidebar": False,
                "preferred_ssh_port": None}
    assert (await call(manager, "GET", "/user/preferences", ak=ak, sk=sk)).json() == defaults
    resp = await call(manager, "PATCH", "/user/preferences", ak=ak, sk=sk,
                      json={"theme": "dark", "language": "ko", "compact_sidebar": True})
    assert resp.json() == {**defaults, "theme": "dark", "language": "ko", "compact_sidebar": True}
    resp = await call(manager, "PATCH", "/user/preferences", ak=ak, sk=sk, json={"preferred_ssh_port": 22022})
    assert resp.json()["preferred_ssh_port"] == 22022
    await call(manager, "PATCH", "/user/preferences", ak=ak, sk=sk, json={"preferred_ssh_port": None})
    for bad in [{"theme": "purple"}, {"language": "xx"}, {"compact_sidebar": "yes"},
                {"unknown": 1}, {"project": "not-a-uuid"}, {"project": str(uuid.uuid4())},
                {"preferred_ssh_port": 80}, {"preferred_ssh_port": "2200"}, {"preferred_ssh_port": True}]:
        body = problem(await call(manager, "PATCH", "/user/preferences", ak=ak, sk=sk, json=bad),
                       400, "invalid-api-params")
        assert set(body["data"]) == set(bad)
    admin = manager.admin()
    project = await admin.post("/admin/projects", json={"name": unique("p")})
    problem(await call(manager, "PATCH", "/user/preferences", ak=ak, sk=sk,
                       json={"project": project["id"]}), 400, "invalid-api-params")
    await admin.post(f"/admin/projects/{project['id']}/members", json={"emails": [user["email"]]})
    resp = await call(manager, "PATCH", "/user/preferences", ak=ak, sk=sk,
                      json={"project": project["id"], "theme": None})
    assert resp.json()["project"] == project["id"] and resp.json()["theme"] is None
    stored = (await call(manager, "GET", "/user/preferences", ak=ak, sk=sk)).json()
    assert stored == {**defaults, "language": "ko", "compact_sidebar": True, "project": project["id"]}
    assert (await call(manager, "GET", "/user/me", ak=ak, sk=sk)).json()["preferences"] == stored


async def test_me(manager):
    me = (await call(manager, "GET", "/user/me", ak=manager.admin_access_key,
                     sk=manager.admin_secret_key)).json()
    assert me["email"] == "admin@workbay.local" and me["role"] == "superadmin"
    assert me["keypair"]["access_key"] == manager.admin_access_key
    assert me["keypair"]["secret_key"] == manager.admin_secret_key
    assert {p["name"] for p in me["projects"]} == {"default"}
    assert "password" not in me


async def test_allowed_client_ip(manager):
    user = await new_user(manager, allowed_client_ip=["10.1.0.0/16", "2001:db8::1"])
    assert user["allowed_client_ip"] == ["10.1.0.0/16", "2001:db8::1/128"]
    ak, sk = keys_of(user)
    refused = problem(await call(manager, "GET", "/auth/test", ak=ak, sk=sk), 401, "auth-failed")
    assert "127.0.0.1" in refused["msg"]
    assert (await call(manager, "GET", "/auth/test", ak=ak, sk=sk, peer="10.1.2.3")).status_code == 200
    assert (await call(manager, "GET", "/auth/test", ak=ak, sk=sk, peer="2001:db8::1")).status_code == 200
    # X-Forwarded-For counts only from a trusted proxy (loopback: the webserver)
    via_proxy = await call(manager, "GET", "/auth/test", ak=ak, sk=sk, headers={"X-Forwarded-For": "10.1.9.9"})
    assert via_proxy.status_code == 200
    spoofed = await call(manager, "GET", "/auth/test", ak=ak, sk=sk, peer="203.0.113.9",
                         headers={"X-Forwarded-For": "10.1.9.9"})
    problem(spoofed, 401, "auth-failed")
    # invalid networks are refused when set, and clearing the list lifts the restriction
    admin = manager.admin()
    with pytest.raises(Exception) as e:
        await admin.patch(f"/admin/users/{user['email']}", json={"allowed_client_ip": ["10.0.0.0/33"]})
    assert e.value.status == 400
    await admin.patch(f"/admin/users/{user['email']}", json={"allowed_client_ip": None})
    assert (await call(manager, "GET", "/auth/test", ak=ak, sk=sk)).status_code == 200


async def test_admin_password_is_the_bootstrap_one(manager):
    assert (await authorize(manager, "admin@workbay.local", ADMIN_PASSWORD)).status_code == 200


async def test_each_signed_request_is_counted_on_its_keypair(manager):
    import asyncio

    user = await new_user(manager)
    ak, sk = keys_of(user)
    before = await manager.admin().get(f"/admin/keypairs/{ak}")
    assert before["num_queries"] == 0 and before["last_used"] is None
    results = await asyncio.gather(*(call(manager, "GET", "/auth/test", ak=ak, sk=sk) for _ in range(12)))
    assert all(r.status_code == 200 for r in results)
    problem(await call(manager, "GET", "/auth/test", ak=ak, sk="v" * 40), 401, "auth-failed")
    after = await manager.admin().get(f"/admin/keypairs/{ak}")
    assert after["num_queries"] == 12                      # concurrent requests are not lost
    assert datetime.fromisoformat(after["last_used"]) > datetime.now(UTC) - timedelta(minutes=1)

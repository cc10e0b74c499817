"""Issue 10, findings 6, 13 and 15: hostile input at the manager's create/update endpoints.

Against a real running Workbay (manager, storage-proxy, one agent reporting cpu and mem): every
request below used to be accepted (201/200, or a 500) and is now a 400 problem+json
``invalid-api-params`` that says what is wrong -- and changes nothing.
"""

from __future__ import annotations

import pytest

from tests.support.sessions import IMAGE, SMALL, running_system
from workbay.client.sdk import APIError

PROBLEM = "https://api.backend.ai/probs/invalid-api-params"
BATCH = {"image": IMAGE, "type": "batch", "startupCommand": "true", "enqueueOnly": True}


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("input")) as sysm:
        sysm.user = await sysm.login("user@workbay.local")
        yield sysm


async def refused(call, *says: str) -> dict:
    with pytest.raises(APIError) as e:
        await call
    err = e.value
    assert err.status == 400, (err.status, err.body)
    assert err.body["type"] == PROBLEM, err.body
    text = f"{err.body.get('msg', '')} {err.body.get('data', '')}"
    for word in says:
        assert word in text, err.body
    return err.body


BAD_SESSIONS = [
    # finding 6 (and 13): not finite, negative, absurd -- once accepted, the first then stalled the queue
    ({"config": {"resources": {"cpu": "Infinity", "mem": "256m"}}, "starts_at": "3h"}, ["cpu", "finite"]),
    ({"config": {"resources": {"cpu": "NaN", "mem": "256m"}}}, ["cpu", "not a number"]),
    ({"config": {"resources": {"cpu": -1, "mem": "256m"}}}, ["cpu", "zero or more"]),
    ({"config": {"resources": {"cpu": 1e308, "mem": "256m"}}}, ["cpu", "at most 1024"]),
    ({"config": {"resources": {"cpu": 1, "mem": 1e30}}}, ["mem", "at most 1 PiB"]),
    ({"starts_at": "9999999999d"}, ["starts_at", "100 years"]),
    ({"starts_at": "9999-12-31T00:00:00"}, ["starts_at", "100 years"]),
    # finding 15
    ({"config": {"resources": {"cpu": 0, "mem": "256m"}}}, ["cpu must be more than 0"]),
    ({"config": {"resources": {"cpu": 1, "mem": "0"}}}, ["mem must be more than 0"]),
    ({"config": {"resources": {"cpu": 1, "mem": "256m", "evil.slot": 1}}}, ["unknown resource slot", "evil.slot"]),
    ({"config": {"resources": SMALL, "environ": {"A\u0000B": "x"}}}, ["variable name"]),
    ({"config": {"resources": SMALL, "environ": {"GREETING": "hi\u0000there"}}}, ["GREETING", "U+0000"]),
    ({"config": {"resources": SMALL, "environ": {"GREETING": "two\nlines"}}}, ["U+000A"]),
    ({"config": {"resources": SMALL, "environ": {"BACKENDAI_KERNEL_ID": "spoof"}}}, ["reserved"]),
    ({"config": {"resources": SMALL, "environ": {"WORKBAY_IPC_DIR": "/tmp"}}}, ["reserved"]),
    ({"config": {"resources": SMALL, "environ": {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}}}, ["reserved"]),
    ({"config": {"resources": SMALL, "environ": {"LOCAL_USER_ID": "0"}}}, ["reserved"]),
    ({"config": {"resources": SMALL}, "callback_url": "file:///etc/passwd"}, ["http://"]),
    ({"config": {"resources": SMALL}, "callback_url": "gopher://example.com/"}, ["http://"]),
    ({"config": {"resources": SMALL}, "callback_url": "http://127.0.0.1:6022/folders"}, ["loopback"]),
    ({"config": {"resources": SMALL}, "callback_url": "http://[::1]/x"}, ["loopback"]),
    ({"config": {"resources": SMALL, "mounts": ["x\u202eyz"]}}, ["U+202E"]),
    ({"config": {"resources": SMALL}, "tag": "t\u0000"}, ["U+0000"]),
    ({"config": {"resources": SMALL}, "name": "good-name\n"}, ["name"]),
]


@pytest.mark.parametrize("extra,says", BAD_SESSIONS, ids=[str(i) for i in range(len(BAD_SESSIONS))])
async def test_bad_session_requests_are_refused(system, extra, says):
    body = {**BATCH, **extra}
    await refused(system.user.post("/session", json=body), *says)


async def test_refused_requests_created_nothing_and_good_ones_still_work(system):
    for extra, _ in BAD_SESSIONS:
        with pytest.raises(APIError):
            await system.user.post("/session", json={**BATCH, **extra})
    assert (await system.user.get("/sessions"))["total_count"] == 0
    ok = await system.user.post("/session", json={
        **BATCH, "name": "fine-batch", "starts_at": "3h", "callback_url": "https://example.com/done",
        "config": {"resources": {"cpu": "0.5", "mem": "256m"}, "environ": {"GREETING": "tab\tok", "LANG": "C.UTF-8"}}})
    info = await system.session(system.user, ok["sessionId"])
    assert info["status"] == "PENDING" and info["environ"]["GREETING"] == "tab\tok"
    await system.user.delete(f"/session/{ok['sessionId']}")


@pytest.mark.parametrize("name", ["x\u202eyz", "a\u200bb", "\ufeffname", "a\u2066b\u2069", "a\u200db", "a\u0085b",
                                  "line\u2028sep"])
async def test_folder_names_with_invisible_characters_are_refused(system, name):
    await refused(system.user.post("/folders", json={"name": name}), "invisible or control")
    assert name not in {f["name"] for f in await system.user.get("/folders")}


async def test_full_names_and_admin_objects(system):
    admin = system.admin
    await refused(system.user.post("/auth/update-full-name", json={"full_name": "Eve\u0000"}), "U+0000")
    await refused(admin.patch("/admin/users/user@workbay.local", json={"full_name": "Eve\u0000"}), "U+0000")
    await refused(admin.patch("/admin/users/user@workbay.local", json={"description": "a\u0007b"}), "U+0007")
    users = await admin.get("/admin/users", params={"q": "user@workbay.local"})
    assert all("\u0000" not in (u.get("full_name") or "") for u in users["items"])
    await refused(admin.post("/admin/users", json={"email": "new@example.com\n", "username": "newbie",
                                                   "password": "Val1d!pass-word"}), "e-mail")
    await refused(admin.post("/admin/projects", json={"name": "proj\n", "domain_name": "default"}), "name")
    await refused(admin.post("/admin/projects", json={"name": "proj", "description": "x\u0000"}), "U+0000")
    await refused(admin.post("/admin/resource-policies/keypair", json={
        "name": "too-much", "total_resource_slots": {"cpu": 2**70}}), "cpu", "2^63")
    await refused(admin.post("/admin/resource-policies/keypair", json={
        "name": "nan-policy", "total_resource_slots": {"cpu": "NaN"}}), "cpu")
    await refused(admin.post("/admin/resource-presets", json={"name": "inf-preset",
                                                     "resource_slots": {"cpu": "Infinity", "mem": "1g"}}), "cpu")
    # limits may still say "unlimited"
    await admin.post("/admin/resource-policies/keypair", json={
        "name": "unlimited-cpu", "total_resource_slots": {"cpu": "Infinity", "mem": "64g"}})

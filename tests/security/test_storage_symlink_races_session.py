"""Findings 1 and 2 as they were found: the swapper runs in a REAL session container of the
attacker, on the attacker's folder mounted into it, exchanging ``d`` (a directory) with ``d_alt``
(a symlink to the victim's folder on the host) with ``renameat2(RENAME_EXCHANGE)`` in a python3
loop, while the test GETs ``d/secret.txt`` with one download token and uploads ``d/pwnN.txt``.
Bounded: 300 GETs and 30 uploads.  No GET may ever return the victim's bytes, and no upload may
land in the victim's folder (or anywhere outside the attacker's)."""

from __future__ import annotations

import asyncio
import base64
import shlex
import uuid

import httpx
import pytest

from tests.security.test_storage_symlink_races import SWAPPER, TUS, folder_dir
from tests.support.sessions import IMAGE, SMALL, running_system, shell
from workbay.client.sdk import APIError

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("races")) as sysm:
        yield sysm


async def test_swapper_in_a_session_never_wins(system):
    victim = await system.login("user2@workbay.local")
    attacker = await system.login("user@workbay.local")
    theirs_name, mine_name = f"theirs-{uuid.uuid4().hex[:6]}", f"mine-{uuid.uuid4().hex[:6]}"
    theirs = folder_dir(system.data_dir, (await victim.post("/folders", json={"name": theirs_name}))["id"])
    (theirs / "secret.txt").write_bytes(b"OTHER USER'S SECRET\n")
    mine = folder_dir(system.data_dir, (await attacker.post("/folders", json={"name": mine_name}))["id"])

    created = await attacker.post("/session", json={
        "image": IMAGE, "name": f"race-{uuid.uuid4().hex[:6]}",
        "config": {"resources": SMALL, "mounts": [mine_name]}})
    assert created["status"] == "RUNNING", created
    sid = created["sessionId"]
    inside = f"/home/work/{mine_name}"
    script = base64.b64encode(SWAPPER.encode()).decode()
    out, err = await shell(attacker, sid, (
        f"cd {inside} && mkdir d && printf 'mine\\n' > d/secret.txt && ln -s {shlex.quote(str(theirs))} d_alt"
        f" && echo {script} | base64 -d > /tmp/swap.py"
        f" && (setsid python3 /tmp/swap.py {inside} 120 > /tmp/swap.log 2>&1 < /dev/null &)"
        f" && for i in $(seq 50); do [ -e swapping ] && break; sleep 0.1; done; ls"))
    assert "swapping" in out, (out, err)

    leaks, answers, outside = 0, {}, []
    try:
        r = await attacker.post(f"/folders/{mine_name}/request-download", json={"path": "d/secret.txt"})
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(300):
                try:
                    resp = await http.get(r["url"], params={"token": r["token"]})
                except httpx.RemoteProtocolError:  # headers of the other file, then its bytes cut
                    leaks += 1
                    continue
                leaks += b"OTHER" in resp.content or (resp.status_code == 200 and resp.content != b"mine\n")
                answers[resp.status_code] = answers.get(resp.status_code, 0) + 1
            for i in range(30):
                try:
                    up = await attacker.post(f"/folders/{mine_name}/request-upload",
                                             json={"path": f"d/pwn{i}.txt", "size": 4})
                except APIError as e:
                    assert 400 <= e.status < 500, e
                    continue
                resp = await http.patch(up["url"], params={"token": up["token"]}, content=b"pwn!",
                                        headers={**TUS, "Upload-Offset": "0"})
                assert resp.status_code == 204 or 400 <= resp.status_code < 500, resp.text
        outside = [p.name for p in theirs.iterdir() if p.name != "secret.txt"]
    finally:
        (mine / "stop").touch()
        for _ in range(100):
            if (mine / "swaps").exists():
                break
            await asyncio.sleep(0.1)
        await attacker.delete(f"/session/{sid}")
    swaps = int((mine / "swaps").read_text() or 0)
    assert swaps > 0, "the swapper never ran"
    assert leaks == 0, f"{leaks} GETs returned the other user's file ({answers})"
    assert all(s == 200 or 400 <= s < 500 for s in answers), answers
    assert outside == [], f"uploads landed in the other user's folder: {outside}"

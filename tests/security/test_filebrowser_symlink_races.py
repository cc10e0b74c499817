"""Findings 1, 2 and 7 in the runner's File Browser (it serves a mounted folder as its root,
inside the session): it checked a path by name (realpath inside the root) and then used it by
name, so a ``renameat2(RENAME_EXCHANGE)`` loop swapping ``d`` with a link ``d_alt`` leading out
of the root made downloads read, and uploads write, outside the root; and ``open()`` of a FIFO
blocked its one event loop.  Now it walks by descriptor (links inside the root are walked, links
out of it never; the last component is acted on by ``*at`` calls) and reads only regular files.

A real session, the real app-proxy, the swapper in the container as the session's user; bounded:
300 downloads and 30 uploads."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid

import httpx
import pytest

from tests.integration.test_filebrowser import XHR, open_browser, shell, start_session
from tests.security.test_storage_symlink_races import SWAPPER
from tests.support.sessions import running_system

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("fbraces"), appproxy=True) as sysm:
        yield sysm


async def test_file_browser_never_leaves_its_root(system):
    user = await system.login("user@workbay.local")
    data = f"fbrace-{uuid.uuid4().hex[:6]}"
    await user.post("/folders", json={"name": data})
    sid = await start_session(user, [data])
    root = f"/home/work/{data}"
    script = base64.b64encode(SWAPPER.encode()).decode()
    # outside the root (the home), a file the File Browser must never serve from this root
    out = await shell(user, sid, (
        f"mkdir -p /home/work/outside && printf 'OUTSIDE THE ROOT\\n' > /home/work/outside/secret.txt"
        f" && cd {root} && mkdir d && printf 'inside\\n' > d/secret.txt && ln -s /home/work/outside d_alt"
        f" && mkfifo pipe && echo {script} | base64 -d > /tmp/swap.py"
        f" && (setsid python3 /tmp/swap.py {root} 120 > /tmp/swap.log 2>&1 < /dev/null &)"
        f" && for i in $(seq 50); do [ -e swapping ] && break; sleep 0.1; done; ls"))
    assert "swapping" in out, out

    browser, base = await open_browser(user, sid, root)
    leaks, answers = 0, {}
    async with contextlib.aclosing(browser):
        try:
            for _ in range(300):
                try:
                    r = await browser.get(f"{base}/api/download", params={"path": "d/secret.txt"})
                except httpx.RemoteProtocolError:  # the other file's length, its bytes cut
                    leaks += 1
                    continue
                leaks += b"OUTSIDE" in r.content or (r.status_code == 200 and r.content != b"inside\n")
                answers[r.status_code] = answers.get(r.status_code, 0) + 1
            for i in range(30):
                r = await browser.put(f"{base}/api/upload", params={"path": f"d/pwn{i}.txt"}, content=b"pwn!",
                                      headers={**XHR, "Content-Type": "application/octet-stream"})
                assert r.status_code == 201 or 400 <= r.status_code < 500, r.text
            # a FIFO is refused at once, and the File Browser still answers afterwards
            pipes = await asyncio.gather(*[browser.get(f"{base}/api/download", params={"path": "pipe"},
                                                       timeout=20) for _ in range(10)])
            listed_after = (await browser.get(f"{base}/api/list", params={"path": ""})).status_code
        finally:
            await shell(user, sid, f"touch {root}/stop; for i in $(seq 50); do [ -e {root}/swaps ] && break;"
                        " sleep 0.1; done")
    outside = (await shell(user, sid, "ls /home/work/outside")).split()
    swaps = (await shell(user, sid, f"cat {root}/swaps")).strip()
    await user.delete(f"/session/{sid}")
    assert int(swaps or 0) > 0, "the swapper never ran"
    assert leaks == 0, f"{leaks} downloads returned a file outside the root ({answers})"
    assert all(s == 200 or 400 <= s < 500 for s in answers), answers
    assert outside == ["secret.txt"], f"uploads landed outside the root: {outside}"
    assert {p.status_code for p in pipes} == {400}, [p.text for p in pipes]
    assert listed_after == 200

"""Finding 7: a FIFO in a folder (``mkfifo`` in a session) plus ``request-download`` and 45
concurrent GETs blocked storage-proxy threads (``open()`` of a FIFO waits for a writer): downloads,
tus PATCHes and even the manager's ``GET /user/me`` timed out in the all-in-one process.  Now the
proxy looks at what it opens (``O_PATH`` + ``fstat``) and refuses anything but a regular file with
a 4xx, without opening it; the rest of the system keeps answering."""

from __future__ import annotations

import asyncio
import os

import httpx

from tests.security.test_storage_symlink_races import TUS, lite, make_folder  # noqa: F401 - fixture

CONCURRENT = 60  # more than the worker threads (40) the proxy and the manager share


async def test_fifo_download_refused_and_nothing_blocks(lite):  # noqa: F811
    _, user, data_dir, _ = lite
    folder = await make_folder(user, "pipes", data_dir)
    os.mkfifo(folder / "pipe")
    os.mkfifo(folder / "d_pipe")
    (folder / "dir").mkdir()
    os.mkfifo(folder / "dir" / "inner_pipe")
    (folder / "dir" / "f.txt").write_bytes(b"regular")

    one = await user.post("/folders/pipes/request-download", json={"path": "pipe"})
    arch = await user.post("/folders/pipes/request-download", json={"path": "dir", "archive": True})
    timeout = httpx.Timeout(20.0)
    async with httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=None)) as http:
        gets = [http.get(one["url"], params={"token": one["token"]}) for _ in range(CONCURRENT)]
        answers = await asyncio.gather(*gets)
        assert {r.status_code for r in answers} == {400}, {r.status_code for r in answers}
        assert all(r.headers["content-type"].startswith("application/problem+json") for r in answers)
        # a directory holding a FIFO zips without it (the FIFO never opened)
        r = await http.get(arch["url"], params={"token": arch["token"]})
        assert r.status_code == 200, r.text
        # the manager and the proxy still answer: the user, a listing, an upload
        assert (await user.get("/user/me"))["email"] == "user@workbay.local"
        names = {i["name"]: i["type"] for i in (await user.get("/folders/pipes/files"))["items"]}
        assert names["pipe"] == "FILE" and names["dir"] == "DIRECTORY"
        up = await user.post("/folders/pipes/request-upload", json={"path": "after.txt", "size": 2})
        r = await http.patch(up["url"], params={"token": up["token"]}, content=b"ok",
                             headers={**TUS, "Upload-Offset": "0"})
        assert r.status_code == 204, r.text
    assert (folder / "after.txt").read_bytes() == b"ok"
    # an upload over a FIFO replaces it; nothing waited for a writer or reader
    up = await user.post("/folders/pipes/request-upload", json={"path": "d_pipe", "size": 0})
    assert (folder / "d_pipe").is_file()

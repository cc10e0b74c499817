"""Storage-proxy throughput and listing latency against plain tools on the same disk.

A real storage-proxy runs in a child process (both apps, uvicorn on free localhost ports, exactly
as ``workbay storage-proxy`` serves them) with one vfs volume in a temporary directory; the
baselines work in that same directory, so both sides use the same disk and filesystem.

* upload: a file of ``--size-mib`` MiB (random bytes, written once) goes up through the tus API:
  ``PATCH /upload`` in chunks of ``--chunk-mib`` MiB (16, as the Backend.AI SDK does), httpx
  streaming each chunk from the file in 1 MiB reads (never the whole file in memory), until the
  proxy moves the complete file into the folder; against ``cp`` of the same file on the same
  disk. The uploaded file must be byte-identical (sha256) before anything is reported.
* download: ``GET /download`` of the uploaded file, streamed and discarded (httpx, as received),
  against ``cat file > /dev/null``.
* listing: ``GET /files`` of a directory with ``--files`` entries until the whole JSON answer has
  arrived (parsing it is not timed; median of 5 after a warm-up), against ``os.scandir`` of the
  same directory with one ``stat`` per entry (the name, type, size, mode and times ``GET /files``
  returns; plain ``os.scandir`` without ``stat`` is shown too).

* folder list (``--folders`` N, default 10): ``GET /folders`` of the manager (manager and
  storage-proxy of a throwaway ``workbay.lite`` in a thread, SQLite) for a user with N folders of
  ``--folder-files`` files each (10,000; written straight to disk, as sessions write), cold (every
  folder's usage figure dropped before the call, so the proxy walks each folder) and cached (the
  proxy's cached figures), against the same call for a user with no folders (the call's own cost).
  Sizes are checked against the files written before anything is reported.

No fsync on either side (``sync`` runs before each timed step so earlier writes do not bleed
into it); the source file is in the page cache for both ``cp`` and tus, and so is the uploaded
file for both ``cat`` and the download: these are the proxy's own costs, not the disk's.

Upload and download run ``--rounds`` times (default 3), each round timing the baseline and then
the proxy, and the medians are reported: a shared machine's load moves these numbers a lot.

Run: .venv/bin/python benchmarks/storage.py [--size-mib 1024] [--files 10000] [--chunk-mib 16]
     [--rounds 3] [--dir DIR] [--folders 10] [--folder-files 10000] [--only transfer|folders]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

MIB = 1 << 20
SECRET = "storage-benchmark-secret-" + "b" * 16
QSID = f"user:{uuid.UUID(int=0xBE4C)}"
READ = MIB  # bytes httpx reads from the file at a time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the storage-proxy (child process) ---

def serve(data_dir: str, client_port: int, manager_port: int) -> None:
    from workbay.common.config import load_config
    from workbay.lite import serve as lite_serve

    config = load_config(data_dir=Path(data_dir), secrets={"storage": SECRET},
                         storage={"host": "127.0.0.1", "client_port": client_port,
                                  "manager_port": manager_port})
    asyncio.run(lite_serve(config, ["storage-proxy"]))


class StorageProxy:
    def __init__(self, data_dir: Path) -> None:
        self.client_port, self.manager_port = free_port(), free_port()
        self.client_url = f"http://127.0.0.1:{self.client_port}"
        self.manager_url = f"http://127.0.0.1:{self.manager_port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir),
                                      str(self.client_port), str(self.manager_port)])
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the storage-proxy exited with {self.proc.returncode}")
            try:
                if httpx.get(self.client_url + "/").status_code == 200 \
                        and httpx.get(self.manager_url + "/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the storage-proxy did not start within 60 s")
            time.sleep(0.1)

    def peak_rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def token(op: str, vfid: str, relpath: str, **extra) -> str:
    from workbay.storage.tokens import issue_token

    return issue_token(SECRET, op, "local:volume1", vfid, relpath, 3600, **extra)


# --- helpers ---

def make_file(path: Path, size: int) -> str:
    """Random bytes in 16 MiB pieces; returns the sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(16 * MIB, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MIB):
            h.update(block)
    return h.hexdigest()


def timed_cmd(cmd: str) -> float:
    os.sync()
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True)
    return time.perf_counter() - t0


def file_range(f, start: int, length: int) -> Iterator[bytes]:
    f.seek(start)
    while length > 0:
        block = f.read(min(READ, length))
        if not block:
            raise RuntimeError("the source file is shorter than expected")
        length -= len(block)
        yield block


def tus_upload(http: httpx.Client, url: str, tok: str, src: Path, size: int, chunk: int) -> None:
    """The tus client loop: PATCH chunk after chunk, each streamed from the file."""
    offset = 0
    with open(src, "rb") as f:
        while offset < size:
            n = min(chunk, size - offset)
            r = http.patch(url, params={"token": tok}, content=file_range(f, offset, n),
                           headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
                                    "Content-Type": "application/offset+octet-stream",
                                    "Content-Length": str(n)})
            if r.status_code != 204:
                raise RuntimeError(f"PATCH at {offset}: {r.status_code} {r.text[:300]}")
            offset = int(r.headers["upload-offset"])


def download(http: httpx.Client, url: str, tok: str) -> int:
    got = 0
    with http.stream("GET", url, params={"token": tok}) as r:
        if r.status_code != 200:
            raise RuntimeError(f"GET /download: {r.status_code} {r.read()[:300]!r}")
        for block in r.iter_raw():
            got += len(block)
    return got


def scandir_stat(path: Path) -> int:
    n = 0
    with os.scandir(path) as it:
        for entry in it:
            entry.stat(follow_symlinks=False)
            n += 1
    return n


def scandir_names(path: Path) -> int:
    with os.scandir(path) as it:
        return sum(1 for _ in it)


def median_ms(fn, runs: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def check_space(where: Path, size: int) -> int:
    """Shrink ``size`` when the disk has less than 3 × size free (source, cp copy, upload)."""
    out = subprocess.run(["df", "-B1", "--output=avail", str(where)], capture_output=True,
                         text=True, check=True).stdout.split()
    free = int(out[-1])
    if free >= 3 * size + 256 * MIB:
        return size
    shrunk = max((free - 256 * MIB) // 3 // MIB * MIB, 0)
    if shrunk < 16 * MIB:
        sys.exit(f"Not enough disk space in {where}: {free / MIB:.0f} MiB free, "
                 f"at least {3 * 16 + 256} MiB needed.")
    print(f"NOTE: only {free / MIB:.0f} MiB free in {where} (df); a {size // MIB} MiB file needs "
          f"3 × that. Shrinking the file to {shrunk // MIB} MiB.", flush=True)
    return shrunk


# --- the folder list ---

ADMIN = "admin@workbay.local"
ADMIN_PASSWORD = "Adm1n!bench-pass"
USER_PASSWORD = "Us3r!bench-pass"


def free_pair() -> int:
    """A port base with the manager's and the storage-proxy's ports free (lite offsets 1..3)."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "big") % 20000
        try:
            with socket.socket() as a, socket.socket() as b, socket.socket() as c, socket.socket() as d:
                for sock, off in ((a, 0), (b, 1), (c, 2), (d, 3)):
                    sock.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


async def folder_list(args: argparse.Namespace, base_dir: Path) -> dict[str, float]:
    from workbay.client.sdk import Client
    from workbay.lite import lite_config, start_in_thread

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    work = Path(tempfile.mkdtemp(prefix="workbay-folders-bench-", dir=base_dir))
    handle = None
    try:
        port_base = free_pair()
        config = lite_config(work, port_base)
        handle = start_in_thread(work, port_base, components=("manager", "storage-proxy"), config=config)
        url = handle.manager_url

        async def login(email: str, password: str) -> Client:
            async with httpx.AsyncClient() as http:
                r = await http.post(url + "/auth/authorize", json={
                    "type": "keypair", "domain": "default", "username": email, "password": password})
                r.raise_for_status()
                data = r.json()["data"]
            return Client(url, data["access_key"], data["secret_key"], timeout=600)

        admin = await login(ADMIN, ADMIN_PASSWORD)
        clients = {}
        for who in ("owner", "empty"):
            email = f"bench-{who}@example.test"
            await admin.post("/admin/users", json={"email": email, "username": f"bench-{who}",
                                                    "password": USER_PASSWORD})
            clients[who] = await login(email, USER_PASSWORD)
        owner, empty = clients["owner"], clients["empty"]
        names = [f"bench-{i:03d}" for i in range(args.folders)]
        expected = {}
        print(f"writing {args.folders} folders × {args.folder_files} files …", flush=True)
        for name in names:
            created = await owner.post("/folders", json={"name": name})
            kind, _, scope = created["quota_scope_id"].partition(":")
            folder = work / "volumes" / "volume1" / kind / scope / created["id"]
            total = 0
            for i in range(args.folder_files):
                sub = folder / f"d{i // 1000:03d}"
                if i % 1000 == 0:
                    sub.mkdir()
                size = i % 100
                with open(sub / f"f{i:06d}", "wb") as f:
                    f.write(b"x" * size)
                total += size
            expected[name] = total
        os.sync()

        async def listing(client: Client) -> list:
            return await client.get("/folders")

        async def drop_figures() -> None:
            # a write through the proxy (an existing directory, nothing changes on disk) drops
            # the folder's cached figure: the next listing walks it again
            for name in names:
                await owner.post(f"/folders/{name}/mkdir", json={"path": "d000", "exist_ok": True})

        sizes = {f["name"]: f["cur_size"] for f in await listing(owner)}
        if sizes != expected:
            raise RuntimeError(f"GET /folders reported other sizes: {sizes} != {expected}")
        if await listing(empty):
            raise RuntimeError("the user without folders lists some")

        async def timed_ms(call, before=None) -> float:
            times = []
            for _ in range(args.rounds + 1):  # the first is a warm-up
                if before is not None:
                    await before()
                t0 = time.perf_counter()
                await call()
                times.append((time.perf_counter() - t0) * 1000)
            return statistics.median(times[1:])

        out = {"empty": await timed_ms(lambda: listing(empty)),
               "cold": await timed_ms(lambda: listing(owner), drop_figures),
               "cached": await timed_ms(lambda: listing(owner))}
        for c in (admin, owner, empty):
            await c.close()
        return out
    finally:
        if handle is not None:
            handle.stop()
        shutil.rmtree(work, ignore_errors=True)


def report_folder_list(args: argparse.Namespace, ms: dict[str, float]) -> None:
    print()
    print(f"GET /folders with {args.folders} folders of {args.folder_files} files each "
          f"(medians of {args.rounds}; sizes verified)")
    print(f"{'':36}{'time':>15}{'vs empty list':>15}")
    print(f"{'  no folders (the call itself)':36}{ms['empty']:>12.1f} ms{1:>15.2f}")
    print(f"{'  cold (every folder walked)':36}{ms['cold']:>12.1f} ms{ms['cold'] / ms['empty']:>15.2f}")
    print(f"{'  cached usage figures':36}{ms['cached']:>12.1f} ms{ms['cached'] / ms['empty']:>15.2f}")
    print(f"cold / cached: {ms['cold'] / ms['cached']:.1f}× (lower ratios are better)")


# --- the benchmark ---

def run(args: argparse.Namespace) -> None:
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    if args.only != "folders":
        transfer(args, base)
    if args.only != "transfer" and args.folders > 0:
        report_folder_list(args, asyncio.run(folder_list(args, base)))


def transfer(args: argparse.Namespace, base: Path) -> None:
    size = check_space(base, args.size_mib * MIB)
    chunk = args.chunk_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="workbay-storage-bench-", dir=base))
    proxy = None
    try:
        data_dir = work / "data"
        plain = work / "plain"
        plain.mkdir()
        src = plain / "source.bin"
        print(f"writing a {size // MIB} MiB random file in {work} …", flush=True)
        digest = make_file(src, size)

        proxy = StorageProxy(data_dir)
        vfid = uuid.uuid4().hex
        with httpx.Client(base_url=proxy.manager_url, headers={"X-Workbay-Secret": SECRET},
                          timeout=60) as mgr:
            r = mgr.post("/folder/create", json={"volume": "volume1", "vfid": vfid,
                                                 "quota_scope_id": QSID})
            r.raise_for_status()
            folder = Path(r.json()["path"])
        if os.stat(folder).st_dev != os.stat(plain).st_dev:
            raise RuntimeError("the volume and the baseline directory are on different devices")

        cp_s, tus_s, cat_s, get_s = [], [], [], []
        uploaded = folder / "bench" / "uploaded.bin"
        with httpx.Client(base_url=proxy.client_url, timeout=120) as http:
            # upload: cp and tus in alternation, so the machine's load affects both alike
            for i in range(args.rounds):
                cp_s.append(timed_cmd(f"cp {src} {plain / 'copy.bin'}"))
                (plain / "copy.bin").unlink()
                uploaded.unlink(missing_ok=True)
                tok = token("upload", vfid, "bench/uploaded.bin", size=size, session=f"bench-{i}")
                os.sync()
                t0 = time.perf_counter()
                tus_upload(http, "/upload", tok, src, size, chunk)
                tus_s.append(time.perf_counter() - t0)
                if sha256_of(uploaded) != digest:
                    raise RuntimeError("the uploaded file differs from the source (sha256)")
                print(f"  round {i + 1}/{args.rounds}: cp {size / MIB / cp_s[-1]:.0f} MiB/s, "
                      f"tus {size / MIB / tus_s[-1]:.0f} MiB/s (sha256 ok)", flush=True)

            # download (the uploaded file, in the page cache for both)
            tok = token("download", vfid, "bench/uploaded.bin")
            for i in range(args.rounds):
                cat_s.append(timed_cmd(f"cat {uploaded} > /dev/null"))
                os.sync()
                t0 = time.perf_counter()
                got = download(http, "/download", tok)
                get_s.append(time.perf_counter() - t0)
                if got != size:
                    raise RuntimeError(f"GET /download returned {got} bytes, not {size}")
                print(f"  round {i + 1}/{args.rounds}: cat {size / MIB / cat_s[-1]:.0f} MiB/s, "
                      f"GET {size / MIB / get_s[-1]:.0f} MiB/s", flush=True)
            uploaded.unlink()

            # listing
            many = folder / "many"
            many.mkdir()
            for i in range(args.files):
                with open(many / f"file-{i:06d}.txt", "wb") as f:
                    f.write(b"x" * (i % 100))
            os.sync()
            tok = token("files", vfid, "")

            def api_list() -> httpx.Response:  # the whole answer read, not parsed
                r = http.get("/files", params={"token": tok, "path": "many"})
                if r.status_code != 200:
                    raise RuntimeError(f"GET /files: {r.status_code} {r.text[:300]}")
                return r

            if len(api_list().json()["items"]) != args.files:
                raise RuntimeError("GET /files did not list every file")
            list_ms = median_ms(api_list)
            stat_ms = median_ms(lambda: scandir_stat(many))
            names_ms = median_ms(lambda: scandir_names(many))
        rss = proxy.peak_rss_mib()
    finally:
        if proxy:
            proxy.stop()
        shutil.rmtree(work, ignore_errors=True)

    mibs = size / MIB
    up, cp = mibs / statistics.median(tus_s), mibs / statistics.median(cp_s)
    get, cat = mibs / statistics.median(get_s), mibs / statistics.median(cat_s)
    print()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; file {mibs:.0f} MiB (sha256 verified), tus "
          f"chunks {args.chunk_mib} MiB, medians of {args.rounds} rounds; {args.files} files listed")
    print(f"{'':36}{'storage-proxy':>15}{'baseline':>15}{'ratio':>8}")
    print(f"{'upload   tus PATCH vs cp':36}{up:>9.0f} MiB/s{cp:>9.0f} MiB/s{up / cp:>8.2f}")
    print(f"{'download GET vs cat > /dev/null':36}{get:>9.0f} MiB/s{cat:>9.0f} MiB/s"
          f"{get / cat:>8.2f}")
    print(f"{'listing  GET /files vs scandir+stat':36}{list_ms:>12.1f} ms{stat_ms:>12.1f} ms"
          f"{list_ms / stat_ms:>8.2f}")
    print(f"{'         (scandir, names only)':36}{'':15}{names_ms:>12.1f} ms"
          f"{list_ms / names_ms:>8.2f}")
    print("ratios: storage-proxy / baseline (throughput: 1.00 = as fast, higher is better; "
          "listing time: 1.00 = as fast, lower is better)")
    if rss is not None:
        print(f"storage-proxy peak RSS: {rss:.0f} MiB")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="upload/download file size")
    parser.add_argument("--files", type=int, default=10_000, help="entries in the listed directory")
    parser.add_argument("--chunk-mib", type=int, default=16, help="tus PATCH size")
    parser.add_argument("--rounds", type=int, default=3,
                        help="upload/download rounds (medians are reported)")
    parser.add_argument("--dir", help="where the temporary files go (default: the temp dir)")
    parser.add_argument("--folders", type=int, default=10, help="folders in the GET /folders figure")
    parser.add_argument("--folder-files", type=int, default=10_000, help="files in each of them")
    parser.add_argument("--only", choices=("transfer", "folders"),
                        help="only the upload/download/listing figures, or only GET /folders")
    args = parser.parse_args()
    if min(args.size_mib, args.files, args.chunk_mib, args.rounds, args.folder_files) < 1 \
            or args.folders < 0:
        parser.error("sizes and counts must be positive")
    run(args)


if __name__ == "__main__":
    main()

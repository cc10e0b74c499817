"""`workbay vfolder …` against a real system: `workbay up --demo` as a process, the CLI as a
subprocess logged in through the webserver as the demo users; file bytes go to the storage-proxy."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli import _wait_healthy
from tests.support.ports import free_port_base

ADMIN_PASSWORD = "Vf-adm1n!pw"
DEMO_PASSWORD = "Vf-dem0!pw"
WORKBAY = [sys.executable, "-m", "workbay.client.cli_entry"]
MiB = 1 << 20


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """`workbay up --demo` in a subprocess; user@ and user2@ logged in with their own config and
    cache directories."""
    data_dir = tmp_path_factory.mktemp("up")
    base = free_port_base()
    env = {**os.environ, "WORKBAY_ADMIN_PASSWORD": ADMIN_PASSWORD, "WORKBAY_DEMO_PASSWORD": DEMO_PASSWORD,
           "COLUMNS": "200"}
    for key in ("WORKBAY_ACCESS_KEY", "WORKBAY_SECRET_KEY", "WORKBAY_ENDPOINT"):
        env.pop(key, None)
    proc = subprocess.Popen([*WORKBAY, "up", "--data-dir", str(data_dir), "--port-base", str(base), "--demo"],
                            env={**env, "WORKBAY_CONFIG_DIR": str(tmp_path_factory.mktemp("upconf"))},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for offset in range(6):
            _wait_healthy(f"http://127.0.0.1:{base + offset}/healthz", proc)
        users = {}
        for who, email, password in (("user", "user@workbay.local", DEMO_PASSWORD),
                                     ("user2", "user2@workbay.local", DEMO_PASSWORD),
                                     ("admin", "admin@workbay.local", ADMIN_PASSWORD)):
            uenv = {**env, "WORKBAY_CONFIG_DIR": str(tmp_path_factory.mktemp(f"{who}-conf")),
                    "XDG_CACHE_HOME": str(tmp_path_factory.mktemp(f"{who}-cache"))}
            out = subprocess.run([*WORKBAY, "login", "--endpoint", f"http://127.0.0.1:{base}", "-u", email,
                                  "-p", password], env=uenv, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            users[who] = uenv
        yield {"base": base, "data_dir": data_dir, **users}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def vf(system, *args: str, who: str = "user", input: str | None = None, cwd: Path | None = None,
       ok: bool | None = True) -> subprocess.CompletedProcess:
    """`workbay vfolder ARGS` as ``who``; ``ok`` True/False asserts success/failure."""
    out = subprocess.run([*WORKBAY, "vfolder", *args], env=system[who], capture_output=True, text=True,
                         input=input, timeout=120, cwd=cwd)
    if ok is True:
        assert out.returncode == 0, f"vfolder {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    elif ok is False:
        assert out.returncode != 0, f"vfolder {' '.join(args)} should have failed:\n{out.stdout}"
    return out


def folders(system, who: str = "user", *flags: str) -> dict[str, dict]:
    return {f["name"]: f for f in json.loads(vf(system, "ls", "--json", *flags, who=who).stdout)}


def test_folder_lifecycle(system):
    created = json.loads(vf(system, "create", "life", "--usage-mode", "data", "--json").stdout)
    assert created["name"] == "life" and created["usage_mode"] == "data" and created["status"] == "ready"
    table = vf(system, "ls").stdout
    assert "life" in table and "ready" in table and "user@workbay.local" in table
    assert folders(system)["life"]["permission"] in ("rw", "wd")
    info = vf(system, "info", "life").stdout
    assert "life" in info and created["id"] in info and "data" in info
    dup = vf(system, "create", "life", ok=False)
    assert "Error" in dup.stderr

    vf(system, "rename", "life", "life2")
    assert "life2" in folders(system) and "life" not in folders(system)

    vf(system, "rm", "life2")
    assert "life2" not in folders(system)
    assert folders(system, "user", "--trash")["life2"]["status"] == "delete-pending"
    assert "life2" in vf(system, "ls", "--trash").stdout
    vf(system, "restore", "life2")
    assert folders(system)["life2"]["status"] == "ready"

    vf(system, "rm", "life2")
    wrong = vf(system, "purge", "life2", input="nope\n", ok=False)
    assert "does not match" in wrong.stderr
    assert "life2" in folders(system, "user", "--all")
    vf(system, "purge", "life2", input="life2\n")
    assert "life2" not in folders(system, "user", "--all")

    vf(system, "create", "gone")
    vf(system, "rm", "gone")
    vf(system, "purge", "gone", "--yes")
    assert "gone" not in folders(system, "user", "--all")
    missing = vf(system, "info", "gone", ok=False)
    assert "Error" in missing.stderr


def test_upload_tree_and_download_back(system, tmp_path):
    vf(system, "create", "data")
    src = tmp_path / "src"
    (src / "foo" / "test").mkdir(parents=True)
    (src / "foo" / "test.txt").write_text("hello from foo\n")
    (src / "foo" / "test" / "test2.txt").write_text("deeper\n")
    (src / "foo" / "empty.txt").write_bytes(b"")
    (src / "foo" / "nothing").mkdir()
    big = src / "big.bin"
    big.write_bytes(os.urandom(3 * MiB + 17))

    out = vf(system, "upload", "data", "foo", "big.bin", "--chunk-size", "1m", cwd=src)
    assert "Uploaded 4 files" in out.stdout
    listing = {f["name"]: f for f in json.loads(vf(system, "files", "data", "--json").stdout)}
    assert listing["foo"]["type"] == "DIRECTORY" and listing["big.bin"]["size"] == big.stat().st_size
    inner = {f["name"]: f for f in json.loads(vf(system, "files", "data", "foo", "--json").stdout)}
    assert set(inner) == {"test.txt", "test", "empty.txt", "nothing"} and inner["empty.txt"]["size"] == 0
    assert "test2.txt" in vf(system, "files", "data", "foo/test").stdout

    # a single file, byte for byte
    dl = tmp_path / "dl"
    vf(system, "download", "data", "big.bin", "-o", str(dl))
    assert _sha(dl / "big.bin") == _sha(big)
    # a directory as a zip, and extracted
    vf(system, "download", "data", "foo", "-o", str(dl))
    with zipfile.ZipFile(dl / "foo.zip") as zf:
        assert zf.read("foo/test.txt") == b"hello from foo\n"
        assert zf.read("foo/test/test2.txt") == b"deeper\n"
    ex = tmp_path / "ex"
    vf(system, "download", "data", "foo", "-o", str(ex), "--extract")
    assert (ex / "foo" / "test.txt").read_bytes() == (src / "foo" / "test.txt").read_bytes()
    assert (ex / "foo" / "test" / "test2.txt").read_bytes() == (src / "foo" / "test" / "test2.txt").read_bytes()
    assert not (ex / "foo.zip").exists()
    # the whole folder
    vf(system, "download", "data", "/", "-o", str(tmp_path / "all"), "--extract")
    assert _sha(tmp_path / "all" / "data" / "big.bin") == _sha(big)

    # into a base directory; mkdir, mv
    vf(system, "upload", "data", str(src / "foo" / "test.txt"), "--base-dir", "in/box")
    assert "test.txt" in vf(system, "files", "data", "in/box").stdout
    vf(system, "mkdir", "data", "a/b/c", "-p")
    vf(system, "mv", "data", "in/box/test.txt", "a/b/c")
    assert [f["name"] for f in json.loads(vf(system, "files", "data", "a/b/c", "--json").stdout)] == ["test.txt"]
    bad = vf(system, "upload", "data", str(big), "--base-dir", "../up", ok=False)
    assert "'..' is not allowed" in bad.stderr
    vf(system, "download", "data", "no/such.file", "-o", str(dl), ok=False)


def test_interrupted_upload_resumes_at_the_stored_offset(system, tmp_path):
    vf(system, "create", "resume")
    local = tmp_path / "large.bin"
    local.write_bytes(os.urandom(4 * MiB + 1000))
    state_file = Path(system["user"]["XDG_CACHE_HOME"]) / "workbay" / "uploads.json"

    # the first run stops after half of the 1 MiB chunks
    first = vf(system, "upload", "resume", str(local), "--chunk-size", "1m", "--stop-after", "2m", ok=None)
    assert first.returncode == 3, first.stderr
    assert f"stopped at {2 * MiB} bytes" in first.stderr
    [entry] = json.loads(state_file.read_text()).values()
    assert entry["session"]
    assert "large.bin" not in vf(system, "files", "resume").stdout  # not there until complete

    second = vf(system, "upload", "resume", str(local), "--chunk-size", "1m")
    assert f"Resuming large.bin at {2 * MiB} of {local.stat().st_size} bytes" in second.stderr
    assert json.loads(state_file.read_text()) == {}

    # downloads resume too: the first run stops after 1 MiB and leaves large.bin.part
    dl = tmp_path / "dl"
    first = vf(system, "download", "resume", "large.bin", "-o", str(dl), "--stop-after", "1m", ok=None)
    assert first.returncode == 3 and f"stopped at {MiB} bytes" in first.stderr
    assert (dl / "large.bin.part").stat().st_size == MiB and not (dl / "large.bin").exists()
    second = vf(system, "download", "resume", "large.bin", "-o", str(dl))
    assert f"Resuming large.bin at {MiB} bytes" in second.stderr
    assert _sha(dl / "large.bin") == _sha(local) and not (dl / "large.bin.part").exists()


def test_share_with_user2_read_only(system, tmp_path):
    vf(system, "create", "team")
    doc = tmp_path / "doc.txt"
    doc.write_text("shared words\n")
    vf(system, "upload", "team", str(doc))
    vf(system, "share", "team", "user2@workbay.local", "--perm", "ro")
    sent = json.loads(vf(system, "invitations", "--sent", "--json").stdout)
    assert [i["vfolder_name"] for i in sent] == ["team"]

    [inv] = [i for i in json.loads(vf(system, "invitations", "--json", who="user2").stdout)
             if i["vfolder_name"] == "team"]
    assert inv["perm"] == "ro" and inv["inviter"] == "user@workbay.local"
    assert "team" in vf(system, "invitations", who="user2").stdout
    vf(system, "accept", inv["id"], who="user2")
    assert json.loads(vf(system, "invitations", "--json", who="user2").stdout) == []

    mine = folders(system, "user2")
    assert mine["team"]["permission"] == "ro" and not mine["team"]["is_owner"]
    assert "team" in vf(system, "ls", who="user2").stdout
    dl = tmp_path / "dl"
    vf(system, "download", "team", "doc.txt", "-o", str(dl), who="user2")
    assert (dl / "doc.txt").read_text() == "shared words\n"
    refused = vf(system, "upload", "team", str(doc), who="user2", ok=False)
    assert refused.returncode == 1 and "Error" in refused.stderr and "upload" in refused.stderr.lower()
    assert "Traceback" not in refused.stderr
    vf(system, "rm", "team", who="user2", ok=False)

    vf(system, "unshare", "team", "user2@workbay.local")
    assert "team" not in folders(system, "user2")

    # an invitation declined leaves nothing behind
    vf(system, "create", "maybe")
    vf(system, "invite", "maybe", "user2@workbay.local", "--perm", "rw")
    [inv] = [i for i in json.loads(vf(system, "invitations", "--json", who="user2").stdout)
             if i["vfolder_name"] == "maybe"]
    vf(system, "decline", inv["id"], who="user2")
    assert json.loads(vf(system, "invitations", "--json", who="user2").stdout) == []
    assert "maybe" not in folders(system, "user2")
    # unsharing cancels a pending invitation too
    vf(system, "invite", "maybe", "user2@workbay.local")
    assert "Cancelled the invitation of user2@workbay.local" in vf(system, "unshare", "maybe",
                                                                  "user2@workbay.local").stdout
    assert json.loads(vf(system, "invitations", "--json", who="user2").stdout) == []


def test_clone(system, tmp_path):
    vf(system, "create", "origin", "--cloneable")
    f = tmp_path / "model.txt"
    f.write_text("weights\n")
    vf(system, "upload", "origin", str(f), "--base-dir", "m")
    vf(system, "clone", "origin", "copy")
    assert folders(system)["copy"]["status"] == "ready"
    dl = tmp_path / "dl"
    vf(system, "download", "copy", "m/model.txt", "-o", str(dl))
    assert (dl / "model.txt").read_text() == "weights\n"


def test_quota_refuses_an_upload_before_any_byte(system, tmp_path):
    vols = json.loads(vf(system, "volumes", "--json", who="admin").stdout)
    assert vols and all(v["host"] for v in vols)
    vf(system, "volumes", who="user", ok=False)
    vf(system, "create", "small")
    used = json.loads(vf(system, "quota", "--user", "user@workbay.local", "--json", who="admin").stdout)["used_bytes"]
    set_ = json.loads(vf(system, "quota", "--user", "user@workbay.local", "--set", str(used + MiB), "--json",
                         who="admin").stdout)
    assert set_["limit_bytes"] == used + MiB and set_["explicit"] is True
    assert "Quota" in vf(system, "quota", "--user", "user@workbay.local", who="admin").stdout
    vf(system, "quota", "--user", "user@workbay.local", "--set", "1m", who="user", ok=False)

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * MiB))
    refused = vf(system, "upload", "small", str(big), ok=False)
    assert "quota" in refused.stderr.lower() and "Traceback" not in refused.stderr
    assert "big.bin" not in vf(system, "files", "small").stdout

    unset = json.loads(vf(system, "quota", "--user", "user@workbay.local", "--unset", "--json", who="admin").stdout)
    assert unset["explicit"] is False
    vf(system, "upload", "small", str(big))
    assert "big.bin" in vf(system, "files", "small").stdout


def test_names_with_spaces_and_non_ascii(system, tmp_path):
    vf(system, "create", "my data ü")
    local = tmp_path / "sp ace+ü #1.txt"
    local.write_text("ünïcode\n")
    vf(system, "upload", "my data ü", str(local), "--base-dir", "dir ü")
    assert "sp ace+ü #1.txt" in vf(system, "files", "my data ü", "dir ü").stdout
    dl = tmp_path / "dl"
    vf(system, "download", "my data ü", "dir ü/sp ace+ü #1.txt", "-o", str(dl))
    assert (dl / "sp ace+ü #1.txt").read_text() == "ünïcode\n"
    vf(system, "rename", "my data ü", "ü 2")
    assert folders(system)["ü 2"]["status"] == "ready"

    # keypair mode (signed requests straight to the manager) reaches the same folder
    keys = httpx.post(f"http://127.0.0.1:{system['base'] + 1}/auth/authorize", timeout=30, json={
        "type": "keypair", "domain": "default", "username": "user@workbay.local",
        "password": DEMO_PASSWORD}).json()["data"]
    system["keypair"] = {**system["user"], "WORKBAY_ACCESS_KEY": keys["access_key"],
                         "WORKBAY_SECRET_KEY": keys["secret_key"],
                         "WORKBAY_ENDPOINT": f"http://127.0.0.1:{system['base'] + 1}"}
    assert "sp ace+ü #1.txt" in vf(system, "files", "ü 2", "dir ü", who="keypair").stdout
    vf(system, "upload", "ü 2", str(local), who="keypair")
    vf(system, "download", "ü 2", "sp ace+ü #1.txt", "-o", str(tmp_path / "kp"), who="keypair")
    assert (tmp_path / "kp" / "sp ace+ü #1.txt").read_text() == "ünïcode\n"

"""The pure parts of `workbay app|ssh|scp` and `workbay session download`: -b parsing, scp's
remote-path rewriting, the tunnel's byte piping against a local WebSocket server (no system),
multipart parsing and safe tar extraction."""

from __future__ import annotations

import asyncio
import io
import tarfile

import click
import pytest
import websockets

from workbay.client.cli_app import (
    Tunnel,
    local_url,
    parse_bind,
    rewrite_scp_args,
    scp_command,
    split_ssh_args,
    ssh_command,
)
from workbay.client.sdk import APIError
from workbay.client.sessions import DownloadError, extract_tar, multipart_parts


@pytest.mark.parametrize("value, expected", [
    (None, ("127.0.0.1", 0)),
    ("", ("127.0.0.1", 0)),
    ("8080", ("127.0.0.1", 8080)),
    ("0", ("127.0.0.1", 0)),
    ("0.0.0.0:2222", ("0.0.0.0", 2222)),
    ("localhost:9000", ("localhost", 9000)),
    ("[::1]:8888", ("::1", 8888)),
    (" 127.0.0.2:65535 ", ("127.0.0.2", 65535)),
])
def test_parse_bind(value, expected):
    assert parse_bind(value) == expected


@pytest.mark.parametrize("value", ["abc", "host:", ":", "1.2.3.4:x", "70000", "::1:80", "[::1]80", "[]:80",
                                   "host:-1"])
def test_parse_bind_rejects(value):
    with pytest.raises(click.BadParameter):
        parse_bind(value)


def test_scp_remote_paths_are_rewritten():
    assert rewrite_scp_args(["./local.txt", ":/home/work/data/"]) == ["./local.txt", "work@127.0.0.1:/home/work/data/"]
    assert rewrite_scp_args([":out.txt", "."]) == ["work@127.0.0.1:out.txt", "."]
    assert rewrite_scp_args(["-r", ":/home/work/results", "./r"]) == ["-r", "work@127.0.0.1:/home/work/results", "./r"]
    # option values stay as they are, even when they start with a colon
    assert rewrite_scp_args(["-o", ":odd", "-l", "100", "a", ":b"]) == ["-o", ":odd", "-l", "100", "a",
                                                                       "work@127.0.0.1:b"]
    assert rewrite_scp_args(["-rpl", "50", "a", ":b"]) == ["-rpl", "50", "a", "work@127.0.0.1:b"]
    assert rewrite_scp_args(["-l50", "a", ":b"]) == ["-l50", "a", "work@127.0.0.1:b"]
    assert rewrite_scp_args(["--", "-dash-file", ":b"], "me@host") == ["--", "-dash-file", "me@host:b"]
    # a plain file that merely contains a colon is local
    assert rewrite_scp_args(["a:b", ":c"]) == ["a:b", "work@127.0.0.1:c"]


@pytest.mark.parametrize("args", [["a", "b"], ["-r", "x"], [":a", "-i"], []])
def test_scp_needs_a_remote_path_and_complete_options(args):
    with pytest.raises(click.UsageError):
        rewrite_scp_args(args)


def test_ssh_arguments_split_into_options_and_command():
    assert split_ssh_args(["echo", "$((6*7))"]) == ([], ["echo", "$((6*7))"])
    assert split_ssh_args(["-L", "8888:127.0.0.1:8888", "-N"]) == (["-L", "8888:127.0.0.1:8888", "-N"], [])
    assert split_ssh_args(["-t", "htop"]) == (["-t"], ["htop"])
    assert split_ssh_args(["-vo", "ServerAliveInterval=5", "ls", "-l"]) == (
        ["-vo", "ServerAliveInterval=5"], ["ls", "-l"])
    assert split_ssh_args(["-oBatchMode=yes", "--", "-weird-command"]) == (["-oBatchMode=yes"], ["-weird-command"])
    with pytest.raises(click.UsageError):
        split_ssh_args(["-L"])
    ssh = ssh_command("/k", 22, ["-t", "top", "-b"])
    assert ssh[ssh.index("work@127.0.0.1") - 1] == "-t" and ssh[-2:] == ["top", "-b"]


def test_commands():
    ssh = ssh_command("/tmp/k", 2222, ["echo", "hi"])
    assert ssh[:5] == ["ssh", "-i", "/tmp/k", "-p", "2222"] and ssh[-3:] == ["work@127.0.0.1", "echo", "hi"]
    assert "StrictHostKeyChecking=no" in ssh and "UserKnownHostsFile=/dev/null" in ssh
    scp = scp_command("/tmp/k", 2222, ["f", ":/home/work/"])
    assert scp[:5] == ["scp", "-i", "/tmp/k", "-P", "2222"] and scp[-2:] == ["f", "work@127.0.0.1:/home/work/"]
    assert local_url({"protocol": "http"}, "127.0.0.1", 80) == "http://127.0.0.1:80/"
    assert local_url({"protocol": "tcp"}, "0.0.0.0", 22) == "127.0.0.1:22"
    assert local_url({"protocol": "http"}, "::1", 8) == "http://[::1]:8/"


# -- the tunnel against a local WebSocket "app-proxy" -----------------------------------------------
class FakeClient:
    """start-service answers circuits whose tcp_url points at the local server; the first may be
    stale (refused with 403)."""

    def __init__(self, port: int, first_token: str = "good", fail: APIError | None = None) -> None:
        self.port, self.calls, self.first_token, self.fail = port, 0, first_token, fail

    async def post(self, path: str, json=None):
        self.calls += 1
        if self.fail:
            raise self.fail
        token = self.first_token if self.calls == 1 else "good"
        return {"protocol": "tcp", "app": json["app"],
                "tcp_url": f"ws://127.0.0.1:{self.port}/v1/tcp/c1?token={token}"}


@pytest.fixture
async def echo_proxy():
    """A TCP-over-WebSocket endpoint whose "app" answers every chunk upper-cased."""
    seen: list[str] = []

    async def handler(ws):
        seen.append(ws.request.path)
        async for msg in ws:
            assert isinstance(msg, bytes)
            await ws.send(msg.upper())

    def refuse(conn, request):
        if not request.path.endswith("token=good"):
            return conn.respond(403, "refused\n")
        return None

    async with websockets.serve(handler, "127.0.0.1", 0, process_request=refuse, max_size=None) as server:
        yield server.sockets[0].getsockname()[1], seen


async def _roundtrip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    got = b""
    while len(got) < len(payload):
        chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
        assert chunk, "the tunnel closed early"
        got += chunk
    writer.close()
    return got


async def test_tunnel_pipes_bytes_both_ways(echo_proxy):
    port, seen = echo_proxy
    tunnel = Tunnel(FakeClient(port), "s", "sshd", log=lambda m: None)
    host, local = await tunnel.start("127.0.0.1", 0)
    try:
        assert host == "127.0.0.1" and local > 0
        assert await _roundtrip(local, b"hello") == b"HELLO"
        big = bytes(range(97, 123)) * 100_000  # 2.6 MB through 64 KiB frames, backpressure on both sides
        results = await asyncio.gather(_roundtrip(local, big), _roundtrip(local, b"second connection"))
        assert results == [big.upper(), b"SECOND CONNECTION"]
        assert tunnel.connections == 3 and len(seen) == 3
    finally:
        await tunnel.close()


async def test_tunnel_asks_for_a_fresh_circuit_when_refused(echo_proxy):
    port, seen = echo_proxy
    client = FakeClient(port, first_token="expired")
    tunnel = Tunnel(client, "s", "sshd", log=lambda m: None)
    _, local = await tunnel.start()
    try:
        assert await _roundtrip(local, b"again") == b"AGAIN"
        assert client.calls == 2 and seen == ["/v1/tcp/c1?token=good"]
    finally:
        await tunnel.close()


async def test_tunnel_reports_a_session_that_is_gone(echo_proxy):
    port, _ = echo_proxy
    client = FakeClient(port, first_token="expired")
    logged: list[str] = []
    tunnel = Tunnel(client, "s", "sshd", log=logged.append)
    _, local = await tunnel.start()
    client.fail = APIError(400, {"title": "The session is TERMINATED; apps open once it is RUNNING."})
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, nothing piped
        writer.close()
        assert any("TERMINATED" in m for m in logged)
    finally:
        await tunnel.close()


# -- session download helpers ----------------------------------------------------------------------
def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in entries:
            body = data.get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def test_multipart_parts_and_safe_extraction(tmp_path):
    d = tarfile.TarInfo("dir")
    d.type = tarfile.DIRTYPE
    good = _tar([d, tarfile.TarInfo("dir/a.txt")], {"dir/a.txt": b"A\r\n--not-a-boundary"})
    other = _tar([tarfile.TarInfo("b.bin")], {"b.bin": bytes(range(256))})
    boundary = "0123abcd"
    body = b"".join(f"--{boundary}\r\nContent-Type: application/x-tar\r\n\r\n".encode() + part + b"\r\n"
                    for part in (good, other)) + f"--{boundary}--\r\n".encode()
    parts = multipart_parts(body, f"multipart/mixed; boundary={boundary}")
    assert parts == [good, other]
    assert extract_tar(parts[0], tmp_path) == ["dir", "dir/a.txt"]
    assert (tmp_path / "dir" / "a.txt").read_bytes() == b"A\r\n--not-a-boundary"

    evil = _tar([tarfile.TarInfo("../escape.txt")], {"../escape.txt": b"x"})
    with pytest.raises((tarfile.TarError, DownloadError)):
        extract_tar(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(DownloadError, match="not multipart"):
        multipart_parts(body, "application/x-tar")
    link = tarfile.TarInfo("ln")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises((tarfile.TarError, DownloadError)):
        extract_tar(_tar([link], {}), tmp_path / "out2")

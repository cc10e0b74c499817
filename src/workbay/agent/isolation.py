"""Isolation between session networks on a Podman node, kept by the agent itself.

Session networks are created with netavark's ``isolate`` option, but netavark 1.4 (Debian 12's,
with Podman 4.3) drops its ``FORWARD -j NETAVARK_ISOLATION_1`` jump whenever *any* container of an
isolated network stops, while other isolated networks still run: from then until the next
container starts, sessions reach each other again.  So the agent keeps rules of its own, which
netavark never touches, in the same shape as netavark's:

    FORWARD (first rule)  -j WORKBAY-ISOLATION-1
    WORKBAY-ISOLATION-1   -s <session subnet> ! -d <same subnet> -j WORKBAY-ISOLATION-2   (each)
    WORKBAY-ISOLATION-2   -d <session subnet> -j DROP                                    (each)

Traffic from one session's subnet to another's is dropped -- whether addressed to the other
container or to a host port published for it (DNAT happens before FORWARD); traffic within a
subnet and to anywhere else (egress, NATed by netavark) passes.  The rules are rewritten whole from
the engine's list of session networks (every agent's on this node) under a file lock, so agents on
one node (``workbay up --agents N``) never undo each other's."""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
import shutil
import subprocess
import tempfile

log = logging.getLogger(__name__)
CHAIN_1 = "WORKBAY-ISOLATION-1"
CHAIN_2 = "WORKBAY-ISOLATION-2"
LOCK_NAME = "workbay-isolation.lock"


class IsolationError(Exception):
    pass


def ruleset(subnets: list[str]) -> str:
    """The iptables-restore input (``--noflush``) that rewrites both chains for these subnets."""
    nets = sorted({str(ipaddress.ip_network(s, strict=False)) for s in subnets
                   if ipaddress.ip_network(s, strict=False).version == 4})
    lines = ["*filter", f":{CHAIN_1} - [0:0]", f":{CHAIN_2} - [0:0]"]
    lines += [f"-A {CHAIN_1} -s {n} ! -d {n} -j {CHAIN_2}" for n in nets]
    lines += [f"-A {CHAIN_2} -d {n} -j DROP" for n in nets]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def lock_path() -> str:
    for d in ("/run", tempfile.gettempdir()):
        if os.access(d, os.W_OK):
            return os.path.join(d, LOCK_NAME)
    return os.path.join(tempfile.gettempdir(), LOCK_NAME)


class NodeLock:
    """An exclusive lock shared by every agent on this node (a file lock)."""

    def __enter__(self) -> NodeLock:
        self.fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _iptables(*args: str, stdin: str | None = None, exe: str = "iptables") -> subprocess.CompletedProcess:
    path = shutil.which(exe)
    if path is None:
        raise IsolationError(f"{exe} is not installed: session networks cannot be isolated")
    return subprocess.run([path, "-w", *args], input=stdin, capture_output=True, text=True, timeout=30)


def apply(subnets: list[str]) -> None:
    """Rewrite the chains for ``subnets`` and make sure FORWARD jumps to them first (the caller
    holds NodeLock)."""
    r = _iptables("--noflush", stdin=ruleset(subnets), exe="iptables-restore")
    if r.returncode != 0:
        raise IsolationError(f"iptables-restore failed: {r.stderr.strip()}")
    listed = _iptables("-S", "FORWARD")
    if listed.returncode != 0:
        raise IsolationError(f"iptables -S FORWARD failed: {listed.stderr.strip()}")
    if not jump_is_first(listed.stdout):
        # Present but not first is as bad as absent: netavark re-inserts its own ACCEPTing
        # NETAVARK_FORWARD jump at the top (e.g. on a firewall reload), and that would pass
        # session-to-session traffic before our chain sees it.  Move ours back to the top.
        while _iptables("-C", "FORWARD", "-j", CHAIN_1).returncode == 0:
            r = _iptables("-D", "FORWARD", "-j", CHAIN_1)
            if r.returncode != 0:
                raise IsolationError(f"iptables -D FORWARD failed: {r.stderr.strip()}")
        r = _iptables("-I", "FORWARD", "1", "-j", CHAIN_1)
        if r.returncode != 0:
            raise IsolationError(f"iptables -I FORWARD failed: {r.stderr.strip()}")


def jump_is_first(forward_rules: str) -> bool:
    """Whether ``iptables -S FORWARD`` output has the jump to our chain as the chain's first rule."""
    rules = [line.split() for line in forward_rules.splitlines() if line.startswith("-A FORWARD ")]
    return bool(rules) and rules[0] == ["-A", "FORWARD", "-j", CHAIN_1]

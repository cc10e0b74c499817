"""Free TCP ports for servers started by tests."""

from __future__ import annotations

import random
import socket


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(span: int = 10) -> int:
    """A base N such that N … N+span-1 are all free (lite uses up to N+9: the inference port)."""
    for _ in range(200):
        base = random.randrange(20000, 40000, 10)
        if all(_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no free port range found")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

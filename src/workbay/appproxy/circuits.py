"""Circuits: one app of one session opened by one user, bound to a port of the app-proxy.

Pure pieces (no I/O): the circuit record, who may use it, and which port it gets."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbay.runner import protocol


class NewCircuit(BaseModel):
    """What the manager asks for (the app is already started in the session)."""

    model_config = ConfigDict(extra="forbid")
    session_id: str
    kernel_id: str
    app: str = Field(min_length=1, max_length=64)
    protocol: str = Field("http", pattern=r"^(http|tcp|preopen)$")
    target_host: str = Field(min_length=1, max_length=255)
    target_port: int = Field(ge=1, le=65535)
    user_id: str
    open_to_public: bool = False
    preferred_port: int | None = Field(None, ge=1, le=65535)
    url_path: str = Field("/", max_length=1024)
    app_secret: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{32,128}$",
                                   description="the session's app secret: every connection to the "
                                               "target opens with it (runner/gate.py)")


@dataclass
class Circuit:
    id: str
    session_id: str
    kernel_id: str
    app: str
    protocol: str
    target_host: str
    target_port: int
    user_id: str
    open_to_public: bool
    port: int
    url_path: str = "/"
    app_secret: str | None = field(default=None, repr=False)  # never listed, never logged
    created_at: float = field(default_factory=time.time)
    active_connections: int = 0  # requests, WebSockets and TCP connections in flight
    last_activity: float = field(default_factory=time.time)

    @classmethod
    def from_request(cls, req: NewCircuit, port: int) -> Circuit:
        return cls(id=uuid.uuid4().hex, session_id=req.session_id, kernel_id=req.kernel_id, app=req.app,
                   protocol="http" if req.protocol == "preopen" else req.protocol,
                   target_host=req.target_host, target_port=req.target_port, user_id=req.user_id,
                   open_to_public=req.open_to_public, port=port, url_path=req.url_path or "/",
                   app_secret=req.app_secret)

    @property
    def preamble(self) -> bytes:
        """What every connection to the target starts with: the gate's line, or nothing."""
        return protocol.gate_hello(self.app_secret) if self.app_secret else b""

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("app_secret", None)
        return out


class Activity:
    """Counts a connection in flight on a circuit (the manager reclaims idle SFTP sessions)."""

    def __init__(self, circuit: Circuit) -> None:
        self.circuit = circuit

    def __enter__(self) -> None:
        self.circuit.active_connections += 1
        self.circuit.last_activity = time.time()

    def __exit__(self, *exc: object) -> None:
        self.circuit.active_connections -= 1
        self.circuit.last_activity = time.time()


def may_use(circuit: Circuit, user_id: str | None) -> bool:
    """Public circuits are anyone's; others only their user's (proven by a cookie or a token)."""
    return circuit.open_to_public or (user_id is not None and user_id == circuit.user_id)


def parse_range(spec: str) -> tuple[int, int] | None:
    if not spec:
        return None
    lo, _, hi = spec.partition("-")
    lo_i, hi_i = int(lo), int(hi)
    if not 1 <= lo_i <= hi_i <= 65535:
        raise ValueError(f"bad port range {spec!r}")
    return lo_i, hi_i


def candidate_ports(pool: tuple[int, int] | None, used: set[int], preferred: int | None) -> list[int]:
    """Ports to try binding, in order: the preferred one when it is in the pool and free, then the
    pool's free ports; with no pool, the preferred port and then 0 (the OS picks)."""
    if pool is None:
        return ([preferred] if preferred and preferred not in used else []) + [0]
    lo, hi = pool
    out = []
    if preferred and lo <= preferred <= hi and preferred not in used:
        out.append(preferred)
    out += [p for p in range(lo, hi + 1) if p not in used and p != preferred]
    return out

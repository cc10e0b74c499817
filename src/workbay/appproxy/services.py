"""The model services an app-proxy serves (docs/serving.md, "App-proxy control API"): their routes,
tokens, wake settings and request figures.  inference.py serves them; app.py's control API changes
them.  An update keeps a route's figures and pooled connections when its target stays the same; a
route that leaves takes no new request but finishes those it has."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbay.runner.protocol import gate_hello

from . import tokens
from .balancer import Balancer, RouteLoad

if TYPE_CHECKING:
    from .inference import Upstream

POOL_SIZE = 64  # idle connections kept per route
LATENCY_WINDOW = 2048  # latency samples kept per service (per route: a quarter)
RPS_WINDOW = 10  # seconds


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values (None without any)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 3)


class RateWindow:
    """Requests per second over the last RPS_WINDOW seconds (one bucket per second)."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [second, count]

    def add(self, now: float) -> None:
        second = int(now)
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += 1
        else:
            self.buckets.append([second, 1])
            while self.buckets and self.buckets[0][0] <= second - RPS_WINDOW:
                self.buckets.popleft()

    def rate(self, now: float) -> float:
        since = int(now) - RPS_WINDOW
        return round(sum(c for s, c in self.buckets if s > since) / RPS_WINDOW, 3)


# -- figures ---------------------------------------------------------------------------------------
@dataclass
class Figures:
    requests: int = 0
    errors: int = 0
    in_flight: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def sorted_latencies(self) -> list[float]:
        return sorted(self.latencies)


# -- services and routes ---------------------------------------------------------------------------
class Route:
    """One replica in rotation: where it is, its share, its idle connections, its figures."""

    def __init__(self, route_id: str, host: str, port: int, app_secret: str, traffic_ratio: float) -> None:
        self.route_id = route_id
        self.host, self.port, self.app_secret = host, port, app_secret
        self.traffic_ratio = traffic_ratio
        self.preamble = gate_hello(app_secret) if app_secret else b""
        self.host_header = f"{host}:{port}".encode("latin-1")
        self.idle: list[Upstream] = []
        self.removed = False
        self.figures = Figures(latencies=deque(maxlen=LATENCY_WINDOW // 4))

    def same_target(self, host: str, port: int, app_secret: str) -> bool:
        return (self.host, self.port, self.app_secret) == (host, port, app_secret)

    def take_idle(self) -> Upstream | None:
        while self.idle:
            up = self.idle.pop()
            if up.transport is not None and not up.transport.is_closing():
                return up
        return None

    def give_back(self, up: Upstream) -> None:
        if self.removed or len(self.idle) >= POOL_SIZE or up.transport is None or up.transport.is_closing():
            up.close()
            return
        up.owner = None
        up.idle_since = time.monotonic()
        if up.read_paused:
            up.resume()
        self.idle.append(up)

    def close_idle(self, older_than: float | None = None) -> None:
        keep = []
        for up in self.idle:
            if older_than is None or up.idle_since < older_than:
                up.close()
            else:
                keep.append(up)
        self.idle = keep


class Service:
    def __init__(self, service_id: str, name: str) -> None:
        self.id = service_id
        self.name = name
        self.open_to_public = False
        self.routes: dict[str, Route] = {}
        self.loads: list[RouteLoad] = []
        self.revoked: frozenset[str] = frozenset()
        self.wake = False
        self.wake_timeout = 60.0
        self.waiters: set[asyncio.Future] = set()
        self.balancer = Balancer()
        self.figures = Figures()
        self.rate = RateWindow()
        self.waiting = 0
        self.retries = 0
        self.last_request_at: float | None = None
        self.tokens: dict[bytes, tuple[float, str]] = {}  # verified tokens: exp, jti
        self.deleted = False

    def choose(self, exclude: set[str]) -> Route | None:
        loads = [RouteLoad(r.route_id, r.traffic_ratio, r.figures.in_flight) for r in self.routes.values()]
        chosen = self.balancer.choose(loads, exclude)
        return self.routes[chosen] if chosen is not None else None

    def has_routes(self) -> bool:
        return any(r.traffic_ratio > 0 for r in self.routes.values())

    def wake_waiters(self) -> None:
        for fut in self.waiters:
            if not fut.done():
                fut.set_result(None)
        self.waiters.clear()

    def check_token(self, secret: str, token: bytes | None) -> str | None:
        """None when the token lets the request in, else why not."""
        if token is None:
            return "this service needs a token: send 'Authorization: BackendAI <token>' (or 'Bearer <token>')"
        if not token:
            return "the Authorization header must be 'BackendAI <token>' or 'Bearer <token>'"
        now = time.time()
        known = self.tokens.get(token)
        if known is None:
            try:
                claims = tokens.verify_service_token(secret, token.decode("latin-1"), self.id, self.revoked)
            except tokens.TokenError as e:
                return str(e)
            if len(self.tokens) > 1024:
                self.tokens.clear()
            known = self.tokens[token] = (float(claims["exp"]), str(claims["jti"]))
        if known[0] <= now:
            return "the token has expired"
        if known[1] in self.revoked:
            return "the token has been revoked"
        return None

    def report(self, now: float) -> dict[str, Any]:
        lat = self.figures.sorted_latencies()
        return {
            "name": self.name, "requests": self.figures.requests, "errors": self.figures.errors,
            "in_flight": max(0, self.figures.in_flight - self.waiting), "waiting": self.waiting, "rps": self.rate.rate(now),
            "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99),
            "last_request_at": self.last_request_at, "retries": self.retries,
            "routes": {rid: {"requests": r.figures.requests, "errors": r.figures.errors,
                             "in_flight": r.figures.in_flight,
                             "p50_ms": percentile(r.figures.sorted_latencies(), 50)}
                       for rid, r in self.routes.items()},
        }


@dataclass
class RouteSpec:
    route_id: str
    host: str
    port: int
    app_secret: str = ""
    traffic_ratio: float = 1.0


@dataclass
class ServiceSpec:
    name: str
    open_to_public: bool = False
    routes: list[RouteSpec] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    wake: bool = False
    wake_timeout: float = 60.0


class NameTaken(Exception):
    pass


class ServiceTable:
    """The services by id and by name (the first path segment of a request)."""

    def __init__(self) -> None:
        self.services: dict[str, Service] = {}
        self.by_name: dict[bytes, Service] = {}

    def put(self, service_id: str, spec: ServiceSpec) -> Service:
        other = self.by_name.get(spec.name.encode())
        if other is not None and other.id != service_id:
            raise NameTaken(spec.name)
        svc = self.services.get(service_id)
        if svc is None:
            svc = self.services[service_id] = Service(service_id, spec.name)
        if svc.name != spec.name:
            self.by_name.pop(svc.name.encode(), None)
            svc.name = spec.name
        self.by_name[spec.name.encode()] = svc
        svc.open_to_public = spec.open_to_public
        if frozenset(spec.revoked) != svc.revoked:
            svc.revoked = frozenset(spec.revoked)
        svc.wake, svc.wake_timeout = spec.wake, spec.wake_timeout
        routes: dict[str, Route] = {}
        for rs in spec.routes:
            route = svc.routes.get(rs.route_id)
            if route is None or not route.same_target(rs.host, rs.port, rs.app_secret):
                if route is not None:
                    route.removed = True
                    route.close_idle()
                fresh = Route(rs.route_id, rs.host, rs.port, rs.app_secret, rs.traffic_ratio)
                if route is not None:
                    fresh.figures = route.figures  # in-flight requests on the old target still count here
                route = fresh
            route.traffic_ratio = rs.traffic_ratio
            routes[rs.route_id] = route
        for rid, route in svc.routes.items():
            if rid not in routes:
                route.removed = True  # its requests in flight finish; it takes no new ones
                route.close_idle()
        svc.routes = routes
        if svc.has_routes() or not svc.wake:
            svc.wake_waiters()  # held requests go to the new routes (or get their 503 now)
        return svc

    def delete(self, service_id: str) -> bool:
        svc = self.services.pop(service_id, None)
        if svc is None:
            return False
        if self.by_name.get(svc.name.encode()) is svc:
            del self.by_name[svc.name.encode()]
        svc.deleted = True
        for route in svc.routes.values():
            route.removed = True
            route.close_idle()
        svc.routes = {}
        svc.wake_waiters()
        return True

    def report(self) -> dict[str, Any]:
        now = time.time()
        return {"services": {sid: svc.report(now) for sid, svc in self.services.items()}}

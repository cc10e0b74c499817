"""Apps inside sessions (AP-1…AP-9): which apps a session offers, starting one on demand and
opening a circuit to it on the app-proxy, and closing circuits when sessions end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from workbay.appproxy import tokens
from workbay.common.config import WorkbayConfig, http_url
from workbay.common.errors import BackendError, GenericBadRequest, InvalidAPIParameters, ServiceUnavailable
from workbay.common.http import MAX_JSON_DEPTH, json_too_deep
from workbay.manager.models.compute import ComputeSession, Kernel
from workbay.runner import protocol as gate

from .access import Actor
from .compute_ports import KernelOps
from .context import ServiceContext

if TYPE_CHECKING:
    from .sessions import SessionService

log = logging.getLogger(__name__)
# Where the browser lands in each app (the rest go to "/").
URL_PATHS = {"jupyter": "/tree", "jupyterlab": "/lab", "ttyd": "/", "tensorboard": "/", "mlflow-ui": "/"}
READY_TIMEOUT = 60.0
OPTIONAL_APP_KEYS = ("url_template", "allowed_arguments", "allowed_envs")


class StartService(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    app: str = Field(validation_alias=AliasChoices("app", "service"), min_length=1, max_length=64)
    port: int | None = Field(None, ge=1, le=65535)
    envs: dict[str, str] | str | None = None
    arguments: dict[str, Any] | str | None = None
    login_session_token: str | None = None
    open_to_public: bool = False
    preferred_port: int | None = Field(None, ge=1, le=65535, validation_alias=AliasChoices(
        "preferred_port", "try_preferred_port"))

    @field_validator("envs", "arguments")
    @classmethod
    def _json(cls, v: Any) -> Any:  # Backend.AI's client sends these as JSON strings
        if isinstance(v, str):
            if json_too_deep(v):  # JSON in a string: the body guard never saw its nesting
                raise ValueError(f"nested too deeply (at most {MAX_JSON_DEPTH} levels)")
            try:
                v = json.loads(v) if v.strip() else {}
            except (ValueError, RecursionError) as e:
                raise ValueError("must be a JSON object") from e
            if not isinstance(v, dict):
                raise ValueError("must be a JSON object")
        return v


def app_secret(config: WorkbayConfig, session_id: uuid.UUID | str) -> str:
    """The session's app secret: what the runner's app gates (runner/gate.py) open to.  Derived
    (HMAC of the session id under the app-proxy secret), so it needs no storage, survives manager
    restarts and is the same on every manager replica; only the manager and the app-proxy hold the
    key.  Never returned by an API, never logged."""
    if not config.secrets.appproxy:
        raise ValueError("secrets.appproxy is empty: sessions' apps need it")
    mac = hmac.new(config.secrets.appproxy.encode(), b"workbay-app-secret\x00" + str(session_id).encode(),
                   hashlib.sha256)
    return mac.hexdigest()


def session_network(session_id: uuid.UUID) -> str:
    """The name of a session's own network on each node it runs on."""
    return f"wb-{session_id.hex[:12]}"


@dataclass(frozen=True)
class AppTarget:
    """A started app: the session's main kernel and the address its port is published at
    (``secret``: the session's app secret when that port leads to the runner's app gate)."""
    session: ComputeSession
    kernel: Kernel
    protocol: str
    host: str
    port: int
    secret: str | None = field(default=None, repr=False)

    @property
    def preamble(self) -> bytes:
        """The first bytes of every connection to the app (the gate's line), or nothing."""
        return gate.gate_hello(self.secret) if self.secret else b""


class AppProxyClient:
    def __init__(self, ctx: ServiceContext, transport: httpx.AsyncBaseTransport | None = None) -> None:
        cfg = ctx.config
        self.secret = cfg.secrets.appproxy
        self.public_host = cfg.appproxy.public_host
        self.api_url = cfg.appproxy.api_url
        self.http = httpx.AsyncClient(base_url=self.api_url, transport=transport, timeout=30.0,
                                      headers={"X-Workbay-Secret": self.secret})

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ServiceUnavailable("The app-proxy is unreachable; apps cannot be opened now.") from e
        if resp.status_code >= 400:
            log.warning("app-proxy answered %s on %s %s: %s", resp.status_code, method, path, resp.text[:300])
            raise ServiceUnavailable("The app-proxy refused to open the app.")
        return resp.json() if resp.content else None

    async def close_session(self, session_id: str) -> None:
        await self.call("DELETE", "/v1/circuits", params={"session_id": session_id})

    async def close(self) -> None:
        await self.http.aclose()


async def wait_listening(host: str, port: int, timeout: float, secret: str | None = None) -> bool:
    """Whether the app accepts connections within ``timeout``.  Behind an app gate (``secret``)
    the gate listens from the start: it is asked whether the app behind it does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            try:
                if secret is None:
                    return True
                writer.write(gate.gate_probe(secret))
                answer = await asyncio.wait_for(reader.readline(), 15)
                if answer.strip() == b"READY":
                    return True
            finally:
                writer.close()
        except (TimeoutError, OSError):
            pass
        await asyncio.sleep(0.3)
    return False


class SessionApps:
    def __init__(self, ctx: ServiceContext, sessions: SessionService, kernels: KernelOps,
                 proxy: AppProxyClient) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.kernels = kernels
        self.proxy = proxy

    async def _running(self, actor: Actor, ref: str, owner_access_key: str | None = None
                       ) -> tuple[ComputeSession, Kernel]:
        sess, kernel = await self.sessions._main_kernel(actor, ref, owner_access_key)
        if sess.status != "RUNNING" or kernel is None or kernel.agent_addr is None:
            raise GenericBadRequest(f"The session is {sess.status}; apps open once it is RUNNING.")
        return sess, kernel

    async def apps(self, actor: Actor, ref: str) -> list[dict[str, Any]]:
        _, kernel = await self.sessions._main_kernel(actor, ref, modify=False)
        out = []
        for p in (kernel.service_ports if kernel else []) or []:
            app = {"name": p.get("name"), "protocol": p.get("protocol"), "ports": p.get("container_ports") or []}
            # Optional keys are left out, not null: Backend.AI's client tests for their presence
            # (``backend.ai app`` formats url_template when the key is there).
            app.update({k: p[k] for k in OPTIONAL_APP_KEYS if p.get(k) is not None})
            out.append(app)
        return out

    async def open_target(self, actor: Actor, ref: str, req: StartService,
                          owner_access_key: str | None = None) -> AppTarget:
        """Start the app in the session if it is not running and wait until it listens: where
        the app-proxy's circuits and the manager's /stream routes send its traffic."""
        sess, kernel = await self._running(actor, ref, owner_access_key)
        ports = {p.get("name"): p for p in kernel.service_ports or []}
        declared = ports.get(req.app)
        if declared is None and req.port is None:
            raise InvalidAPIParameters(f"The session offers no app named {req.app!r}.",
                                       data={"apps": sorted(str(n) for n in ports)})
        protocol = (declared or {}).get("protocol", "tcp")
        if protocol == "preopen" and declared is not None:
            info = {"host_ports": declared.get("host_ports") or [], "kernel_host": declared.get("kernel_host")}
        else:
            # The validator has turned JSON strings into objects already.
            arguments = req.arguments if isinstance(req.arguments, dict) else {}
            envs = req.envs if isinstance(req.envs, dict) else {}
            info = await self.kernels.start_service(kernel, req.app, req.port, arguments, envs)
            if info.get("error"):
                raise GenericBadRequest(f"The app {req.app} could not start: {info['error']}")
        host = info.get("kernel_host") or (declared or {}).get("kernel_host")
        host_ports = info.get("host_ports") or []
        if not host or not host_ports:
            raise GenericBadRequest(f"The app {req.app} has no published port in this session.")
        target_port = int(host_ports[0])
        # Ports the agent put behind the runner's app gate open only to the session's secret.
        gated = bool((declared or {}).get("gate_ports")) and (req.port is None or req.port in (
            (declared or {}).get("container_ports") or []))
        secret = app_secret(self.ctx.config, sess.id) if gated else None
        if not await wait_listening(host, target_port, READY_TIMEOUT, secret):
            raise ServiceUnavailable(f"The app {req.app} did not start listening in {READY_TIMEOUT:.0f} s.")
        return AppTarget(sess, kernel, protocol, host, target_port, secret)

    async def start(self, actor: Actor, ref: str, req: StartService) -> dict[str, Any]:
        target = await self.open_target(actor, ref, req)
        sess, kernel, protocol, host, target_port = (target.session, target.kernel, target.protocol,
                                                     target.host, target.port)
        circuit = await self.proxy.call("POST", "/v1/circuits", json={
            "session_id": str(sess.id), "kernel_id": str(kernel.id), "app": req.app,
            "protocol": "tcp" if protocol == "tcp" else "http", "target_host": host, "target_port": target_port,
            "user_id": str(actor.user_id), "open_to_public": req.open_to_public,
            "preferred_port": req.preferred_port, "url_path": URL_PATHS.get(req.app, "/"),
            "app_secret": target.secret})
        cfg = self.ctx.config.appproxy
        secret = self.ctx.config.secrets.appproxy
        base = http_url(self.proxy.public_host, circuit["port"])  # [v6] bracketed
        open_token = tokens.issue(secret, circuit["id"], str(actor.user_id), "open", cfg.open_token_ttl)
        tcp_token = tokens.issue(secret, circuit["id"], str(actor.user_id), "tcp", cfg.tcp_token_ttl)
        api = self.proxy.api_url.replace("http://", "ws://").replace("https://", "wss://")
        out = {
            "token": open_token, "wsproxy_addr": self.proxy.api_url,
            "circuit_id": circuit["id"], "app": req.app, "protocol": circuit["protocol"],
            "host": self.proxy.public_host, "port": circuit["port"],
            "url": f"{base}/__workbay/open?token={open_token}" if circuit["protocol"] == "http" else None,
            "public_url": base if req.open_to_public else None,
            "tcp_url": f"{api}/v1/tcp/{circuit['id']}?token={tcp_token}",
            "preferred_port_used": req.preferred_port is not None and circuit["port"] == req.preferred_port,
        }
        return out

    async def on_session_gone(self, session_id: str) -> None:
        try:
            await self.proxy.close_session(session_id)
        except BackendError as e:
            log.info("could not close the circuits of session %s: %s", session_id, e)

    async def watch_terminations(self) -> None:
        """Circuits die with their session: close them when a session ends."""
        ends = {"session_terminated", "session_cancelled", "session_failure", "session_success"}
        async with self.ctx.events.subscribe() as events:
            while True:
                ev = await events.get()
                if ev.get("name") in ends and ev.get("session_id"):
                    await self.on_session_gone(str(ev["session_id"]))

"""``AgentClient``: the manager's client of the agent RPC API (docs/agent-rpc.md).

Every method returns the decoded JSON answer; a non-2xx answer raises ``AgentError`` carrying the
status and the problem body (``type``, ``title``, ``msg``, ``data``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

SECRET_HEADER = "X-Workbay-Secret"


class AgentError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.type = str(body.get("type", ""))
        self.title = str(body.get("title", ""))
        self.msg = body.get("msg")
        self.data = body.get("data")
        super().__init__(f"HTTP {status}: {self.title}" + (f" ({self.msg})" if self.msg else ""))

    @property
    def not_found(self) -> bool:
        return self.status == 404


def agent_http(addr: str, secret: str, *, timeout: float = 30.0,
               transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The HTTP client of one agent's RPC API (the manager keeps one per agent, see ``http``)."""
    return httpx.AsyncClient(base_url=addr.rstrip("/"), headers={SECRET_HEADER: secret},
                             timeout=timeout, transport=transport)


class AgentClient:
    """``http``: a pooled client of this agent (``agent_http``) to borrow -- it stays open when this
    one closes, and ``timeout`` applies per call; without it the client opens its own."""

    def __init__(self, addr: str, secret: str, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        self.addr = addr.rstrip("/")
        self.timeout = timeout
        self._owns_http = http is None
        self.http = http or agent_http(self.addr, secret, timeout=timeout, transport=transport)

    async def close(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _call(self, method: str, path: str, *, json: Any = None,
                    params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        r = await self.http.request(method, path, json=json, params=params,
                                    timeout=self.timeout if timeout is None else timeout)
        if r.status_code >= 300:
            try:
                body = r.json()
            except ValueError:
                body = {"title": r.text[:200]}
            raise AgentError(r.status_code, body if isinstance(body, dict) else {"data": body})
        return r.json()

    # --- agent --------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/healthz")

    async def info(self) -> dict[str, Any]:
        """Same fields as the heartbeat (slots, occupied, images, accelerators, kernels, …)."""
        return await self._call("GET", "/v1/info")

    async def images(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/v1/images"))["images"]

    async def rescan_images(self) -> list[dict[str, Any]]:
        return (await self._call("POST", "/v1/images/rescan", timeout=120))["images"]

    # --- kernels ------------------------------------------------------------------------------
    async def create_kernels(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Start the kernels of one session on this agent (202; progress comes as events and
        through ``get_kernel``/``wait_kernels``). ``request``: see docs/agent-rpc.md."""
        return (await self._call("POST", "/v1/kernels", json=request))["kernels"]

    async def list_kernels(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/v1/kernels"))["kernels"]

    async def get_kernel(self, kernel_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/kernels/{kernel_id}")

    async def wait_kernels(self, kernel_ids: list[str], *, timeout: float = 600,
                           interval: float = 0.2) -> dict[str, dict[str, Any]]:
        """Poll until no kernel is preparing/restarting. A kernel that ended (gone from the
        agent) maps to ``{"kernel_id", "status": "terminated"}``."""
        deadline = time.monotonic() + timeout
        out: dict[str, dict[str, Any]] = {}
        pending = list(kernel_ids)
        while pending:
            for kid in list(pending):
                try:
                    k = await self.get_kernel(kid)
                except AgentError as e:
                    if not e.not_found:
                        raise
                    k = {"kernel_id": kid, "status": "terminated"}
                if k["status"] not in ("preparing", "restarting"):
                    out[kid] = k
                    pending.remove(kid)
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"kernels still starting: {', '.join(pending)}")
                await asyncio.sleep(interval)
        return out

    async def destroy_kernel(self, kernel_id: str, reason: str = "user-requested",
                             forced: bool = False) -> dict[str, Any]:
        return await self._call("POST", f"/v1/kernels/{kernel_id}/destroy",
                                json={"reason": reason, "forced": forced}, timeout=120)

    async def restart_kernel(self, kernel_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/kernels/{kernel_id}/restart", timeout=120)

    async def execute(self, kernel_id: str, mode: str = "query", code: str = "",
                      run_id: str = "", options: dict[str, Any] | None = None,
                      flush_timeout: float = 2.0) -> dict[str, Any]:
        """Backend.AI execute semantics; returns ``{status, runId, exitCode, options, files,
        console}``."""
        body = {"mode": mode, "code": code, "runId": run_id, "options": options,
                "flush_timeout": flush_timeout}
        return (await self._call("POST", f"/v1/kernels/{kernel_id}/execute", json=body,
                                 timeout=flush_timeout + 90))["result"]

    async def interrupt(self, kernel_id: str) -> bool:
        return (await self._call("POST", f"/v1/kernels/{kernel_id}/interrupt"))["interrupted"]

    async def logs(self, kernel_id: str, tail: int | None = None) -> str:
        params = {"tail": tail} if tail else None
        return (await self._call("GET", f"/v1/kernels/{kernel_id}/logs", params=params))["logs"]

    async def stats(self, kernel_id: str) -> dict[str, Any] | None:
        return (await self._call("GET", f"/v1/kernels/{kernel_id}/stats"))["stats"]

    async def archive(self, kernel_id: str, path: str) -> bytes:
        r = await self.http.get(f"/v1/kernels/{kernel_id}/archive", params={"path": path}, timeout=300)
        if r.status_code >= 300:
            try:
                body = r.json()
            except ValueError:
                body = {"title": r.text[:200]}
            raise AgentError(r.status_code, body if isinstance(body, dict) else {"data": body})
        return r.content

    async def start_service(self, kernel_id: str, name: str, port: int | None = None,
                            args: dict[str, Any] | None = None,
                            envs: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "args": args or {}, "envs": envs or {}}
        if port is not None:
            body["port"] = port
        return await self._call("POST", f"/v1/kernels/{kernel_id}/services", json=body,
                                timeout=90)

    # --- networks -----------------------------------------------------------------------------
    async def create_network(self, name: str, session_id: str = "") -> dict[str, Any]:
        return await self._call("POST", "/v1/networks",
                                json={"name": name, "session_id": session_id})

    async def destroy_network(self, name: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/v1/networks/{name}")

"""The app-proxy (docs/app-proxy.md): the manager opens circuits to apps running in sessions;
browsers reach each circuit on a port of its own; the CLI tunnels TCP over WebSocket."""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Header, WebSocket
from fastapi.responses import Response

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.errors import AuthFailed, ObjectNotFound
from workbay.common.health import health_router
from workbay.common.http import install_error_handlers

from . import relay, tokens
from .circuits import Activity, NewCircuit, may_use, parse_range
from .frontend import Circuits


def create_app(config: WorkbayConfig) -> FastAPI:
    secret = config.secrets.appproxy
    circuits = Circuits(secret, config.appproxy.host, parse_range(config.appproxy.port_range))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            await circuits.shutdown()

    app = FastAPI(title="Workbay app-proxy", version=__version__, lifespan=lifespan)
    app.state.circuits = circuits
    install_error_handlers(app)
    app.include_router(health_router("app-proxy"))

    def manager_only(x_workbay_secret: str = Header("")) -> None:
        if not secret or not hmac.compare_digest(x_workbay_secret, secret):
            raise AuthFailed("The app-proxy's API takes the app-proxy secret.")

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "app-proxy", "version": __version__}

    @app.post("/v1/circuits", status_code=201, dependencies=[Depends(manager_only)])
    async def open_circuit(req: NewCircuit) -> dict:
        return (await circuits.open(req)).public()

    @app.get("/v1/circuits", dependencies=[Depends(manager_only)])
    async def list_circuits(session_id: str | None = None) -> dict:
        return {"circuits": [c.public() for c in circuits.list(session_id)]}

    @app.delete("/v1/circuits/{circuit_id}", status_code=204, dependencies=[Depends(manager_only)])
    async def close_circuit(circuit_id: str) -> Response:
        if not await circuits.close(circuit_id):
            raise ObjectNotFound(object_name="circuit")
        return Response(status_code=204)

    @app.delete("/v1/circuits", dependencies=[Depends(manager_only)])
    async def close_session_circuits(session_id: str) -> dict:
        return {"closed": await circuits.close_session(session_id)}

    @app.websocket("/v1/tcp/{circuit_id}")
    async def tcp_tunnel(ws: WebSocket, circuit_id: str, token: str = "") -> None:
        """TCP over WebSocket (the CLI's `workbay app` / `workbay ssh`): binary frames both ways."""
        circuit = circuits.get(circuit_id)
        user = None
        if circuit is not None:
            try:
                user = tokens.verify(secret, token, circuit.id, "tcp")
            except tokens.TokenError:
                user = None
        if circuit is None or not may_use(circuit, user):
            await ws.close(code=4403)
            return
        await ws.accept()
        with Activity(circuit):
            await relay.tcp_over_websocket(ws.receive, ws.send, circuit.target_host, circuit.target_port,
                                           circuit.preamble)

    return app

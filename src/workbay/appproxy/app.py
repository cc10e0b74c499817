"""The app-proxy (docs/app-proxy.md): the manager opens circuits to apps running in sessions;
browsers reach each circuit on a port of its own; the CLI tunnels TCP over WebSocket."""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Header, WebSocket
from fastapi.responses import Response
from pydantic import BaseModel, Field

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.errors import AlreadyExists, AuthFailed, ObjectNotFound
from workbay.common.health import health_router
from workbay.common.http import install_error_handlers

from . import relay, tokens
from .circuits import Activity, NewCircuit, may_use, parse_range
from .frontend import Circuits
from .inference import InferenceProxy
from .services import NameTaken, RouteSpec, ServiceSpec

log = logging.getLogger(__name__)
SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"  # one path segment, nothing to escape


class ServiceRoute(BaseModel):
    route_id: str = Field(min_length=1, max_length=64)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    app_secret: str = Field("", max_length=256, pattern=r"^[\x21-\x7e]*$")
    traffic_ratio: float = Field(1.0, ge=0, le=100)


class ServiceTable(BaseModel):
    """PUT /v1/services/{id}: a model service's routing table (docs/serving.md)."""

    name: str = Field(pattern=SERVICE_NAME)
    open_to_public: bool = False
    routes: list[ServiceRoute] = Field(default_factory=list, max_length=1024)
    revoked: list[str] = Field(default_factory=list, max_length=100_000)
    wake: bool = False
    wake_timeout: float = Field(60.0, gt=0, le=3600)


def create_app(config: WorkbayConfig) -> FastAPI:
    secret = config.secrets.appproxy
    circuits = Circuits(secret, config.appproxy.host, parse_range(config.appproxy.port_range))
    inference = InferenceProxy(secret)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            await inference.start(config.appproxy.host, config.appproxy.inference_port)
        except OSError as e:  # the circuits still work; model services cannot be reached
            log.error("the inference listener cannot listen on %s:%d: %s", config.appproxy.host,
                      config.appproxy.inference_port, e)
        try:
            yield
        finally:
            await inference.stop()
            await circuits.shutdown()

    app = FastAPI(title="Workbay app-proxy", version=__version__, lifespan=lifespan)
    app.state.circuits = circuits
    app.state.inference = inference
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

    @app.put("/v1/services/{service_id}", dependencies=[Depends(manager_only)])
    async def put_service(service_id: str, req: ServiceTable) -> dict:
        spec = ServiceSpec(name=req.name, open_to_public=req.open_to_public,
                           routes=[RouteSpec(**r.model_dump()) for r in req.routes], revoked=req.revoked,
                           wake=req.wake, wake_timeout=req.wake_timeout)
        try:
            inference.put(service_id, spec)
        except NameTaken as e:
            raise AlreadyExists(f"another service is served as {e}", data={"name": "already taken"}) from e
        return {"url_path": f"/{req.name}/"}

    @app.delete("/v1/services/{service_id}", status_code=204, dependencies=[Depends(manager_only)])
    async def delete_service(service_id: str) -> Response:
        if not inference.delete(service_id):
            raise ObjectNotFound(object_name="service")
        return Response(status_code=204)

    @app.get("/v1/services", dependencies=[Depends(manager_only)])
    async def list_services() -> dict:
        return inference.report()

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

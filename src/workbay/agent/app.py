"""The agent's RPC API (JSON over HTTP, cluster secret in ``X-Workbay-Secret``).

The wire format is documented in docs/agent-rpc.md; ``workbay.agent.client.AgentClient`` speaks it.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.errors import AuthFailed
from workbay.common.health import health_router
from workbay.common.http import install_error_handlers, problem_response, request_params

from .agent import NodeAgent
from .models import CreateKernels, CreateNetwork, DestroyKernel, Execute, StartServiceRequest

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Workbay-Secret"
PUBLIC_PATHS = {"/healthz"}


def create_app(config: WorkbayConfig) -> FastAPI:
    agent = NodeAgent(config)
    secret = config.secrets.cluster.encode()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await agent.start()
        try:
            yield
        finally:
            await agent.stop()

    app = FastAPI(title="Workbay agent", version=__version__, lifespan=lifespan)
    app.state.agent = agent
    install_error_handlers(app)
    app.include_router(health_router("agent"))

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if request.url.path not in PUBLIC_PATHS:
            given = request.headers.get(SECRET_HEADER, "").encode()
            if not hmac.compare_digest(given, secret):
                return problem_response(AuthFailed("missing or wrong X-Workbay-Secret"))
        return await call_next(request)

    @app.get("/")
    @app.get("/v1/info")
    async def info() -> dict:
        return {"status": "ok", "type": "agent", **agent.info()}

    # --- kernels ------------------------------------------------------------------------------
    @app.post("/v1/kernels", status_code=202)
    async def create_kernels(request: Request) -> dict:
        req = await request_params(request, CreateKernels)
        kernels = await agent.create_kernels(req)
        return {"kernels": [k.to_wire(config.agent.container_host) for k in kernels]}

    @app.get("/v1/kernels")
    async def list_kernels() -> dict:
        return {"agent_id": agent.id, "kernels": [k.to_wire(config.agent.container_host)
                                                  for k in agent.live_kernels()]}

    @app.get("/v1/kernels/{kernel_id}")
    async def get_kernel(kernel_id: str) -> dict:
        return agent.get(kernel_id).to_wire(config.agent.container_host)

    @app.post("/v1/kernels/{kernel_id}/destroy")
    async def destroy_kernel(kernel_id: str, request: Request) -> dict:
        req = await request_params(request, DestroyKernel)
        return await agent.destroy(kernel_id, req.reason, req.forced)

    @app.post("/v1/kernels/{kernel_id}/restart", status_code=202)
    async def restart_kernel(kernel_id: str) -> dict:
        kernel = await agent.restart(kernel_id)
        return kernel.to_wire(config.agent.container_host)

    @app.post("/v1/kernels/{kernel_id}/execute")
    async def execute(kernel_id: str, request: Request) -> dict:
        req = await request_params(request, Execute)
        result = await agent.execute(kernel_id, req.mode, req.run_id, req.code, req.options,
                                     req.flush_timeout)
        return {"result": result}

    @app.post("/v1/kernels/{kernel_id}/interrupt")
    async def interrupt(kernel_id: str) -> dict:
        return {"interrupted": await agent.interrupt(kernel_id)}

    @app.get("/v1/kernels/{kernel_id}/logs")
    async def logs(kernel_id: str, tail: int | None = None) -> dict:
        return {"kernel_id": kernel_id, "logs": await agent.logs(kernel_id, tail)}

    @app.get("/v1/kernels/{kernel_id}/stats")
    async def stats(kernel_id: str) -> dict:
        kernel = agent.get(kernel_id)
        if kernel.status != "running":
            return {"kernel_id": kernel_id, "stats": kernel.last_stats}
        return {"kernel_id": kernel_id, "stats": await agent.sample_stats(kernel, fresh=True)}

    @app.get("/v1/kernels/{kernel_id}/archive")
    async def archive(kernel_id: str, path: str) -> Response:
        """A file or directory of the container as a tar."""
        return Response(await agent.archive(kernel_id, path), media_type="application/x-tar")

    @app.post("/v1/kernels/{kernel_id}/services")
    async def start_service(kernel_id: str, request: Request) -> dict:
        req = await request_params(request, StartServiceRequest)
        return await agent.start_service(kernel_id, req.name, req.port, req.args, req.envs)

    # --- networks -----------------------------------------------------------------------------
    @app.post("/v1/networks")
    async def create_network(request: Request) -> JSONResponse:
        req = await request_params(request, CreateNetwork)
        result = await agent.create_network(req.name, req.session_id)
        return JSONResponse(result, status_code=201 if result["created"] else 200)

    @app.delete("/v1/networks/{name}")
    async def destroy_network(name: str) -> dict:
        return await agent.destroy_network(name)

    # --- images -------------------------------------------------------------------------------
    @app.get("/v1/images")
    async def images() -> dict:
        return {"images": agent.images, "scanned_at": agent.images_scanned_at}

    @app.post("/v1/images/rescan")
    async def rescan_images() -> dict:
        agent.need_engine()
        return {"images": await agent.scan_images(), "scanned_at": agent.images_scanned_at}

    return app

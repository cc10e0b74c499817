"""The agent's RPC API.  Kernels come with the compute-sessions issue; it already serves health."""

from __future__ import annotations

import platform

from fastapi import FastAPI

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.health import health_router
from workbay.common.http import install_error_handlers


def create_app(config: WorkbayConfig) -> FastAPI:
    app = FastAPI(title="Workbay agent", version=__version__)
    install_error_handlers(app)
    app.include_router(health_router("agent"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "agent", "version": __version__,
                "id": config.agent.id or platform.node(), "region": config.agent.region,
                "resource_group": config.agent.resource_group, "architecture": platform.machine()}

    return app

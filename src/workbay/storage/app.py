"""The storage-proxy: a client-facing app (browsers, CLI) and a manager-facing app.

Volumes, folders and file transfer come with the storage issue; both apps already run and answer
health checks so the rest of the platform can depend on them.
"""

from __future__ import annotations

from fastapi import FastAPI

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.health import health_router
from workbay.common.http import install_error_handlers


def create_client_app(config: WorkbayConfig) -> FastAPI:
    app = FastAPI(title="Workbay storage-proxy (client-facing)", version=__version__)
    install_error_handlers(app)
    app.include_router(health_router("storage-proxy-client"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "client-facing", "storage-proxy": __version__}

    return app


def create_manager_app(config: WorkbayConfig) -> FastAPI:
    app = FastAPI(title="Workbay storage-proxy (manager-facing)", version=__version__)
    install_error_handlers(app)
    app.include_router(health_router("storage-proxy-manager"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "manager-facing", "storage-proxy": __version__}

    return app

"""The storage-proxy: a client-facing app (browsers, CLI; token-authenticated file transfer) and a
manager-facing app (volumes, folders, quotas; authenticated with the storage secret)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.health import health_router
from workbay.common.http import install_error_handlers, problem_response

from .client_api import client_router
from .errors import from_os_error
from .manager_api import manager_router
from .volumes import Volumes


def _install_os_error_handler(app: FastAPI) -> None:
    @app.exception_handler(OSError)
    async def _os_error(_: Request, exc: OSError) -> JSONResponse:
        return problem_response(from_os_error(exc))


def create_client_app(config: WorkbayConfig, volumes: Volumes | None = None) -> FastAPI:
    app = FastAPI(title="Workbay storage-proxy (client-facing)", version=__version__)
    install_error_handlers(app)
    _install_os_error_handler(app)
    app.include_router(health_router("storage-proxy-client"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "client-facing", "storage-proxy": __version__}

    app.include_router(client_router(volumes or Volumes(config), config.secrets.storage))
    return app


def create_manager_app(config: WorkbayConfig, volumes: Volumes | None = None) -> FastAPI:
    app = FastAPI(title="Workbay storage-proxy (manager-facing)", version=__version__)
    install_error_handlers(app)
    _install_os_error_handler(app)
    app.include_router(health_router("storage-proxy-manager"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "manager-facing", "storage-proxy": __version__}

    app.include_router(manager_router(volumes or Volumes(config), config.secrets.storage))
    return app

"""The app-proxy.  Circuits to in-session apps come with the apps issue; it already serves health."""

from __future__ import annotations

from fastapi import FastAPI

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.health import health_router
from workbay.common.http import install_error_handlers


def create_app(config: WorkbayConfig) -> FastAPI:
    app = FastAPI(title="Workbay app-proxy", version=__version__)
    install_error_handlers(app)
    app.include_router(health_router("app-proxy"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "app-proxy", "version": __version__}

    return app

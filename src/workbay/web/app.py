"""The webserver: the WebUI (server-rendered pages), login sessions, the ``/server/*`` login API
and the ``/func/*`` proxy that signs requests to the manager with the user's keypair."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbay import __version__
from workbay.common.config import WorkbayConfig

from .csrf import OriginGuard
from .error_handlers import install_error_handlers
from .rendering import STATIC_DIR
from .routes import (
    account,
    admin_resources,
    agent_summary,
    apps,
    auth_pages,
    credentials,
    environments,
    folders,
    launcher,
    maintenance,
    model_store,
    policies,
    preferences,
    proxy,
    proxy_ws,
    server_api,
    serving,
    serving_detail,
    sessions,
    settings,
    start,
    storage_admin,
    summary,
    users,
)
from .state import WebState, build_state

log = logging.getLogger(__name__)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'{connect}; font-src 'self'; frame-ancestors 'none'; "
       "base-uri 'self'; form-action 'self'")


def storage_origin(config: WorkbayConfig) -> str:
    """The storage-proxy's client-facing origin: the browser uploads there directly (tus)."""
    storage = config.storage
    url = getattr(storage, "client_api_url", "") or f"http://{storage.host}:{storage.client_port}"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def security_headers(config: WorkbayConfig) -> list[tuple[bytes, bytes]]:
    origin = storage_origin(config)
    csp = CSP.format(connect=f" {origin}" if origin else "")
    return [*SECURITY_HEADERS, (b"content-security-policy", csp.encode("latin-1"))]


class SecurityHeaders:
    """Adds browser hardening headers to every answer (pure ASGI: streams pass untouched)."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.app = app
        self.headers = headers if headers is not None else [
            *SECURITY_HEADERS, (b"content-security-policy", CSP.format(connect="").encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: WorkbayConfig, *, manager_transport: httpx.AsyncBaseTransport | None = None
               ) -> FastAPI:
    """The webserver app.  ``manager_transport`` replaces the HTTP hop to the manager (tests)."""
    web: WebState = build_state(config, manager_transport)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        web.started = True
        try:
            yield
        finally:
            web.started = False
            await web.close()

    app = FastAPI(title="Workbay webserver", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    install_error_handlers(app)
    app.add_middleware(OriginGuard)
    app.add_middleware(SecurityHeaders, headers=security_headers(config))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (server_api, proxy, proxy_ws, auth_pages, account, preferences, settings, users, credentials,
                   policies, summary, folders, storage_admin, sessions, launcher, start, agent_summary,
                   admin_resources, environments, maintenance, apps, serving, serving_detail, model_store):
        app.include_router(module.router)
    return app

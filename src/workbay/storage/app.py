"""The storage-proxy: a client-facing app (browsers, CLI; token-authenticated file transfer) and a
manager-facing app (volumes, folders, quotas; authenticated with the storage secret)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.errors import AuthFailed, BackendError
from workbay.common.health import health_router
from workbay.common.http import BodyGuard, install_error_handlers, problem_response

from .client_api import client_router
from .errors import from_os_error
from .manager_api import SECRET_HEADER, manager_router, secret_matches
from .tokens import bearer_token, check_token
from .volumes import Volumes

# Bodies the JSON endpoints accept (file operations, folder administration), refused with 413
# before they are read beyond this; tus PATCH bodies stream to disk, bounded by the token's size.
MAX_JSON_BODY = 1 << 20
OPEN_PATHS = ("/", "/healthz")  # answered without credentials


async def _refuse(scope: dict, receive, send, err: BackendError) -> None:
    response = problem_response(err)
    response.headers["Connection"] = "close"  # the body stays unread
    await response(scope, receive, send)


class TokenFirst:
    """A client-API request whose token is in its query string or ``Authorization`` header has
    the token checked (signature, expiry) before anything reads its body: a forged or expired
    token is answered 401 with the body unread.  (A token sent in a JSON body can only be checked
    once that body, capped by BodyGuard, is read.)"""

    def __init__(self, app, secret: str) -> None:
        self.app, self.secret = app, secret

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") not in OPEN_PATHS:
            token = _header(scope, b"authorization")
            token = bearer_token(token) if token else None
            if token is None:
                for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
                    if key == "token":
                        token = value
            if token is not None:
                try:
                    check_token(self.secret, token)
                except BackendError as e:
                    await _refuse(scope, receive, send, e)
                    return
        await self.app(scope, receive, send)


class SecretFirst:
    """The manager-facing API refuses a request without the storage secret before its body is
    read (the routes check it again)."""

    def __init__(self, app, secret: str) -> None:
        self.app, self.secret = app, secret

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") not in OPEN_PATHS \
                and not secret_matches(self.secret, _header(scope, SECRET_HEADER.lower().encode())):
            await _refuse(scope, receive, send,
                          AuthFailed(f"A valid {SECRET_HEADER} header is required."))
            return
        await self.app(scope, receive, send)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


# One Volumes per configuration in a process: the client-facing and the manager-facing app are two
# halves of one storage-proxy and share its state (the usage figures a write through either drops).
_shared: dict[int, tuple[WorkbayConfig, Volumes]] = {}


def shared_volumes(config: WorkbayConfig) -> Volumes:
    entry = _shared.get(id(config))
    if entry is None or entry[0] is not config:
        entry = _shared[id(config)] = (config, Volumes(config))
    return entry[1]


def _install_os_error_handler(app: FastAPI) -> None:
    @app.exception_handler(OSError)
    async def _os_error(_: Request, exc: OSError) -> JSONResponse:
        return problem_response(from_os_error(exc))


# The WebUI (another origin) calls the client-facing app straight from the browser. Requests carry
# a token in the query string or body, never cookies, so any origin may call it (no credentials).
CORS_ALLOW_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"]
CORS_ALLOW_HEADERS = ["Tus-Resumable", "Upload-Offset", "Upload-Length", "Upload-Metadata",
                      "Content-Type", "Range", "If-Range", "X-Requested-With",
                      "X-HTTP-Method-Override"]
CORS_EXPOSE_HEADERS = ["Upload-Offset", "Upload-Length", "Tus-Resumable", "Tus-Version",
                       "Tus-Max-Size", "Tus-Extension", "Content-Disposition", "Content-Length",
                       "Content-Range", "Accept-Ranges", "ETag", "Last-Modified", "Location"]


def _install_cors(app: FastAPI) -> None:
    """CORS for the browser. A preflight (OPTIONS with Origin and Access-Control-Request-Method)
    is answered by the middleware; any other OPTIONS, e.g. tus's ``OPTIONS /upload``, reaches the
    route as before."""
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False,
                       allow_methods=CORS_ALLOW_METHODS, allow_headers=CORS_ALLOW_HEADERS,
                       expose_headers=CORS_EXPOSE_HEADERS, max_age=600)


def create_client_app(config: WorkbayConfig, volumes: Volumes | None = None) -> FastAPI:
    app = FastAPI(title="Workbay storage-proxy (client-facing)", version=__version__)
    # outermost last: CORS, then the token check, then the body cap, then the routes
    app.add_middleware(BodyGuard, max_body=MAX_JSON_BODY, exempt=("/upload",))
    app.add_middleware(TokenFirst, secret=config.secrets.storage)
    _install_cors(app)
    install_error_handlers(app)
    _install_os_error_handler(app)
    app.include_router(health_router("storage-proxy-client"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "client-facing", "storage-proxy": __version__}

    app.include_router(client_router(volumes or shared_volumes(config), config.secrets.storage))
    return app


def create_manager_app(config: WorkbayConfig, volumes: Volumes | None = None) -> FastAPI:
    app = FastAPI(title="Workbay storage-proxy (manager-facing)", version=__version__)
    app.add_middleware(BodyGuard, max_body=MAX_JSON_BODY)
    app.add_middleware(SecretFirst, secret=config.secrets.storage)
    install_error_handlers(app)
    _install_os_error_handler(app)
    app.include_router(health_router("storage-proxy-manager"))

    @app.get("/")
    async def root() -> dict:
        return {"status": "ok", "type": "manager-facing", "storage-proxy": __version__}

    app.include_router(manager_router(volumes or shared_volumes(config), config.secrets.storage))
    return app

"""The manager's ASGI application."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError

from workbay import __version__
from workbay.common.config import WorkbayConfig
from workbay.common.datadir import secure_data_dir
from workbay.common.errors import AlreadyExists, Conflict, InternalServerError, InvalidAPIParameters
from workbay.common.events import EventBus, MemoryEventBus, RedisEventBus
from workbay.common.http import BodyGuard, install_error_handlers, problem_response
from workbay.common.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from workbay.common.secrets import ensure_secrets, secret_box

from .api import (
    account,
    admin,
    auth,
    bgtasks,
    folders,
    gql,
    internal,
    model_store,
    resources,
    root,
    service_validate,
    services,
    session,
    session_events,
    stream,
)
from .api.middleware import PUBLIC_MAX_BODY, UNPROTECTED_PATHS, AuthMiddleware
from .api.wire import PROBLEM_RESPONSES
from .models import db
from .services.bootstrap import bootstrap
from .services.context import ServiceContext
from .state import ManagerState

log = logging.getLogger(__name__)
# PostgreSQL: character_not_in_repertoire (a NUL in text), untranslatable_character.
BAD_TEXT_SQLSTATES = {"22021", "22P05"}


def _sqlstate(exc: BaseException) -> str | None:
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        state = getattr(cur, "sqlstate", None) or getattr(cur, "pgcode", None)
        if state:
            return str(state)
        cur = getattr(cur, "orig", None) or cur.__cause__
        seen += 1
    return None


def _unique_violation(exc: IntegrityError) -> bool:
    return _sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    """Registered for ``DBAPIError`` (Starlette types every handler's exception as ``Exception``)."""
    # Services check before they write; a constraint still firing means a concurrent request
    # changed the same rows in between.  The transaction was rolled back.
    if isinstance(exc, IntegrityError):
        if _unique_violation(exc):
            return problem_response(AlreadyExists("The object was just created by another request."))
        return problem_response(Conflict("The request conflicts with a concurrent change; retry it."))
    if _sqlstate(exc) in BAD_TEXT_SQLSTATES:
        # Bad input, not a server fault; the transaction was rolled back, nothing changed.
        return problem_response(InvalidAPIParameters("Text must not contain NUL characters."))
    log.error("database error", exc_info=exc)
    return problem_response(InternalServerError())


async def build_state(config: WorkbayConfig, demo: bool = False, migrate: bool = True,
                      background: bool = True, storage_transport: httpx.AsyncBaseTransport | None = None
                      ) -> ManagerState:
    secure_data_dir(config.data_dir)
    config = ensure_secrets(config, ("database",))
    box = secret_box(config)
    if migrate:
        await db.upgrade(config.db_url, secret_box=box)
    engine = db.make_engine(config.db_url, echo=config.db.echo, secret_box=box)
    try:
        await db.verify_secret_box(engine, box)
    except BaseException:
        await engine.dispose()
        raise
    redis = None
    events: EventBus
    limiter: RateLimiter
    if config.redis.url:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(config.redis.url, decode_responses=True)
        events, limiter = RedisEventBus(redis), RedisRateLimiter(redis)
    else:
        events, limiter = MemoryEventBus(), MemoryRateLimiter()
    ctx = ServiceContext(db=db.session_factory(engine), config=config, events=events)
    result = await bootstrap(ctx, demo=demo)
    if result.generated_admin_password:
        # Printed once, on purpose: the operator needs it to log in the first time.
        print(f"Superadmin admin@workbay.local created; password: {result.generated_admin_password}"
              f"\n(also written to {config.data_dir / 'initial-admin-password'})", flush=True)
    if result.generated_demo_password:
        print(f"Demo users user@workbay.local and user2@workbay.local created; password: "
              f"{result.generated_demo_password}", flush=True)
    st = ManagerState(ctx=ctx, engine=engine, rate_limiter=limiter, redis=redis,
                      storage_transport=storage_transport)
    if background:
        st.start_background()
    return st


async def close_state(st: ManagerState) -> None:
    await st.stop_background()
    await st.storage.close()
    await st.apps.proxy.close()
    await st.rate_limiter.close()
    await st.ctx.events.close()
    await st.engine.dispose()
    if st.redis is not None:
        await st.redis.aclose()


def create_app(config: WorkbayConfig, demo: bool = False, state: ManagerState | None = None) -> FastAPI:
    """A manager app; it builds its state at startup unless one is given (tests share one)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        own = state is None
        app.state.manager = state or await build_state(config, demo=demo)
        try:
            yield
        finally:
            if own:
                await close_state(app.state.manager)

    app = FastAPI(title="Workbay manager", version=__version__, lifespan=lifespan, responses=PROBLEM_RESPONSES,
                  description="Backend.AI REST API v7 plus Workbay's additions (docs/api.md).")
    if state is not None:
        app.state.manager = state
    install_error_handlers(app)
    app.add_exception_handler(DBAPIError, _database_error)
    # Starlette runs the last added outermost: the signature check first (an unsigned request to
    # a protected path is refused before its body is read), then the body guard (413 over
    # manager.max_request_body, 400 for JSON nested too deeply) before any route parses.
    app.add_middleware(BodyGuard, max_body=config.manager.max_request_body,
                       small={path: PUBLIC_MAX_BODY for path in UNPROTECTED_PATHS})
    app.add_middleware(AuthMiddleware)
    for module in (root, auth, account, admin, gql, session, session_events, stream, resources, folders, bgtasks,
                   model_store,
                   service_validate, services, internal):
        app.include_router(module.router)
    return app

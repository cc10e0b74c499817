"""The health endpoint every component serves."""

from __future__ import annotations

from fastapi import APIRouter

from workbay import __version__


def health_router(component: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "component": component, "version": __version__}

    return router

"""Request dependencies: the manager state and the authenticated caller."""

from __future__ import annotations

from fastapi import Request

from workbay.common.errors import AuthFailed
from workbay.manager.services.access import Actor
from workbay.manager.state import ManagerState


def state(request: Request) -> ManagerState:
    return request.app.state.manager


def actor(request: Request) -> Actor:
    found = getattr(request.state, "actor", None)
    if found is None:
        raise AuthFailed("Unauthorized access", title="Unauthorized access")
    return found

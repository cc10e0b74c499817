"""Model Store rows of the authorization matrix (test_manager_authz_matrix.py).

The store is the project ``model-store`` of the caller's domain: every user of the default domain
sees its cards and may clone its cloneable model folders; the other domain's admin has a store of
its own (none here) and gets 404 for the default domain's folders."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.test_manager_authz_matrix import OWN_200, Case, World, row, unique

STORE_CLONE = row(201, 201, 404, 201, 201, 401)
NOBODY_FINDS = row(404, 404, 404, 404, 404, 401)
_store_folders: dict[int, str] = {}


async def _store_folder(w: World) -> str:
    """A cloneable model folder of the default domain's model-store project (made once per world)."""
    if id(w) not in _store_folders:
        projects = (await w.sa.get("/admin/projects", params={"domain": "default"}))["items"]
        project = next(p["id"] for p in projects if p["name"] == "model-store")
        created = await w.sa.post("/folders", json={"name": unique("store"), "group": project,
                                                    "usage_mode": "model", "cloneable": True})
        _store_folders[id(w)] = created["id"]
    return _store_folders[id(w)]


async def _clone(w: World, actor: str) -> dict[str, Any]:
    return {"path": f"/model-store/{await _store_folder(w)}/clone", "body": {"name": unique("mc")}}


async def _clone_unknown(w: World, actor: str) -> dict[str, Any]:
    return {"path": f"/model-store/{uuid.uuid4().hex}/clone", "body": {"name": unique("mc")}}


MODEL_STORE_CASES: list[Case] = [
    Case("GET", "/model-store", OWN_200),
    Case("POST", "/model-store/{folder_id}/clone", STORE_CLONE, _clone, "a store model"),
    Case("POST", "/model-store/{folder_id}/clone", NOBODY_FINDS, _clone_unknown, "not in the store"),
]

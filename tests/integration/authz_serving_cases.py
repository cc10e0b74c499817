"""Model-service rows of the authorization matrix (test_manager_authz_matrix.py).

Objects: services of the target user (a plain user of the default domain) over a real model folder
of theirs, inserted straight into the database, with routes, tokens and autoscaling rules.  A
service is seen and changed by its owner, the admins of its domain and superadmins; everyone else
(another user, a monitor, another domain's admin) gets 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.test_manager_authz_matrix import OWN_200, Case, World, row, unique
from workbay.manager.models.serving import AutoScalingRule, ModelService, Route, ServiceToken

SERVICE_READ = row(200, 200, 404, 404, 404, 401)
SERVICE_WRITE = lambda ok: row(ok, ok, 404, 404, 404, 401)  # noqa: E731
DEFINITION = b"models:\n  - name: m\n    model_path: /models\n    service:\n      start_command: [x]\n      port: 8000\n"
_states: dict[int, dict[str, Any]] = {}  # per world (the matrix runs on SQLite and PostgreSQL)


def _state(w: World) -> dict[str, Any]:
    return _states.setdefault(id(w), {})


async def _model_folder(w: World) -> str:
    """The target's model folder with a definition file (made once)."""
    state = _state(w)
    if "folder" not in state:
        from tests.integration.test_folders import upload

        kp = w.target["keypair"]
        c = w.h.client(kp["access_key"], kp["secret_key"])
        name = unique("mf")
        created = await c.post("/folders", json={"name": name, "usage_mode": "model"})
        await upload(w.h, c, name, "model-definition.yaml", DEFINITION)
        state["folder"] = created["id"]
    return str(state["folder"])


async def _service(w: World) -> str:
    folder = await _model_folder(w)
    async with w.h.state.ctx.db.begin() as s:
        svc = ModelService(name=unique("ms"), owner_user_id=uuid.UUID(w.target["uuid"]),
                           owner_access_key=w.target["keypair"]["access_key"],
                           created_by=uuid.UUID(w.target["uuid"]), project_id=uuid.UUID(w.default_project),
                           domain_name="default", resource_group="default", model_folder_id=uuid.UUID(folder),
                           image=w.image, resource_slots={"cpu": "1", "mem": "1073741824"}, extra_mounts=[],
                           environ={}, resource_opts={}, live_stat={})
        s.add(svc)
        await s.flush()
        return str(svc.id)


async def _shared(w: World) -> str:
    state = _state(w)
    if "service" not in state:
        state["service"] = await _service(w)
    return str(state["service"])


async def _child(w: World, sid: str, kind: str) -> str:
    async with w.h.state.ctx.db.begin() as s:
        row_: Route | ServiceToken | AutoScalingRule
        if kind == "route":
            row_ = Route(endpoint_id=uuid.UUID(sid), status="HEALTHY")
        elif kind == "token":
            row_ = ServiceToken(endpoint_id=uuid.UUID(sid), token="t", created_by=uuid.UUID(w.target["uuid"]),
                                expires_at=datetime.now(UTC) + timedelta(hours=1))
        else:
            row_ = AutoScalingRule(endpoint_id=uuid.UUID(sid), metric_source="kernel", metric_name="cpu_util",
                                   comparator="gt", threshold="50", step_size=1)
        s.add(row_)
        await s.flush()
        return str(row_.id)


def _svc(suffix: str = "", b: Any = None, fresh: bool = False, child: str | None = None, query: str = ""):
    """A request to the target's service: ``fresh`` a new one per caller (deletions), ``child`` a
    new route / token / rule of it, whose id ends the path."""
    async def prep(w: World, actor: str) -> dict[str, Any]:
        sid = await _service(w) if fresh else await _shared(w)
        path = f"/services/{sid}{suffix}"
        if child is not None:
            path += f"/{await _child(w, sid, child)}"
        return {"path": path, "body": b, "query": query}
    return prep


def _create_for_target():
    async def prep(w: World, actor: str) -> dict[str, Any]:
        return {"body": {"name": unique("ns"), "image": w.image, "desired_session_count": 1,
                         "owner_access_key": w.target["keypair"]["access_key"], "group": "default",
                         "config": {"model": await _model_folder(w), "resources": {"cpu": 1, "mem": "1g"}}}}
    return prep


RULE = {"metric_source": "kernel", "metric_name": "cpu_util", "comparator": ">", "threshold": "80", "step_size": 1}

SERVING_CASES: list[Case] = [
    Case("GET", "/services", OWN_200),
    Case("GET", "/services", row(200, 200, 200, 403, 403, 401), lambda w, a: _ret({"query": "all=true"}),
         "all owners"),
    Case("POST", "/services", row(200, 200, 404, 403, 403, 401), _create_for_target(), "on behalf of the target"),
    Case("GET", "/services/_/runtimes", OWN_200),
    # The dry run's stream starts (its replica session is cancelled when the caller disconnects).
    Case("POST", "/services/_/validate", row(200, 200, 404, 403, 403, 401), _create_for_target(),
         "a dry run on behalf of the target", streaming=True),
    Case("GET", "/services/{service_id}", SERVICE_READ, _svc()),
    Case("PATCH", "/services/{service_id}", SERVICE_WRITE(200), _svc(b={"desired_session_count": 1})),
    Case("DELETE", "/services/{service_id}", SERVICE_WRITE(200), _svc(fresh=True)),
    Case("POST", "/services/{service_id}/sync", SERVICE_WRITE(200), _svc("/sync")),
    Case("POST", "/services/{service_id}/scale", SERVICE_WRITE(200), _svc("/scale", b={"to": 1})),
    Case("POST", "/services/{service_id}/token", SERVICE_WRITE(200), _svc("/token", b={"duration": "1h"})),
    Case("GET", "/services/{service_id}/tokens", SERVICE_READ, _svc("/tokens")),
    Case("DELETE", "/services/{service_id}/tokens/{token_id}", SERVICE_WRITE(204), _svc("/tokens", child="token")),
    Case("PUT", "/services/{service_id}/routings/{route_id}", SERVICE_WRITE(200),
         _svc("/routings", b={"traffic_ratio": 10}, child="route")),
    Case("DELETE", "/services/{service_id}/routings/{route_id}", SERVICE_WRITE(200), _svc("/routings", child="route")),
    Case("GET", "/services/{service_id}/errors", SERVICE_READ, _svc("/errors")),
    Case("POST", "/services/{service_id}/errors/clear", SERVICE_WRITE(204), _svc("/errors/clear")),
    Case("GET", "/services/{service_id}/auto-scaling-rules", SERVICE_READ, _svc("/auto-scaling-rules")),
    Case("POST", "/services/{service_id}/auto-scaling-rules", SERVICE_WRITE(201), _svc("/auto-scaling-rules", b=RULE)),
    Case("PATCH", "/services/{service_id}/auto-scaling-rules/{rule_id}", SERVICE_WRITE(200),
         _svc("/auto-scaling-rules", b={"threshold": "70"}, child="rule")),
    Case("DELETE", "/services/{service_id}/auto-scaling-rules/{rule_id}", SERVICE_WRITE(204),
         _svc("/auto-scaling-rules", child="rule")),
    Case("GET", "/services/{service_id}/logs", SERVICE_READ, _svc("/logs")),
]


async def _ret(value: dict[str, Any]) -> dict[str, Any]:
    return value

"""The session list's helpers for the Sessions page: counts per tab, sorting, mounts and owner."""

from __future__ import annotations

import uuid

import pytest

from workbay.client.sdk import APIError
from workbay.manager.models import ComputeSession


async def test_counts_sort_mounts_and_owner(manager):
    h = manager
    name = f"sl-{uuid.uuid4().hex[:8]}"
    u = await h.admin().post("/admin/users", json={"email": f"{name}@example.test", "username": name,
                                                     "password": "L1sting!pass"})
    c = h.client(u["keypair"]["access_key"], u["keypair"]["secret_key"])
    projects = (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
    pid = uuid.UUID(next(p["id"] for p in projects if p["name"] == "default"))
    rows = [("b-run", "RUNNING", "interactive"), ("a-pend", "PENDING", "batch"), ("c-done", "TERMINATED", "interactive"),
            ("d-sftp", "RUNNING", "system")]
    async with h.state.ctx.db.begin() as s:
        for sname, status, stype in rows:
            s.add(ComputeSession(name=sname, access_key=u["keypair"]["access_key"], user_id=uuid.UUID(u["uuid"]),
                                 project_id=pid, domain_name="default", resource_group="default", image="x",
                                 status=status, session_type=stype,
                                 mounts=[{"folder_id": "f1", "name": "data", "source": "/srv/secret/path",
                                          "target": "/home/work/data", "read_only": True}]))
    counts = await c.get("/sessions/counts")
    assert counts["total"] == 4
    assert counts["status_groups"] == {"running": 2, "pending": 1, "live": 3, "finished": 1}
    assert counts["live_by_type"] == {"interactive": 1, "batch": 1, "inference": 0, "system": 1}
    names = [x["name"] for x in (await c.get("/sessions", params={"sort": "name"}))["items"]]
    assert names == ["a-pend", "b-run", "c-done", "d-sftp"]
    names = [x["name"] for x in (await c.get("/sessions", params={"sort": "-name", "status": "live"}))["items"]]
    assert names == ["d-sftp", "b-run", "a-pend"]
    with pytest.raises(APIError) as e:
        await c.get("/sessions", params={"sort": "password"})
    assert e.value.status == 400
    one = (await c.get("/sessions", params={"q": "b-run"}))["items"][0]
    assert one["mounts"] == [{"folder_id": "f1", "name": "data", "target": "/home/work/data", "read_only": True}]
    info = await c.get(f"/session/{one['id']}")
    assert info["owner_email"] == u["email"] and "source" not in info["mounts"][0]
    async with h.state.ctx.db.begin() as s:
        for row in (await s.execute(ComputeSession.__table__.select().where(
                ComputeSession.access_key == u["keypair"]["access_key"]))).all():
            (await s.get(ComputeSession, row.id)).status = "TERMINATED"

"""The dispatcher around the pure core, on a real (SQLite) database without agents: each resource
group ticks in its own transaction, and heartbeats must say where an agent belongs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from workbay.common.config import load_config
from workbay.manager.app import build_state, close_state, create_app
from workbay.manager.compute.dispatcher import Dispatcher
from workbay.manager.compute.lifecycle import Lifecycle
from workbay.manager.models import Keypair, Project, ResourceGroup, User
from workbay.manager.models.compute import Agent, ComputeSession, Kernel
from workbay.manager.services.session_status import set_status
from workbay.manager.state import ManagerState

CLUSTER_SECRET = "cluster-secret-for-dispatch-tests-0123456789"
GIB = 1 << 30


@pytest.fixture(scope="module")
async def state(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ManagerState]:
    tmp: Path = tmp_path_factory.mktemp("dispatch")
    os.environ.setdefault("WORKBAY_ADMIN_PASSWORD", "Adm1n!pass-word")
    config = load_config(data_dir=tmp, db={"url": f"sqlite+aiosqlite:///{tmp / 'test.db'}"},
                         secrets={"cluster": CLUSTER_SECRET})
    st = await build_state(config, background=False)  # no loop of its own racing the test's ticks
    try:
        yield st
    finally:
        await close_state(st)


class RecordingKernels:
    """Stands in for the agent RPC: records the launches."""

    def __init__(self) -> None:
        self.launched: list[uuid.UUID] = []

    def launch(self, session_id: uuid.UUID) -> None:
        self.launched.append(session_id)


async def _no_outcome(session_id: uuid.UUID, reason: str) -> None:
    raise AssertionError("no kernel ends in these tests")


async def _group_with_pending(st: ManagerState, group: str, sessions: int) -> list[uuid.UUID]:
    """A resource group with one roomy agent and ``sessions`` small PENDING sessions."""
    async with st.ctx.db.begin() as s:
        s.add(ResourceGroup(name=group, is_active=True, scheduler="fifo", scheduler_opts={}))
        await s.flush()
        s.add(Agent(id=f"agent-{group}", status="ALIVE", schedulable=True, addr=f"http://{group}.test:6001",
                    resource_group=group, architecture="x86_64",
                    available_slots={"cpu": "16", "mem": str(64 * GIB)}, occupied_slots={}))
        user = (await s.execute(select(User).where(User.email == "admin@workbay.local"))).scalar_one()
        kp = (await s.execute(select(Keypair).where(Keypair.user_id == user.uuid))).scalars().first()
        project = (await s.execute(select(Project).where(Project.name == "default"))).scalar_one()
        rows = []
        for i in range(sessions):
            sess = ComputeSession(
                name=f"{group}-{i}", session_type="interactive", status="NEW", status_data={}, status_history=[],
                access_key=kp.access_key, user_id=user.uuid, project_id=project.id, domain_name=user.domain_name,
                resource_group=group, image="localhost/workbay/python:3.11", architecture="x86_64",
                requested_slots={"cpu": "1", "mem": str(GIB)}, occupying_slots={})
            set_status(sess, "PENDING", "enqueued")
            rows.append(sess)
        s.add_all(rows)
        await s.flush()
        for sess in rows:
            s.add(Kernel(session_id=sess.id, status="PENDING", occupied_slots={}, service_ports=[], last_stat={},
                         allocation={}))
        return [r.id for r in rows]


async def _rows(st: ManagerState, ids: list[uuid.UUID]) -> list[ComputeSession]:
    async with st.ctx.db() as s:
        return list((await s.execute(select(ComputeSession).where(ComputeSession.id.in_(ids)))).scalars())


async def test_one_groups_failure_rolls_back_that_group_only(state: ManagerState,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    broken = await _group_with_pending(state, "broken", 2)
    healthy = await _group_with_pending(state, "healthy", 3)
    kernels = RecordingKernels()
    dispatcher = Dispatcher(state.ctx, kernels, Lifecycle(state.ctx, on_session_outcome=_no_outcome))

    real_write = Dispatcher._write_occupancy

    async def failing_write(s, result):  # type: ignore[no-untyped-def]
        # Fails after the group's decisions were written onto its rows, inside its transaction.
        if "agent-broken" in result.agent_occupied:
            raise RuntimeError("the database went away while writing group broken")
        await real_write(s, result)

    monkeypatch.setattr(Dispatcher, "_write_occupancy", staticmethod(failing_write))
    await dispatcher.tick()

    for row in await _rows(state, healthy):
        assert row.status == "SCHEDULED", (row.name, row.status)
    for row in await _rows(state, broken):
        # Rolled back whole: still PENDING, no attempt counted, no scheduler record, no placement.
        assert row.status == "PENDING" and not row.scheduling_attempts, (row.name, row.status)
        assert "scheduler" not in (row.status_data or {})
        assert not row.occupying_slots
    async with state.ctx.db() as s:
        placed = (await s.execute(select(Kernel.agent_id).where(Kernel.session_id.in_(broken)))).scalars().all()
        agent = await s.get(Agent, "agent-broken")
    assert placed == [None, None]
    assert agent is not None and not agent.occupied_slots
    assert sorted(kernels.launched) == sorted(healthy)

    # Once the trouble is gone, the next tick schedules the group as usual.
    monkeypatch.setattr(Dispatcher, "_write_occupancy", staticmethod(real_write))
    await dispatcher.tick()
    assert {r.status for r in await _rows(state, broken)} == {"SCHEDULED"}
    assert sorted(kernels.launched) == sorted(healthy + broken)


async def test_a_heartbeat_without_resource_group_or_architecture_is_refused(state: ManagerState) -> None:
    app = create_app(state.ctx.config, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://manager.test") as http:
        hb = {"id": "agent-silent", "addr": "http://silent.test:6001", "slots": {"cpu": "4", "mem": str(GIB)}}
        r = await http.post("/internal/agents/heartbeat", json=hb, headers={"X-Workbay-Secret": CLUSTER_SECRET})
        assert r.status_code == 400, r.text
        assert "resource_group" in r.text and "architecture" in r.text
        r = await http.post("/internal/agents/heartbeat", json={**hb, "resource_group": "default"},
                            headers={"X-Workbay-Secret": CLUSTER_SECRET})
        assert r.status_code == 400 and "architecture" in r.text and "resource_group" not in r.text, r.text
        r = await http.post("/internal/agents/heartbeat", json={
            **hb, "resource_group": "default", "architecture": "aarch64",
            "images": [{"name": "localhost/workbay/python:3.11", "digest": "sha256:abc"}]},
            headers={"X-Workbay-Secret": CLUSTER_SECRET})
        assert r.status_code == 400 and "images.0.architecture" in r.text, r.text
        async with state.ctx.db() as s:
            assert await s.get(Agent, "agent-silent") is None  # nothing was filed under a guess
        r = await http.post("/internal/agents/heartbeat", json={**hb, "resource_group": "default",
                                                                "architecture": "aarch64"},
                            headers={"X-Workbay-Secret": CLUSTER_SECRET})
        assert r.status_code == 200, r.text
    async with state.ctx.db() as s:
        agent = await s.get(Agent, "agent-silent")
    assert agent is not None and (agent.resource_group, agent.architecture) == ("default", "aarch64")

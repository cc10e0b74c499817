"""Issue 10, finding 6: one pending session nobody can schedule used to fail every scheduler tick
(``"cpu": "Infinity"`` was accepted, then ``ValueError ... requested cpu must be a finite amount``
on each tick): nobody's session started until it was cancelled.

The API refuses such requests now (tests/security/test_manager_input.py); here the poisoned rows
are written straight into the database of a real running Workbay (as an older version, a restore
or a bug could leave them), next to a good session created through the API.  The good session
starts (a real container); each poisoned row is cancelled with the reason ``invalid-request`` and
the error in its scheduler record; the scheduler goes on ticking.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.support.sessions import IMAGE, SMALL, running_system, wait_for
from workbay.manager.models import Project, User
from workbay.manager.models.compute import ComputeSession, Kernel

POISON = {
    "infinite-cpu": {"requested_slots": {"cpu": "Infinity", "mem": str(256 << 20)}},
    "nan-mem": {"requested_slots": {"cpu": "1", "mem": "NaN"}},
    "huge-mem": {"requested_slots": {"cpu": "1", "mem": "1E+30"}},
    "evil-type": {"requested_slots": {"cpu": "1", "mem": str(256 << 20)}, "session_type": "evil"},
    "no-cluster": {"requested_slots": {"cpu": "1", "mem": str(256 << 20)}, "cluster_size": 0},
}


async def insert_poison(db_url: str, email: str, access_key: str) -> dict[str, str]:
    """PENDING sessions (with their kernel rows) no API would accept, older than any other: FIFO
    looks at them first.  Returns name -> id."""
    engine = create_async_engine(db_url, connect_args={"timeout": 30})
    ids = {}
    try:
        async with async_sessionmaker(engine)() as s, s.begin():
            user_id, domain = (await s.execute(select(User.uuid, User.domain_name).where(User.email == email))).one()
            project_id = (await s.execute(select(Project.id).where(Project.name == "default"))).scalar_one()
            created = datetime.now(UTC) - timedelta(hours=1)
            for name, bad in POISON.items():
                fields = {"session_type": "batch", "cluster_size": 1, **bad}
                sess = ComputeSession(
                    id=uuid.uuid4(), name=f"poison-{name}", status="PENDING", status_info="enqueued",
                    status_data={}, status_history=[], access_key=access_key, user_id=user_id,
                    project_id=project_id, domain_name=domain, resource_group="default", image=IMAGE,
                    architecture="x86_64", cluster_mode="single-node", occupying_slots={}, resource_opts={},
                    environ={}, mounts=[], preopen_ports=[], designated_agents=[], startup_command="true",
                    starts_at=created, created_at=created, **fields)
                s.add(sess)
                s.add(Kernel(session_id=sess.id, cluster_role="main", cluster_idx=1, cluster_hostname="main1",
                             status="PENDING", occupied_slots={}, service_ports=[], last_stat={}, allocation={}))
                ids[name] = str(sess.id)
    finally:
        await engine.dispose()
    return ids


async def test_a_poisoned_pending_row_does_not_stop_the_queue(tmp_path):
    async with running_system(tmp_path) as sysm:
        user = await sysm.login("user@workbay.local")
        poisoned = await insert_poison(sysm.config.db_url, "user@workbay.local", user.access_key)
        created = await user.post("/session", json={"image": IMAGE, "name": "good-one", "enqueueOnly": True,
                                                    "config": {"resources": SMALL}})
        good = await sysm.wait_status(user, created["sessionId"], "RUNNING", timeout=120)
        assert "SCHEDULED" in [h["status"] for h in good["status_history"]]
        for name, sid in poisoned.items():
            async def cancelled(sid=sid):
                info = await sysm.session(user, sid)
                return info if info["status"] == "CANCELLED" else None
            info = await wait_for(cancelled, 30, f"the poisoned session {name} is cancelled")
            assert info["status_info"] == "invalid-request", info
            assert info["status_data"]["scheduler"]["msg"].startswith("the request cannot be scheduled:"), info
        # the scheduler keeps going: a second good session starts as well
        again = await user.post("/session", json={"image": IMAGE, "name": "good-two", "enqueueOnly": True,
                                                  "config": {"resources": SMALL}})
        await sysm.wait_status(user, again["sessionId"], "RUNNING", timeout=120)

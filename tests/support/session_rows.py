"""Compute sessions written straight into a manager's database (no agent, no containers): for the
WebUI's session list tests and the WebUI benchmark (1,000 sessions)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from workbay.manager.models import Keypair, Project, User
from workbay.manager.models.compute import ComputeSession, Kernel

IMAGE = "localhost/workbay/python:3.11"
STATUSES = ("RUNNING", "PENDING", "TERMINATED", "ERROR", "CANCELLED")
TYPES = ("interactive", "batch", "inference")


def stat(cpu: float = 3.5, mem: int = 64 << 20, mem_cap: int = 256 << 20) -> dict[str, Any]:
    def m(current, capacity=None, hint="bytes"):
        return {"current": str(current), "capacity": None if capacity is None else str(capacity), "pct": None,
                "unit_hint": hint}
    return {"cpu_util": m(cpu, 100, "percent"), "mem": m(mem, mem_cap), "io_read": m(4096), "io_write": m(8192),
            "net_rx": m(100), "net_tx": m(200), "cpu_used": m(1000, None, "msec")}


async def insert_sessions(state, email: str, count: int = 1, *, status: str | None = None,
                          session_type: str | None = None, name: str | None = None, cluster_size: int = 1,
                          seed: int = 7, **extra: Any) -> list[str]:
    """Insert ``count`` sessions owned by ``email`` (mixed statuses and types unless given);
    returns their ids."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    ids = []
    async with state.ctx.db.begin() as s:
        user = (await s.execute(select(User).where(User.email == email))).scalar_one()
        kp = (await s.execute(select(Keypair).where(Keypair.user_id == user.uuid))).scalars().first()
        project = (await s.execute(select(Project).where(Project.name == "default"))).scalar_one()
        for i in range(count):
            st = status or rnd.choice(STATUSES)
            created = now - timedelta(minutes=count - i, seconds=rnd.randint(0, 59))
            dead = st in ("TERMINATED", "ERROR", "CANCELLED")
            sess = ComputeSession(
                id=uuid.uuid4(), name=name if name and count == 1 else f"{name or 'bench'}-{i:04d}",
                session_type=session_type or rnd.choice(TYPES), status=st,
                status_info={"RUNNING": "started", "PENDING": "pending", "TERMINATED": "user-requested",
                             "ERROR": "failed-to-start", "CANCELLED": "pending-timeout"}[st],
                status_data={"scheduler": {"last_try": now.isoformat(), "retries": 3, "predicates": [
                    {"name": "concurrency", "passed": True, "message": "within the limit"},
                    {"name": "resource_group_capacity", "passed": False,
                     "message": "no agent has room for cpu 1"}], "msg": "no agent has room"}}
                if st == "PENDING" else ({"error": {"type": "failed-to-start", "agent": "agent-x",
                                                    "message": "image not found"}} if st == "ERROR" else {}),
                status_history=[{"status": "PENDING", "timestamp": created.isoformat(), "reason": "enqueued"}],
                access_key=kp.access_key, user_id=user.uuid, project_id=project.id, domain_name=user.domain_name,
                resource_group="default", image=IMAGE, architecture="x86_64", cluster_size=cluster_size,
                cluster_mode="single-node", requested_slots={"cpu": "1", "mem": str(256 << 20)},
                occupying_slots={} if st == "PENDING" else {"cpu": str(cluster_size), "mem": str(cluster_size * (256 << 20))},
                resource_opts={"shmem": "64m"}, created_at=created,
                started_at=None if st == "PENDING" else created + timedelta(seconds=2),
                terminated_at=created + timedelta(seconds=30) if dead else None,
                exit_code=0 if st == "TERMINATED" else None, **extra)
            s.add(sess)
            for idx in range(cluster_size):
                role, n = ("main", 1) if idx == 0 else ("sub", idx)
                s.add(Kernel(session_id=sess.id, cluster_role=role, cluster_idx=n, cluster_hostname=f"{role}{n}",
                             status=st, occupied_slots={}, agent_id=None,
                             container_id=None if st == "PENDING" else uuid.uuid4().hex,
                             service_ports=[{"name": "jupyter", "protocol": "http", "container_ports": [8080]}]
                             if st == "RUNNING" else [],
                             last_stat=stat() if st == "RUNNING" else {}, allocation={}))
            ids.append(str(sess.id))
    return ids

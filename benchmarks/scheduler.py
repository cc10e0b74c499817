"""Scheduler throughput.

Pure part (this file): decisions per second of one tick of the pure scheduler
(``workbay.manager.scheduler.core.schedule``) over 10,000 pending sessions and 1,000 simulated
agents, against a naive baseline measured in the same run on the same input: a plain first-fit
loop (oldest session first, first agent with room, no predicates, no limits, no preferences).
The ratio says what the real scheduler's predicates, limits, ordering and agent preference cost
over the least a scheduler can do.

The cluster: 750 CPU agents (32 cores, 128 GiB) and 250 GPU agents (32 cores, 256 GiB, 8 GPU
shares), 0–50 % pre-occupied; the demand is about 1.5 × what is free, so the tick both places
and refuses a lot.  Sessions: five resource presets (CPU and GPU), 5 % clusters of 2–4 kernels
(half multi-node), 3 % batch sessions reserved for later, 2 % with dependencies; 500 keypairs
(some with resource limits, 30 concurrent sessions), 50 projects, 5 domains; a one-hour pending
timeout that 1 % of the sessions have outlived.  ``retries_to_skip``
is 0 so no head-of-line session cuts the tick short: every session gets a full evaluation.

Database part (``--db``): one scheduling pass with the database over 1,000 pending sessions,
``Dispatcher.tick()`` once, timed as a whole and for the pure core inside it (``bench_db_pass``).

Run: .venv/bin/python benchmarks/scheduler.py [--sessions N] [--agents N] [--repeat N]
     [--db | --db-only] [--db-pending N] [--db-url postgresql+asyncpg://…]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from workbay.common.slots import ResourceSlot
from workbay.manager.scheduler.core import (
    AgentCapacity,
    AgentSelection,
    ClusterMode,
    DependencyState,
    KeypairQuota,
    PendingSession,
    ResourceGroupPolicy,
    SchedulerKind,
    SchedulingInput,
    SessionType,
    Usage,
    schedule,
)

GIB = 1024**3
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PRESETS = [
    (30, {"cpu": 1, "mem": 2 * GIB}),
    (25, {"cpu": 4, "mem": 8 * GIB}),
    (15, {"cpu": 8, "mem": 32 * GIB}),
    (20, {"cpu": 4, "mem": 16 * GIB, "cuda.shares": 1}),
    (10, {"cpu": 8, "mem": 64 * GIB, "cuda.shares": 4}),
]


def build_input(n_sessions: int = 10_000, n_agents: int = 1_000, *, seed: int = 7,
                scheduler: SchedulerKind = SchedulerKind.FIFO,
                selection: AgentSelection = AgentSelection.DISPERSED) -> SchedulingInput:
    rnd = random.Random(seed)
    group = ResourceGroupPolicy("default", scheduler=scheduler, agent_selection=selection, retries_to_skip=0,
                          pending_timeout=3600)
    agents = []
    for i in range(n_agents):
        gpu = i % 4 == 3
        total = {"cpu": 32, "mem": (256 if gpu else 128) * GIB}
        if gpu:
            total["cuda.shares"] = 8
        busy = Decimal(rnd.randint(0, 50)) / 100
        occupied = {k: (Decimal(v) * busy).quantize(Decimal(1)) for k, v in total.items()}
        agents.append(AgentCapacity(f"agent-{i:04d}", "default", ResourceSlot(total), ResourceSlot(occupied)))
    keys = [f"AK{i:04d}" for i in range(500)]
    keypairs = {}
    for i, k in enumerate(keys):
        limit = ResourceSlot({"cpu": 64, "mem": 256 * GIB}) if i % 5 == 0 else ResourceSlot()
        keypairs[k] = KeypairQuota(limit=limit, max_concurrent_sessions=30, active_sessions=rnd.randint(0, 5))
    projects = {f"project-{i}": Usage() for i in range(50)}
    domains = {f"domain-{i}": Usage(limit=ResourceSlot({"cpu": 20_000})) for i in range(5)}
    weights = [w for w, _ in PRESETS]
    shapes = [ResourceSlot(s) for _, s in PRESETS]
    sessions = []
    dependencies: dict[str, DependencyState] = {}
    for i in range(n_sessions):
        key = rnd.choice(keys)
        kind = rnd.random()
        size, mode, stype, starts_at, deps = 1, ClusterMode.SINGLE_NODE, SessionType.INTERACTIVE, None, ()
        if kind < 0.05:
            size = rnd.randint(2, 4)
            mode = ClusterMode.MULTI_NODE if kind < 0.025 else ClusterMode.SINGLE_NODE
        elif kind < 0.08:
            stype, starts_at = SessionType.BATCH, NOW + timedelta(hours=rnd.randint(1, 5))
        elif kind < 0.10:
            stype = SessionType.BATCH
            dep = f"done-{i}"
            dependencies[dep] = rnd.choice([DependencyState.WAITING, DependencyState.SUCCEEDED, DependencyState.FAILED])
            deps = (dep,)
        sessions.append(PendingSession(
            id=f"sess-{i:05d}", created_at=NOW - timedelta(seconds=7200 if i % 100 == 0 else (n_sessions - i) / 4),
            access_key=key,
            project_id=f"project-{int(key[2:]) % 50}", domain=f"domain-{int(key[2:]) % 5}",
            resource_group="default", requested_slots=rnd.choices(shapes, weights)[0], session_type=stype,
            cluster_size=size, cluster_mode=mode, starts_at=starts_at, dependencies=deps,
            image_min_slots=ResourceSlot({"mem": GIB})))
    return SchedulingInput(NOW, group, agents, sessions, keypairs, projects, domains, dependencies)


def naive_first_fit(inp: SchedulingInput) -> int:
    """The baseline: oldest first, first agent with room, kernels all on one agent; nothing else."""
    free = [{k: a.total_slots.amount(k) - a.occupied_slots.amount(k) for k in a.total_slots} for a in inp.agents]
    decisions = 0
    for s in sorted(inp.pending, key=lambda s: s.created_at):
        req = [(k, v * s.cluster_size) for k, v in s.requested_slots.items()]
        for f in free:
            if all(v <= f.get(k, 0) for k, v in req):
                for k, v in req:
                    f[k] -= v
                break
        decisions += 1
    return decisions


def _timed(fn, repeat: int) -> tuple[float, float, object]:
    """Best CPU time and best wall-clock time of ``repeat`` runs, and the output.  Rates use CPU
    time (this process only), so other load on a shared machine does not skew the ratio."""
    cpu, wall, out = [], [], None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall), out


def bench_pure(n_sessions: int, n_agents: int, repeat: int) -> dict[str, float]:
    """Prints and returns decisions per second (CPU time) per configuration and for the baseline."""
    print(f"Python {platform.python_version()} on {platform.machine()}")
    print(f"pure scheduler, one tick: {n_sessions} pending sessions over {n_agents} agents "
          f"(best of {repeat}; rates per CPU second)")
    inp = build_input(n_sessions, n_agents)
    cpu, wall, n_naive = _timed(lambda: naive_first_fit(inp), repeat)
    naive_rate = n_naive / cpu
    rates = {"naive": naive_rate}
    print(f"  naive first-fit baseline   cpu {cpu:6.3f} s  wall {wall:6.3f} s  {naive_rate:9,.0f} decisions/s")
    for scheduler in SchedulerKind:
        for selection in AgentSelection:
            group = dataclasses.replace(inp.resource_group, scheduler=scheduler, agent_selection=selection)
            tick = dataclasses.replace(inp, resource_group=group)
            cpu, wall, result = _timed(lambda tick=tick: schedule(tick), repeat)
            rate = len(result.decisions) / cpu
            rates[f"{scheduler.value}/{selection.value}"] = rate
            print(f"  {scheduler.value:4} {selection.value:12}          cpu {cpu:6.3f} s  wall {wall:6.3f} s  "
                  f"{rate:9,.0f} decisions/s  ×{rate / naive_rate:.2f} of naive  "
                  f"({len(result.scheduled)} scheduled, {len(result.pending)} pending, "
                  f"{len(result.cancelled)} cancelled)")
    return rates


def bench_db_pass(n_pending: int = 1_000, n_agents: int = 100, n_running: int = 200, db_url: str = "") -> dict[str, float]:
    """One scheduling pass with the database: ``Dispatcher.tick()`` over ``n_pending`` pending
    sessions (load agents, live sessions, keypairs/projects/domains/dependencies, run the pure
    core, write every decision: placements, statuses, history, predicate records, agent
    occupancy).  The pure core's share of it is measured inside the same pass.

    The database (SQLite in a temporary directory unless ``db_url``) holds ``n_agents`` agents
    (32 cores, 128 GiB) running ``n_running`` sessions, and ``n_pending`` sessions of the
    presets' CPU shapes, about twice what fits; no agent RPC is made (launches are recorded only).
    """
    import asyncio

    return asyncio.run(_db_pass(n_pending, n_agents, n_running, db_url))


async def _db_pass(n_pending: int, n_agents: int, n_running: int, db_url: str) -> dict[str, float]:
    import os
    import tempfile
    import uuid
    from pathlib import Path

    from sqlalchemy import func, select

    from workbay.common.config import load_config
    from workbay.manager.app import build_state, close_state
    from workbay.manager.compute import dispatcher as dispatcher_mod
    from workbay.manager.compute.lifecycle import Lifecycle
    from workbay.manager.models import Keypair, KeypairResourcePolicy, Project, User
    from workbay.manager.models.compute import Agent as AgentRow
    from workbay.manager.models.compute import ComputeSession, Kernel
    from workbay.manager.scheduler import core
    from workbay.manager.services.session_status import set_status

    os.environ.setdefault("WORKBAY_ADMIN_PASSWORD", "Bench-adm1n!pw")
    data_dir = Path(tempfile.mkdtemp(prefix="wb-bench-db-"))
    config = load_config(data_dir=data_dir, db={"url": db_url})
    st = await build_state(config, background=False)
    rnd = random.Random(11)
    shapes = [(w, ResourceSlot(sh)) for w, sh in PRESETS if "cuda.shares" not in sh]
    try:
        async with st.ctx.db.begin() as s:
            user = (await s.execute(select(User).where(User.email == "admin@workbay.local"))).scalar_one()
            kp = (await s.execute(select(Keypair).where(Keypair.user_id == user.uuid))).scalars().first()
            project = (await s.execute(select(Project).where(Project.name == "default"))).scalar_one()
            s.add(KeypairResourcePolicy(name="bench", total_resource_slots={}, max_concurrent_sessions=10**6,
                                        max_containers_per_session=8))
            await s.flush()
            kp.resource_policy = "bench"
            total = ResourceSlot({"cpu": 32, "mem": 128 * GIB})
            agents = [AgentRow(id=f"bench-agent-{i:03d}", status="ALIVE", schedulable=True,
                               addr=f"http://127.0.0.1:{20000 + i}", resource_group="default",
                               available_slots=total.to_json(), occupied_slots={})
                      for i in range(n_agents)]
            s.add_all(agents)
            await s.flush()

            def session(i: int, status: str) -> ComputeSession:
                slots = rnd.choices([sh for _, sh in shapes], [w for w, _ in shapes])[0]
                sess = ComputeSession(
                    name=f"bench-{status.lower()}-{i:05d}", session_type="interactive", status="NEW",
                    status_data={}, status_history=[], access_key=kp.access_key, user_id=user.uuid,
                    project_id=project.id, domain_name=user.domain_name, resource_group="default",
                    image="localhost/workbay/python:3.11", requested_slots=slots.to_json(),
                    occupying_slots=slots.to_json() if status == "RUNNING" else {})
                set_status(sess, "PENDING", "enqueued")
                if status == "RUNNING":
                    set_status(sess, "RUNNING", "started")
                return sess

            running = [session(i, "RUNNING") for i in range(n_running)]
            pending = [session(i, "PENDING") for i in range(n_pending)]
            s.add_all(running + pending)
            await s.flush()
            for i, sess in enumerate(running):
                agent = agents[i % n_agents]
                s.add(Kernel(session_id=sess.id, status="RUNNING", agent_id=agent.id, agent_addr=agent.addr,
                             occupied_slots=sess.requested_slots, service_ports=[], last_stat={}, allocation={}))
            for sess in pending:
                s.add(Kernel(session_id=sess.id, status="PENDING", occupied_slots={}, service_ports=[],
                             last_stat={}, allocation={}))

        class RecordingKernels:
            """Stands in for the agent RPC: records which sessions would be launched."""

            def __init__(self) -> None:
                self.launched: list[uuid.UUID] = []

            def launch(self, session_id: uuid.UUID) -> None:
                self.launched.append(session_id)

        async def no_outcome(session_id: uuid.UUID, reason: str) -> None:
            pass

        launcher = RecordingKernels()
        dispatcher = dispatcher_mod.Dispatcher(st.ctx, launcher, Lifecycle(st.ctx, on_session_outcome=no_outcome))
        pure_time: list[float] = []
        real_schedule = dispatcher_mod.core.schedule

        def timed_schedule(inp):
            t = time.perf_counter()
            try:
                return real_schedule(inp)
            finally:
                pure_time.append(time.perf_counter() - t)

        dispatcher_mod.core.schedule = timed_schedule
        try:
            c0, w0 = time.process_time(), time.perf_counter()
            result = await dispatcher.tick()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        finally:
            dispatcher_mod.core.schedule = real_schedule
        async with st.ctx.db() as s:
            counts = dict((await s.execute(select(ComputeSession.status, func.count()).where(
                ComputeSession.name.like("bench-pending-%")).group_by(ComputeSession.status))).all())
        decisions = len(result.decisions) if result else 0
        pure = sum(pure_time)
        dialect = "PostgreSQL" if config.db_url.startswith("postgresql") else "SQLite"
        print(f"database pass ({dialect}): Dispatcher.tick() over {n_pending} pending sessions, "
              f"{n_agents} agents, {n_running} running sessions")
        print(f"  one pass: wall {wall:6.3f} s  cpu {cpu:6.3f} s  {decisions / wall:9,.0f} decisions/s (wall)  "
              f"({len(launcher.launched)} scheduled, {counts.get('PENDING', 0)} still pending)")
        print(f"  of which the pure core: {pure:6.3f} s ({pure / wall:.0%}); database load + writes "
              f"{wall - pure:6.3f} s; pass / pure core ×{wall / pure:.1f}")
        assert isinstance(result, core.SchedulingResult)
        return {"wall": wall, "cpu": cpu, "pure": pure, "decisions": decisions}
    finally:
        await close_state(st)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", action="store_true", help="also run the database pass (bench_db_pass)")
    parser.add_argument("--db-pending", type=int, default=1_000, help="pending sessions of the database pass")
    parser.add_argument("--db-url", default="", help="database of the pass (default: SQLite in a temp dir)")
    parser.add_argument("--db-only", action="store_true", help="only the database pass")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if not args.db_only:
        bench_pure(args.sessions, args.agents, args.repeat)
    if args.db or args.db_only:
        bench_db_pass(args.db_pending, db_url=args.db_url)
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

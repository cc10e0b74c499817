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

Database part: ``bench_db_pass()`` is the hook for "one scheduling pass with the database over
1,000 pending sessions"; it is written with the dispatcher.

Run: .venv/bin/python benchmarks/scheduler.py [--sessions N] [--agents N] [--repeat N]
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
    Agent,
    AgentSelection,
    ClusterMode,
    DependencyState,
    KeypairUsage,
    PendingSession,
    ResourceGroup,
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
    group = ResourceGroup("default", scheduler=scheduler, agent_selection=selection, retries_to_skip=0,
                          pending_timeout=3600)
    agents = []
    for i in range(n_agents):
        gpu = i % 4 == 3
        total = {"cpu": 32, "mem": (256 if gpu else 128) * GIB}
        if gpu:
            total["cuda.shares"] = 8
        busy = Decimal(rnd.randint(0, 50)) / 100
        occupied = {k: (Decimal(v) * busy).quantize(Decimal(1)) for k, v in total.items()}
        agents.append(Agent(f"agent-{i:04d}", "default", ResourceSlot(total), ResourceSlot(occupied)))
    keys = [f"AK{i:04d}" for i in range(500)]
    keypairs = {}
    for i, k in enumerate(keys):
        limit = ResourceSlot({"cpu": 64, "mem": 256 * GIB}) if i % 5 == 0 else ResourceSlot()
        keypairs[k] = KeypairUsage(limit=limit, max_concurrent_sessions=30, active_sessions=rnd.randint(0, 5))
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
            cpu, wall, result = _timed(lambda: schedule(tick), repeat)
            rate = len(result.decisions) / cpu
            rates[f"{scheduler.value}/{selection.value}"] = rate
            print(f"  {scheduler.value:4} {selection.value:12}          cpu {cpu:6.3f} s  wall {wall:6.3f} s  "
                  f"{rate:9,.0f} decisions/s  ×{rate / naive_rate:.2f} of naive  "
                  f"({len(result.scheduled)} scheduled, {len(result.pending)} pending, "
                  f"{len(result.cancelled)} cancelled)")
    return rates


def bench_db_pass(n_pending: int = 1_000) -> None:
    """Hook: one scheduling pass with the database over ``n_pending`` pending sessions (load the
    input, run the core, persist the decisions), against the pure core on the same input.  Written
    with the dispatcher."""
    raise NotImplementedError("the database pass is added with the dispatcher")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", action="store_true", help="also run the database pass (bench_db_pass)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    bench_pure(args.sessions, args.agents, args.repeat)
    if args.db:
        bench_db_pass()
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

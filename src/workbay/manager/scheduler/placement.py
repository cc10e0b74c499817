"""Agent selection for one tick: which agent(s) get a session's kernels.

``AgentPool`` is the tick's working copy of the candidate agents' free slots (the input ``AgentCapacity``
objects are never touched).  Rules:

- candidates: agents of the resource group that are schedulable, have the session's architecture,
  and — when the session designates agents (CS-7) — are among the designated ones;
- an agent fits a kernel when every requested slot with an amount > 0 is ≤ its free amount (an
  agent without the slot has zero of it);
- preference: first the agents with the fewest slot types the request does not use (a CPU-only
  session goes to a CPU-only agent before a GPU agent), then by load — the agent's dominant
  utilisation (max over its slots of used / total): ``dispersed`` takes the least loaded,
  ``concentrated`` the most loaded that fits; ties by agent id;
- single-node sessions (and any session of one kernel) go whole to one agent; multi-node ones go
  to one agent when one can hold them all, otherwise kernel by kernel (each kernel to the
  preferred agent given the kernels already placed); all or nothing.

Within a tick free amounts only shrink, so a request that found no room also finds none for any
request at least as big in every slot: those are answered from a cache without scanning.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from workbay.common.slots import ZERO, ResourceSlot

from .model import AgentCapacity, AgentSelection, ClusterMode

_FAILED_CACHE_CAP = 64
_SHAPES_PER_BUCKET_CAP = 256


class _AgentState:
    __slots__ = ("id", "arch", "total", "used", "free", "sig", "util", "version", "changed")

    def __init__(self, agent: AgentCapacity) -> None:
        self.id = agent.id
        self.arch = agent.architecture
        self.total = {k: v for k, v in agent.total_slots.items()}
        self.used = {k: v for k, v in agent.occupied_slots.items()}
        self.free = {k: self.total.get(k, ZERO) - self.used.get(k, ZERO) for k in self.total.keys() | self.used.keys()}
        self.sig = frozenset(k for k, v in self.total.items() if v > 0)
        self.version = 0
        self.changed = False
        self.util = self._utilisation(self.used)

    def _utilisation(self, used: dict[str, Decimal]) -> Decimal:
        best = ZERO
        for k, cap in self.total.items():
            if cap > 0 and not cap.is_infinite():
                u = used.get(k, ZERO) / cap
                if u > best:
                    best = u
        return best

    def fits(self, req: Sequence[tuple[str, Decimal]], extra: dict[str, Decimal] | None = None) -> bool:
        free = self.free
        if extra:
            for k, v in req:
                if v + extra.get(k, ZERO) > free.get(k, ZERO):
                    return False
            return True
        for k, v in req:
            if v > free.get(k, ZERO):
                return False
        return True

    def util_with(self, extra: dict[str, Decimal] | None) -> Decimal:
        if not extra:
            return self.util
        used = dict(self.used)
        for k, v in extra.items():
            used[k] = used.get(k, ZERO) + v
        return self._utilisation(used)

    def allocate(self, req: Iterable[tuple[str, Decimal]]) -> None:
        for k, v in req:
            self.used[k] = self.used.get(k, ZERO) + v
            self.free[k] = self.free.get(k, ZERO) - v
        self.util = self._utilisation(self.used)
        self.version += 1
        self.changed = True


class _Bucket:
    """Agents of one architecture with the same set of slot types."""
    __slots__ = ("agents", "by_shape")

    def __init__(self) -> None:
        self.agents: list[_AgentState] = []
        # request shape -> (heap of (±util, id, version) of agents that may fit it, ids that never will)
        self.by_shape: dict[tuple[tuple[str, Decimal], ...], tuple[list[tuple[Decimal, str, int]], set[str]]] = {}


@dataclass(frozen=True, slots=True)
class Placement:
    """Agent id per kernel (kernel 0 first) and the per-kernel slots."""
    agent_ids: tuple[str, ...]
    per_kernel: ResourceSlot


def request_items(slots: ResourceSlot) -> tuple[tuple[str, Decimal], ...]:
    """The slots that matter for fitting: amount > 0, sorted for stable cache keys."""
    return tuple(sorted((k, v) for k, v in slots.items() if v > 0))


class AgentPool:
    """The candidate agents of one resource group during one tick."""

    def __init__(self, agents: Iterable[AgentCapacity], resource_group: str, selection: AgentSelection) -> None:
        self.selection = AgentSelection(selection)
        self._sign = 1 if self.selection is AgentSelection.DISPERSED else -1
        self.states: dict[str, _AgentState] = {}
        self.excluded: dict[str, str] = {}  # agent id -> why it is not a candidate (designation messages)
        for a in agents:
            if a.resource_group != resource_group:
                self.excluded.setdefault(a.id, f"agent {a.id} belongs to resource group {a.resource_group!r}")
                continue
            if a.id in self.states:
                raise ValueError(f"agent {a.id} given twice")
            if not a.schedulable:
                self.excluded[a.id] = f"agent {a.id} is not schedulable"
                continue
            self.states[a.id] = _AgentState(a)
        self._buckets: dict[tuple[str, frozenset[str]], _Bucket] = {}
        for st in self.states.values():
            self._buckets.setdefault((st.arch, st.sig), _Bucket()).agents.append(st)
        self._levels_cache: dict[tuple[str, frozenset[str]], list[list[_Bucket]]] = {}
        # (architecture, designated agents, kernel count, cluster mode) -> requests that found no room
        self._failed: dict[tuple[str, tuple[str, ...], int, ClusterMode | None], list[dict[str, Decimal]]] = {}
        self.architectures = frozenset(st.arch for st in self.states.values())
        cap: dict[str, Decimal] = {}
        free: dict[str, Decimal] = {}
        for st in self.states.values():
            for k, v in st.total.items():
                cap[k] = cap.get(k, ZERO) + v
            for k, v in st.free.items():
                free[k] = free.get(k, ZERO) + v
        self.capacity = ResourceSlot.of_decimals(cap)
        self._free_total = free
        self._free_text: str | None = None

    # -- read ---------------------------------------------------------------------------------
    @property
    def free_total(self) -> ResourceSlot:
        return ResourceSlot.of_decimals(self._free_total)

    def describe_free(self) -> str:
        """``cpu 3, cuda.shares 0, mem 2 GiB``: what the candidate agents have free in all."""
        if self._free_text is None:
            self._free_text = self.free_total.describe(keep_zeros=True)
        return self._free_text

    def occupied(self) -> dict[str, ResourceSlot]:
        return {aid: ResourceSlot.of_decimals(st.used) for aid, st in self.states.items()}

    def _key(self, st: _AgentState, req_keys: frozenset[str], util: Decimal) -> tuple[int, Decimal, str]:
        return (len(st.sig - req_keys), self._sign * util, st.id)

    def _levels(self, arch: str, req_keys: frozenset[str]) -> list[list[_Bucket]]:
        ck = (arch, req_keys)
        levels = self._levels_cache.get(ck)
        if levels is None:
            by_extras: dict[int, list[_Bucket]] = {}
            for (b_arch, sig), bucket in self._buckets.items():
                if b_arch == arch and req_keys <= sig:
                    by_extras.setdefault(len(sig - req_keys), []).append(bucket)
            levels = [by_extras[e] for e in sorted(by_extras)]
            self._levels_cache[ck] = levels
        return levels

    def _best_in_bucket(self, bucket: _Bucket, req: tuple[tuple[str, Decimal], ...]) -> _AgentState | None:
        """The bucket's preferred agent that fits ``req``.  Each bucket keeps, per request shape, a
        heap of the agents that may still fit it: one that does not fit now never will again in
        this tick (free slots only shrink), so it leaves that shape's heap for good."""
        sign = self._sign
        entry = bucket.by_shape.get(req)
        if entry is None:
            if len(bucket.by_shape) >= _SHAPES_PER_BUCKET_CAP:
                best = None
                for st in bucket.agents:
                    if st.fits(req) and (best is None or (sign * st.util, st.id) < (sign * best.util, best.id)):
                        best = st
                return best
            heap = []
            dropped = set()
            for st in bucket.agents:
                if st.fits(req):
                    heap.append((sign * st.util, st.id, st.version))
                else:
                    dropped.add(st.id)
            heapq.heapify(heap)
            entry = bucket.by_shape[req] = (heap, dropped)
        heap, dropped = entry
        states = self.states
        while heap:
            top = heap[0]
            st = states[top[1]]
            if top[2] != st.version:
                heapq.heappop(heap)  # stale: the agent was pushed again with its new load
            elif st.fits(req):
                return st
            else:
                heapq.heappop(heap)
                dropped.add(st.id)
        return None

    def _best_single(self, arch: str, req: tuple[tuple[str, Decimal], ...], req_keys: frozenset[str]) -> _AgentState | None:
        for level in self._levels(arch, req_keys):
            best = None
            best_key = None
            for bucket in level:
                st = self._best_in_bucket(bucket, req)
                if st is not None:
                    key = (self._sign * st.util, st.id)
                    if best_key is None or key < best_key:
                        best, best_key = st, key
            if best is not None:
                return best
        return None

    def _best_linear(self, cands: Sequence[_AgentState], req: Sequence[tuple[str, Decimal]], req_keys: frozenset[str],
                     extra: dict[str, dict[str, Decimal]] | None = None) -> _AgentState | None:
        best = None
        best_key = None
        for st in cands:
            e = extra.get(st.id) if extra else None
            if not st.fits(req, e):
                continue
            key = self._key(st, req_keys, st.util_with(e))
            if best_key is None or key < best_key:
                best, best_key = st, key
        return best

    def candidates(self, arch: str, designated: Sequence[str] = ()) -> list[_AgentState]:
        if designated:
            return [self.states[a] for a in dict.fromkeys(designated) if a in self.states and self.states[a].arch == arch]
        return [st for st in self.states.values() if st.arch == arch]

    def find(self, per_kernel: ResourceSlot, count: int, mode: ClusterMode, arch: str,
             designated: Sequence[str] = ()) -> Placement | None:
        """Where the session's kernels would go now, without reserving anything; None if nowhere."""
        req = request_items(per_kernel)
        cache_key = (arch, tuple(designated), count if count > 1 else 1, mode if count > 1 else None)
        failed = self._failed.get(cache_key)
        if failed:
            for f in failed:
                for k, v in f.items():
                    if per_kernel.amount(k) < v:
                        break
                else:
                    return None  # at least as big as a request that already found no room
        ids = self._find(req, count, mode, arch, tuple(designated))
        if ids is None:
            lst = self._failed.setdefault(cache_key, [])
            if len(lst) < _FAILED_CACHE_CAP:
                lst.append(dict(req))
            return None
        return Placement(ids, per_kernel)

    def _find(self, req: tuple[tuple[str, Decimal], ...], count: int, mode: ClusterMode, arch: str,
              designated: tuple[str, ...]) -> tuple[str, ...] | None:
        req_keys = frozenset(k for k, _ in req)
        whole = req if count == 1 else tuple((k, v * count) for k, v in req)
        if designated:
            cands = self.candidates(arch, designated)
            st = self._best_linear(cands, whole, req_keys)
        else:
            cands = None
            st = self._best_single(arch, whole, req_keys)
        if st is not None:
            return (st.id,) * count
        if count == 1 or mode is ClusterMode.SINGLE_NODE:
            return None
        # multi-node: kernel by kernel, each to the preferred agent given those already placed
        if cands is None:
            cands = [s for s in self.candidates(arch) if req_keys <= s.sig]
        extra: dict[str, dict[str, Decimal]] = {}
        ids = []
        for _ in range(count):
            st = self._best_linear(cands, req, req_keys, extra)
            if st is None:
                return None
            e = extra.setdefault(st.id, {})
            for k, v in req:
                e[k] = e.get(k, ZERO) + v
            ids.append(st.id)
        return tuple(ids)

    def could_ever_fit(self, per_kernel: ResourceSlot, count: int, mode: ClusterMode, arch: str,
                       designated: Sequence[str] = ()) -> bool:
        """Whether the session would fit if every candidate agent were empty."""
        req = request_items(per_kernel)
        cands = self.candidates(arch, designated)
        if count == 1 or mode is ClusterMode.SINGLE_NODE:
            return any(all(v * count <= st.total.get(k, ZERO) for k, v in req) for st in cands)
        if not req:
            return bool(cands)
        held = 0
        for st in cands:
            held += min(int(st.total.get(k, ZERO) // v) for k, v in req)
            if held >= count:
                return True
        return False

    # -- write --------------------------------------------------------------------------------
    def commit(self, placement: Placement) -> None:
        req = request_items(placement.per_kernel)
        for aid in placement.agent_ids:
            st = self.states[aid]
            if not st.fits(req):
                raise AssertionError(f"over-allocation of agent {aid}")  # find() guarantees this never happens
            st.allocate(req)
            for k, v in req:
                self._free_total[k] = self._free_total.get(k, ZERO) - v
        self._free_text = None
        for aid in dict.fromkeys(placement.agent_ids):
            st = self.states[aid]
            entry = (self._sign * st.util, st.id, st.version)
            for heap, dropped in self._buckets[(st.arch, st.sig)].by_shape.values():
                if st.id not in dropped:
                    heapq.heappush(heap, entry)

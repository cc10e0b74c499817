"""The order in which one tick considers pending sessions.

- FIFO: oldest ``created_at`` first (ties by session id);
- LIFO: newest first (ties by session id, descending);
- DRF (dominant resource fairness): the session whose owner — its access key — has the smallest
  dominant share of the group's capacity first; ties by age (oldest first), then id.  A key's share
  is max over slots of (what it occupies in the group + what this tick gave it) / the group's
  capacity, so it is recomputed as the tick allocates: after each of a key's sessions is
  scheduled, that key moves back in line.

``SessionQueue.pop()`` gives the next session; ``allocated()`` tells the queue what was just given.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from decimal import Decimal

from workbay.common.slots import ZERO, ResourceSlot

from .model import PendingSession, SchedulerKind


def dominant_share(usage: ResourceSlot, capacity: ResourceSlot) -> Decimal:
    """DRF share: max over slots of usage / capacity (slots without capacity are ignored)."""
    return usage.dominant_share(capacity)


def static_order(kind: SchedulerKind, sessions: Sequence[PendingSession]) -> list[PendingSession]:
    """FIFO or LIFO order of ``sessions``."""
    if kind is SchedulerKind.FIFO:
        return sorted(sessions, key=lambda s: (s.created_at, s.id))
    if kind is SchedulerKind.LIFO:
        return sorted(sessions, key=lambda s: (s.created_at, s.id), reverse=True)
    raise ValueError(f"{kind} has no static order")


class SessionQueue:
    def __init__(self, kind: SchedulerKind, sessions: Sequence[PendingSession], capacity: ResourceSlot,
                 group_usage: Mapping[str, ResourceSlot]) -> None:
        self.kind = SchedulerKind(kind)
        if self.kind is not SchedulerKind.DRF:
            self._static = static_order(self.kind, sessions)
            self._static.reverse()  # pop() from the end
            return
        self._capacity = capacity
        self._usage: dict[str, dict[str, Decimal]] = {}
        self._share: dict[str, Decimal] = {}
        self._per_key: dict[str, list[PendingSession]] = {}
        for s in sorted(sessions, key=lambda s: (s.created_at, s.id), reverse=True):
            self._per_key.setdefault(s.access_key, []).append(s)  # oldest at the end
        self._heap: list[tuple[Decimal, object, str, str]] = []
        for key, _lst in self._per_key.items():
            used = group_usage.get(key, ResourceSlot())
            self._usage[key] = dict(used.items())
            self._share[key] = used.dominant_share(capacity)
            self._push(key)

    def _push(self, key: str) -> None:
        lst = self._per_key[key]
        if lst:
            head = lst[-1]
            heapq.heappush(self._heap, (self._share[key], head.created_at, head.id, key))

    def __bool__(self) -> bool:
        if self.kind is not SchedulerKind.DRF:
            return bool(self._static)
        return bool(self._heap)

    def pop(self) -> PendingSession:
        if self.kind is not SchedulerKind.DRF:
            return self._static.pop()
        _, _, _, key = heapq.heappop(self._heap)
        session = self._per_key[key].pop()
        return session

    def allocated(self, session: PendingSession, slots: ResourceSlot) -> None:
        """``session`` (the one just popped) was scheduled holding ``slots``."""
        if self.kind is not SchedulerKind.DRF:
            return
        key = session.access_key
        used = self._usage[key]
        for k, v in slots.items():
            used[k] = used.get(k, ZERO) + v
        self._share[key] = ResourceSlot.of_decimals(used).dominant_share(self._capacity)

    def done(self, session: PendingSession) -> None:
        """Call after each popped session (scheduled or not) so its owner's next one queues."""
        if self.kind is SchedulerKind.DRF:
            self._push(session.access_key)

    def share_of(self, access_key: str) -> Decimal:
        return self._share.get(access_key, ZERO)

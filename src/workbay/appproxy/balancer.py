"""Which replica (route) of a model service answers the next request: pure, no I/O.

Weighted least-outstanding-requests within the traffic ratios: a route's score is
``(in_flight + 1) / traffic_ratio`` (the wait a new request would see, per unit of the share the
route should get); ratio 0 never gets a request; routes given in ``exclude`` (the one that just
failed, for the retry) are skipped.

* All candidates with the same ratio: the lowest score wins outright (least outstanding); ties go
  round-robin, in the order the routes are listed, after the route chosen last, so equal idle
  replicas alternate.
* Different ratios: the score is the step of an earliest-deadline-first schedule (Envoy's weighted
  least request): each route's next deadline is its last one plus its current score and the
  earliest deadline wins.  Idle, this honours the ratios exactly (90/10 gets nine of ten
  requests, which a plain lowest-score rule would give all to the 90); loaded, a route with more
  requests outstanding steps further and is chosen less.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouteLoad:
    route_id: str
    traffic_ratio: float
    in_flight: int


def score(route: RouteLoad) -> float:
    return (route.in_flight + 1) / route.traffic_ratio


class Balancer:
    """The choice for one service; remembers the last choice and the EDF deadlines."""

    def __init__(self) -> None:
        self.last: str | None = None
        self.deadlines: dict[str, float] = {}
        self.now = 0.0  # the schedule's clock: the deadline of the last choice

    def choose(self, routes: Sequence[RouteLoad], exclude: Collection[str] = ()) -> str | None:
        """The route for the next request, or None when no route may take it."""
        candidates = [r for r in routes if r.traffic_ratio > 0 and r.route_id not in exclude]
        if not candidates:
            return None
        if len(candidates) == 1:
            chosen = candidates[0].route_id
        elif all(r.traffic_ratio == candidates[0].traffic_ratio for r in candidates):
            best = min(r.in_flight for r in candidates)
            chosen = self._round_robin([r for r in candidates if r.in_flight == best], routes)
        else:
            chosen = self._earliest_deadline(candidates, routes)
        self.last = chosen
        return chosen

    def _round_robin(self, tied: list[RouteLoad], routes: Sequence[RouteLoad]) -> str:
        if len(tied) == 1 or self.last is None:
            return tied[0].route_id
        order = {r.route_id: i for i, r in enumerate(routes)}
        last = order.get(self.last, -1)
        after = [r for r in tied if order[r.route_id] > last]
        return (after or tied)[0].route_id

    def _earliest_deadline(self, candidates: list[RouteLoad], routes: Sequence[RouteLoad]) -> str:
        live = {r.route_id for r in routes}
        for gone in [k for k in self.deadlines if k not in live]:
            del self.deadlines[gone]
        # A route new to the schedule (or back from idle) starts one step from now, not at 0:
        # it must not take every request until it catches up.
        for r in candidates:
            if r.route_id not in self.deadlines or self.deadlines[r.route_id] < self.now:
                self.deadlines[r.route_id] = self.now + score(r)
        earliest = min(self.deadlines[r.route_id] for r in candidates)
        tied = [r for r in candidates if self.deadlines[r.route_id] == earliest]
        chosen = self._round_robin(tied, routes)
        route = next(r for r in tied if r.route_id == chosen)
        self.now = earliest
        self.deadlines[chosen] = earliest + score(route)
        return chosen

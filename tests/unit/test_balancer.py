"""The inference balancer (appproxy/balancer.py): least outstanding within traffic ratios, ties
round-robin, ratio 0 never, exclusions for the retry, EDF shares when ratios differ."""

from __future__ import annotations

from collections import Counter

import pytest

from workbay.appproxy.balancer import Balancer, RouteLoad, score


def loads(*spec: tuple[str, float, int]) -> list[RouteLoad]:
    return [RouteLoad(rid, ratio, inflight) for rid, ratio, inflight in spec]


def picks(balancer: Balancer, routes: list[RouteLoad], n: int) -> list[str | None]:
    return [balancer.choose(routes) for _ in range(n)]


def test_score_is_outstanding_plus_one_over_ratio() -> None:
    assert score(RouteLoad("a", 2.0, 3)) == 2.0
    assert score(RouteLoad("a", 1.0, 0)) == 1.0


def test_no_routes_gives_none() -> None:
    assert Balancer().choose([]) is None


def test_ratio_zero_never_chosen() -> None:
    b = Balancer()
    routes = loads(("a", 0, 0), ("b", 1, 50))
    assert set(picks(b, routes, 20)) == {"b"}
    assert b.choose(loads(("a", 0, 0))) is None


def test_only_ratio_zero_routes_gives_none() -> None:
    assert Balancer().choose(loads(("a", 0, 0), ("b", 0, 0))) is None


def test_equal_idle_replicas_alternate() -> None:
    b = Balancer()
    routes = loads(("a", 1, 0), ("b", 1, 0), ("c", 1, 0))
    assert picks(b, routes, 6) == ["a", "b", "c", "a", "b", "c"]


def test_least_outstanding_wins_with_equal_ratios() -> None:
    b = Balancer()
    routes = loads(("a", 1, 3), ("b", 1, 1), ("c", 1, 2))
    assert set(picks(b, routes, 5)) == {"b"}


def test_ties_among_least_loaded_rotate_skipping_busier() -> None:
    b = Balancer()
    routes = loads(("a", 1, 0), ("b", 1, 4), ("c", 1, 0))
    assert picks(b, routes, 4) == ["a", "c", "a", "c"]


def test_round_robin_survives_a_removed_last_choice() -> None:
    b = Balancer()
    assert b.choose(loads(("a", 1, 0), ("b", 1, 0))) == "a"
    assert b.choose(loads(("x", 1, 0), ("b", 1, 0))) == "x"  # a is gone: start from the first
    assert b.choose(loads(("x", 1, 0), ("b", 1, 0))) == "b"


def test_exclude_skips_the_failed_route() -> None:
    b = Balancer()
    routes = loads(("a", 1, 0), ("b", 1, 5))
    assert b.choose(routes, exclude={"a"}) == "b"
    assert b.choose(routes, exclude={"a", "b"}) is None


def test_exclude_with_one_route_left_of_different_ratio() -> None:
    b = Balancer()
    routes = loads(("a", 3, 0), ("b", 1, 0), ("c", 0, 0))
    assert b.choose(routes, exclude={"a"}) == "b"
    assert b.choose(routes, exclude={"a", "b"}) is None


def test_single_candidate_always_chosen_however_loaded() -> None:
    b = Balancer()
    assert set(picks(b, loads(("a", 5, 100)), 3)) == {"a"}


@pytest.mark.parametrize(("ratios", "n"), [((90, 10), 100), ((3, 1), 80), ((1, 2, 3), 120), ((50, 50, 0), 40)])
def test_idle_traffic_follows_the_ratios(ratios: tuple[int, ...], n: int) -> None:
    b = Balancer()
    routes = [RouteLoad(f"r{i}", ratio, 0) for i, ratio in enumerate(ratios)]
    got = Counter(picks(b, routes, n))
    total = sum(ratios)
    for i, ratio in enumerate(ratios):
        expected = n * ratio / total
        assert abs(got.get(f"r{i}", 0) - expected) <= 1.5, (got, ratios)


def test_loaded_route_gets_less_with_different_ratios() -> None:
    """Ratio 2 vs 1 but the ratio-2 route holds many requests: the other one gets most."""
    b = Balancer()
    routes = loads(("big", 2, 20), ("small", 1, 0))
    got = Counter(picks(b, routes, 30))
    assert got["small"] > got["big"]


def test_new_route_does_not_take_everything_until_caught_up() -> None:
    b = Balancer()
    routes = loads(("a", 2, 0), ("b", 1, 0))
    picks(b, routes, 300)
    routes = [*routes, RouteLoad("c", 1, 0)]
    got = Counter(picks(b, routes, 40))
    assert got["a"] > got["c"] >= 5 and got["b"] >= 5


def test_deadlines_of_removed_routes_are_forgotten() -> None:
    b = Balancer()
    picks(b, loads(("a", 2, 0), ("b", 1, 0)), 10)
    b.choose(loads(("a", 2, 0), ("c", 1, 0)))
    assert "b" not in b.deadlines


def test_ratio_change_moves_traffic() -> None:
    b = Balancer()
    picks(b, loads(("a", 1, 0), ("b", 1, 0)), 10)
    got = Counter(picks(b, loads(("a", 1, 0), ("b", 0, 0)), 10))
    assert got == {"a": 10}

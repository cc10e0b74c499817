"""The serving reconciler's pure decisions (manager/serving/plan.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workbay.common.domain import RouteStatus as R
from workbay.common.domain import ServiceStatus as S
from workbay.manager.serving.plan import (
    MAX_BACKOFF,
    HealthCheck,
    RouteView,
    ServiceView,
    backoff,
    check_due,
    check_outcome,
    plan,
    with_outcome,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HC = HealthCheck(path="/health", interval=5, max_retries=3, max_wait_time=2, initial_delay=10)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def route(rid: str, status: str = R.HEALTHY, gen: int = 1, age: float = 100, session: str | None = "RUNNING",
          running: float | None = -1, **kw: object) -> RouteView:
    if running == -1:  # a provisioning replica within its start deadline, the others long up
        running = 5 if status == R.PROVISIONING else 90
    return RouteView(id=rid, status=status, generation=gen, created_at=ago(age), session_status=session,
                     running_since=ago(running) if running is not None else None, **kw)  # type: ignore[arg-type]


def svc(desired: int = 2, gen: int = 1, status: str = S.HEALTHY, **kw: object) -> ServiceView:
    return ServiceView(status=status, desired=desired, generation=gen, **kw)  # type: ignore[arg-type]


# -- backoff ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("retries", "seconds"), [(0, 0), (1, 2), (2, 4), (5, 32), (8, 256), (9, MAX_BACKOFF),
                                                  (100, MAX_BACKOFF)])
def test_backoff_doubles_up_to_the_cap(retries: int, seconds: float) -> None:
    assert backoff(retries) == seconds


# -- health checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "running", "last", "due"), [
    (R.PROVISIONING, None, None, False),  # the session does not run yet
    (R.PROVISIONING, 5, None, False),  # within the initial delay
    (R.PROVISIONING, 10, None, True),
    (R.HEALTHY, 100, 4, False),  # checked less than an interval ago
    (R.HEALTHY, 100, 5, True),
    (R.UNHEALTHY, 100, 6, True),
    (R.TERMINATING, 100, None, False),
    (R.FAILED, 100, None, False),
])
def test_check_due(status: str, running: float | None, last: float | None, due: bool) -> None:
    r = route("a", status, running=running, last_health_at=ago(last) if last is not None else None)
    assert check_due(r, NOW, HC) is due


@pytest.mark.parametrize(("status", "failures", "ok", "new_status", "new_failures", "became", "failed"), [
    (R.PROVISIONING, 0, True, R.HEALTHY, 0, True, False),
    (R.PROVISIONING, 2, False, R.PROVISIONING, 3, False, False),  # the start deadline decides
    (R.HEALTHY, 0, True, R.HEALTHY, 0, False, False),
    (R.HEALTHY, 1, True, R.HEALTHY, 0, False, False),  # a good check resets the count
    (R.HEALTHY, 0, False, R.HEALTHY, 1, False, False),  # still in rotation
    (R.HEALTHY, 2, False, R.UNHEALTHY, 3, False, False),  # max_retries failures: out of rotation
    (R.UNHEALTHY, 3, True, R.HEALTHY, 0, True, False),
    (R.UNHEALTHY, 4, False, R.UNHEALTHY, 5, False, False),
    (R.UNHEALTHY, 5, False, R.UNHEALTHY, 6, False, True),  # unhealthy too long: replaced
])
def test_check_outcome(status: str, failures: int, ok: bool, new_status: str, new_failures: int,
                       became: bool, failed: bool) -> None:
    out = check_outcome(route("a", status, health_failures=failures), ok, NOW, HC, "503")
    assert (out.status, out.failures, out.became_healthy, out.failed is not None) == \
        (new_status, new_failures, became, failed)
    assert (out.healthy_since is not None) == (new_status == R.HEALTHY)
    if failed:
        assert "503" in (out.failed or "")


def test_with_outcome_records_the_check() -> None:
    r = with_outcome(route("a", R.PROVISIONING), check_outcome(route("a", R.PROVISIONING), True, NOW, HC), NOW)
    assert (r.status, r.last_health_at, r.healthy_since) == (R.HEALTHY, NOW, NOW)


# -- failures and replacement ---------------------------------------------------------------------------
@pytest.mark.parametrize(("r", "reason"), [
    (route("a", R.HEALTHY, session="ERROR", session_info="exit code 1"), "ERROR: exit code 1"),
    (route("a", R.PROVISIONING, session="TERMINATED"), "TERMINATED"),  # "finished" is never success
    (route("a", R.PROVISIONING, session=None, running=None, has_session=False), "could not be created"),
    (route("a", R.PROVISIONING, running=HC.start_deadline), "did not pass within"),
])
def test_a_failed_replica_is_replaced_with_backoff(r: RouteView, reason: str) -> None:
    p = plan(svc(desired=1, retries=1), [r], NOW, HC)
    assert [f.route_id for f in p.failed] == ["a"] and reason in p.failed[0].reason
    assert p.retries == 2 and p.next_retry_at == NOW + timedelta(seconds=4)
    assert p.start == 0  # the backoff holds the replacement back
    assert p.status == S.UNHEALTHY and reason in p.status_info and "next try" in p.status_info


@pytest.mark.parametrize("r", [
    route("a", R.HEALTHY, session="ERROR", session_info="killed", healthy_since=ago(60)),
    route("a", R.UNHEALTHY, session="TERMINATED", healthy_since=ago(60)),
])
def test_a_replica_that_served_is_replaced_at_once(r: RouteView) -> None:
    """Failover does not wait for a backoff: only replicas that never got healthy count as failed
    starts."""
    p = plan(svc(desired=2, retries=0), [r, route("b", healthy_since=ago(60))], NOW, HC)
    assert [f.route_id for f in p.failed] == ["a"]
    assert p.retries == 0 and p.next_retry_at is None and p.start == 1


def test_a_provisioning_replica_within_its_deadline_is_kept() -> None:
    p = plan(svc(desired=1), [route("a", R.PROVISIONING, running=HC.start_deadline - 1)], NOW, HC)
    assert (p.failed, p.stop, p.start, p.status) == ([], [], 0, S.PROVISIONING)


def test_a_check_failure_condemns_the_replica() -> None:
    p = plan(svc(desired=1), [route("a", R.UNHEALTHY)], NOW, HC, {"a": "the health check failed 6 times"})
    assert [f.reason for f in p.failed] == ["the health check failed 6 times"]
    assert p.start == 0 and p.retries == 1  # 2 s backoff first


def test_replacement_starts_once_the_backoff_passed() -> None:
    p = plan(svc(desired=2, retries=3, next_retry_at=ago(1)), [route("a")], NOW, HC)
    assert p.start == 1 and p.retries == 3 and p.status == S.DEGRADED


def test_failed_and_terminating_routes_without_a_session_are_forgotten() -> None:
    routes = [route("f", R.FAILED, session="ERROR"), route("t", R.TERMINATING, session="TERMINATED"),
              route("t2", R.TERMINATING, session="TERMINATING"), route("h")]
    p = plan(svc(desired=1), routes, NOW, HC)
    assert sorted(p.forget) == ["f", "t"] and p.start == 0 and p.status == S.HEALTHY


# -- scaling -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("desired", "routes", "start", "stop"), [
    (2, [], 2, []),
    (3, [route("a")], 2, []),
    (1, [route("a", age=10), route("b", age=20)], 0, ["a"]),  # the newest goes
    (1, [route("a"), route("u", R.UNHEALTHY)], 0, ["u"]),  # unhealthy first
    (1, [route("a"), route("p", R.PROVISIONING)], 0, ["p"]),  # then provisioning
    (1, [route("u", R.UNHEALTHY), route("p", R.PROVISIONING), route("h")], 0, ["u", "p"]),
    (0, [route("a"), route("b")], 0, ["a", "b"]),
    (2, [route("a"), route("t", R.TERMINATING, session="TERMINATING")], 1, []),  # terminating is no replica
])
def test_scale(desired: int, routes: list[RouteView], start: int, stop: list[str]) -> None:
    p = plan(svc(desired=desired), routes, NOW, HC)
    assert (p.start, p.stop) == (start, stop)


@pytest.mark.parametrize(("limit", "routes", "start", "limited"), [
    (None, [], 3, False),
    (0, [], 3, False),  # 0 = no limit
    (2, [], 2, True),
    (3, [route("a")], 2, False),
    (2, [route("a"), route("t", R.TERMINATING, session="TERMINATING")], 0, True),  # still holds a session
])
def test_the_policy_limit_counts_every_live_route(limit: int | None, routes: list[RouteView], start: int,
                                                 limited: bool) -> None:
    p = plan(svc(desired=3, max_replicas=limit), routes, NOW, HC)
    assert (p.start, p.limited) == (start, limited)
    if limited:
        assert "max_session_count_per_model_session" in p.status_info


# -- rolling update ---------------------------------------------------------------------------------------
def test_rolling_update_surges_one_new_replica() -> None:
    p = plan(svc(desired=2, gen=2), [route("a"), route("b")], NOW, HC)
    assert (p.start, p.stop) == (1, [])


def test_rolling_update_waits_for_the_new_replica() -> None:
    p = plan(svc(desired=2, gen=2), [route("a"), route("b"), route("n", R.PROVISIONING, gen=2)], NOW, HC)
    assert (p.start, p.stop, p.status) == (0, [], S.HEALTHY)


def test_rolling_update_stops_one_old_when_the_new_one_is_healthy() -> None:
    p = plan(svc(desired=2, gen=2), [route("a", age=200), route("b"), route("n", gen=2, age=5)], NOW, HC)
    assert (p.start, p.stop) == (1, ["a"])  # the oldest old replica; the next new one starts


def test_rolling_update_goes_on_until_all_are_new() -> None:
    p = plan(svc(desired=2, gen=2), [route("b"), route("n", gen=2)], NOW, HC)
    assert (p.start, p.stop) == (1, [])
    p = plan(svc(desired=2, gen=2), [route("b"), route("n", gen=2), route("m", gen=2)], NOW, HC)
    assert (p.start, p.stop) == (0, ["b"])
    p = plan(svc(desired=2, gen=2), [route("n", gen=2), route("m", gen=2)], NOW, HC)
    assert (p.start, p.stop) == (0, [])


def test_rolling_update_never_lowers_the_healthy_count() -> None:
    # One old replica healthy, one unhealthy: the unhealthy one goes at once, the healthy one stays
    # until a new one is healthy.
    p = plan(svc(desired=2, gen=2), [route("a"), route("u", R.UNHEALTHY)], NOW, HC)
    assert p.stop == ["u"] and p.start == 1


def test_old_provisioning_replicas_stop_at_once() -> None:
    p = plan(svc(desired=1, gen=2), [route("p", R.PROVISIONING)], NOW, HC)
    assert (p.stop, p.start) == (["p"], 1)


# -- service status -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("service", "routes", "status", "info"), [
    (svc(desired=0), [], S.HEALTHY, "scaled to zero"),
    (svc(desired=2, status=S.PROVISIONING), [], S.PROVISIONING, "first healthy"),
    (svc(desired=2), [route("a", R.PROVISIONING)], S.PROVISIONING, "first healthy"),
    (svc(desired=2), [route("a"), route("b")], S.HEALTHY, "2 of 2"),
    (svc(desired=2), [route("a"), route("b", R.PROVISIONING)], S.DEGRADED, "1 of 2"),
    (svc(desired=2), [route("a", R.UNHEALTHY), route("b", R.UNHEALTHY)], S.UNHEALTHY, "no healthy"),
    (svc(desired=1, retries=2), [], S.UNHEALTHY, "no healthy"),
])
def test_service_status(service: ServiceView, routes: list[RouteView], status: str, info: str) -> None:
    p = plan(service, routes, NOW, HC)
    assert p.status == status and info in p.status_info


def test_terminating_stops_every_replica_then_is_destroyed() -> None:
    routes = [route("a"), route("p", R.PROVISIONING), route("x", R.PROVISIONING, session="ERROR"),
              route("t", R.TERMINATING, session="TERMINATING")]
    p = plan(svc(status=S.TERMINATING), routes, NOW, HC)
    assert sorted(p.stop) == ["a", "p", "x"] and p.failed == [] and p.start == 0
    assert (p.status, p.destroyed) == (S.TERMINATING, False)
    gone = [route(r, R.TERMINATING, session="TERMINATED") for r in "apxt"]
    p = plan(svc(status=S.TERMINATING), gone, NOW, HC)
    assert (p.status, p.destroyed, sorted(p.forget)) == (S.DESTROYED, True, ["a", "p", "t", "x"])

"""One session the core cannot evaluate is cancelled with the error; the tick goes on for the
others (issue 10, finding 6: an ``"cpu": "Infinity"`` row used to fail every tick)."""

from __future__ import annotations

import pytest

from tests.unit.scheduler_factory import agent, ids, session, tick
from workbay.common.slots import ResourceSlot
from workbay.manager.scheduler.core import CANCEL_INVALID_REQUEST, Cancelled, PendingSession


def poisoned(id: str, slots: dict, **kw) -> PendingSession:
    """A session whose stored request no API accepts (frozen fields forced, as a bad row would be)."""
    s = session(id, **kw)
    object.__setattr__(s, "requested_slots", ResourceSlot(slots))
    return s


@pytest.mark.parametrize("scheduler", ["fifo", "lifo", "drf"])
def test_a_session_that_raises_is_cancelled_and_the_rest_is_scheduled(scheduler):
    # 9E+999999 × 2 kernels overflows Decimal's exponent: evaluating it raises
    bad = poisoned("bad", {"cpu": "9E+999999", "mem": 1}, age=20, cluster_size=2, key="AK-bad")
    good = [session(f"good-{i}", age=10 - i, key=f"AK{i}") for i in range(3)]
    r = tick([bad, *good], [agent("a1", cpu=8, mem="16g")], scheduler=scheduler)
    assert sorted(ids(r.scheduled)) == ["good-0", "good-1", "good-2"]
    (c,) = r.cancelled
    assert isinstance(c, Cancelled) and c.session.id == "bad" and c.reason == CANCEL_INVALID_REQUEST
    assert c.message.startswith("the request cannot be scheduled:")
    # the bad session reserved nothing
    assert r.agent_occupied["a1"]["cpu"] == 3


def test_a_session_whose_cancellation_check_raises_is_cancelled():
    bad = session("bad", age=5)
    object.__setattr__(bad, "starts_at", "not a datetime")  # compared with a datetime: TypeError
    r = tick([bad, session("good", age=1)], [agent("a1")], pending_timeout=60)
    assert ids(r.scheduled) == ["good"]
    assert ids(r.cancelled) == ["bad"] and r.cancelled[0].reason == CANCEL_INVALID_REQUEST


@pytest.mark.parametrize("slots", [{"cpu": "Infinity"}, {"cpu": -1}, {"mem": "1e30"}, {"cpu": "1e-999999999"}])
def test_the_core_refuses_unbounded_requests_on_construction(slots):
    with pytest.raises(ValueError, match=r"session s: requested (cpu|mem)"):
        PendingSession(id="s", created_at=session("x").created_at, access_key="AK", project_id="p", domain="d",
                       resource_group="default", requested_slots=ResourceSlot(slots))

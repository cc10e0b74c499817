"""ResourceSlot: Decimal amounts, non-mutating arithmetic, the two readings of a missing slot,
user-input parsing and the JSON round trip."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbay.common.domain import parse_bytes
from workbay.common.slots import (
    INFINITY,
    ResourceSlot,
    SlotParseError,
    format_amount,
    is_bytes_slot,
    parse_amount,
    request_problem,
)

GIB = 1024**3


def test_values_are_decimals_and_floats_are_refused():
    s = ResourceSlot({"cpu": 2, "mem": "1073741824", "cuda.shares": Decimal("0.5")})
    assert all(isinstance(v, Decimal) for v in s.values())
    assert s["cuda.shares"] == Decimal("0.5")
    with pytest.raises(TypeError):
        ResourceSlot({"cpu": 1.5})
    with pytest.raises(TypeError):
        ResourceSlot({"cpu": True})
    with pytest.raises(SlotParseError):
        ResourceSlot({"cpu": "abc"})
    with pytest.raises(SlotParseError):
        ResourceSlot({"cpu": "NaN"})
    with pytest.raises(SlotParseError):
        ResourceSlot({"Bad Name": 1})


def test_kwargs_and_pairs():
    assert ResourceSlot(cpu=1, mem=2) == ResourceSlot([("cpu", 1), ("mem", 2)]) == {"cpu": 1, "mem": 2}


def test_arithmetic_never_mutates_operands():
    a = ResourceSlot({"cpu": 2, "mem": 4})
    b = ResourceSlot({"cpu": 1, "cuda.shares": "0.5"})
    a_before, b_before = dict(a), dict(b)
    assert a + b == {"cpu": 3, "mem": 4, "cuda.shares": Decimal("0.5")}
    assert a - b == {"cpu": 1, "mem": 4, "cuda.shares": Decimal("-0.5")}
    assert a * 3 == {"cpu": 6, "mem": 12}
    assert 2 * b == {"cpu": 2, "cuda.shares": 1}
    assert a.maximum(b) == {"cpu": 2, "mem": 4, "cuda.shares": Decimal("0.5")}
    assert a.minimum(b) == {"cpu": 1, "mem": 0, "cuda.shares": 0}
    assert dict(a) == a_before and dict(b) == b_before
    with pytest.raises(TypeError):
        a["cpu"] = 3  # type: ignore[index]


def test_sum_and_plain_mapping_operands():
    assert sum([ResourceSlot(cpu=1), ResourceSlot(cpu=2, mem=1)]) == {"cpu": 3, "mem": 1}
    assert ResourceSlot(cpu=1) + {"cpu": "2"} == {"cpu": 3}
    with pytest.raises(TypeError):
        ResourceSlot(cpu=1) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        ResourceSlot(cpu=1) * 1.5  # type: ignore[operator]


def test_fits_in_reads_a_missing_slot_as_zero():
    req = ResourceSlot({"cpu": 2, "cuda.shares": 1})
    assert req.fits_in({"cpu": Decimal(4), "cuda.shares": Decimal(1)})
    assert not req.fits_in({"cpu": Decimal(4)})  # an agent without GPUs has zero of them
    assert ResourceSlot({"cpu": 2, "cuda.shares": 0}).fits_in({"cpu": Decimal(2)})
    assert req <= ResourceSlot({"cpu": 2, "cuda.shares": 1, "mem": 5})
    assert not ResourceSlot({"cpu": 2, "mem": 1}) <= ResourceSlot({"cpu": 3})
    assert ResourceSlot({"cpu": 3}) >= ResourceSlot({"cpu": 2})
    assert not ResourceSlot({"cpu": 1}) <= ResourceSlot({"cpu": 3, "mem": -1})  # missing = 0 on both sides
    with pytest.raises(TypeError):
        ResourceSlot(cpu=1) < ResourceSlot(cpu=2)  # noqa: B015 - a partial order has no strict "<"


def test_within_limit_reads_a_missing_slot_as_unlimited():
    req = ResourceSlot({"cpu": 100, "mem": 10 * GIB})
    assert req.within_limit({"mem": Decimal(10 * GIB)})
    assert req.within_limit({"cpu": INFINITY, "mem": INFINITY})
    assert not req.within_limit({"cpu": Decimal(99)})
    assert req.exceeding({"cpu": Decimal(99), "mem": Decimal(20 * GIB)}) == {"cpu": 1}
    assert ResourceSlot().within_limit({"cpu": Decimal(0)})


def test_shortfall():
    req = ResourceSlot({"cpu": 4, "mem": 8, "cuda.shares": 1})
    assert req.shortfall({"cpu": Decimal(2), "mem": Decimal(8)}) == {"cpu": 2, "cuda.shares": 1}
    assert req.shortfall(req) == {}


def test_dominant_share():
    cap = ResourceSlot({"cpu": 100, "mem": 1000, "cuda.shares": 10})
    assert ResourceSlot({"cpu": 10, "mem": 500}).dominant_share(cap) == Decimal("0.5")
    assert ResourceSlot({"cuda.shares": 5, "cpu": 1}).dominant_share(cap) == Decimal("0.5")
    assert ResourceSlot().dominant_share(cap) == 0
    assert ResourceSlot({"tpu": 3}).dominant_share(cap) == 0  # no capacity for it: ignored
    assert ResourceSlot({"cpu": 1}).dominant_share({"cpu": INFINITY}) == 0


def test_equality_hash_nonzero():
    a = ResourceSlot({"cpu": "1.0"})
    assert a == ResourceSlot({"cpu": 1}) and hash(a) == hash(ResourceSlot({"cpu": 1}))
    assert a != ResourceSlot({"cpu": 1, "mem": 0})
    assert a == ResourceSlot({"cpu": 1, "mem": 0}).nonzero()
    assert ResourceSlot({"cpu": 0}).is_zero() and not a.is_zero()
    assert len({a, ResourceSlot(cpu=1)}) == 1
    assert a != "cpu"


@pytest.mark.parametrize("text,expected", [
    ("1g", GIB), ("1G", GIB), ("1GiB", GIB), ("1gb", GIB), ("512m", 512 * 1024**2), ("2k", 2048),
    ("1.5g", GIB + GIB // 2), ("1024", 1024), ("10b", 10), ("1t", 1024**4), (" 3 m ", 3 * 1024**2),
    ("0.3k", 307),  # whole bytes, rounded down
])
def test_binary_sizes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "g", "1x", "-1g", "1 gg", "1.2.3m"])
def test_bad_binary_sizes(text):
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_from_user():
    s = ResourceSlot.from_user({"cpu": "2", "mem": "4g", "cuda.shares": 0.5, "cuda.device": 1, "cuda.mem": "1g"})
    assert s == {"cpu": 2, "mem": 4 * GIB, "cuda.shares": Decimal("0.5"), "cuda.device": 1, "cuda.mem": GIB}
    assert ResourceSlot.from_user({"cpu": "Infinity", "mem": "inf"}, limit=True) == {"cpu": INFINITY, "mem": INFINITY}
    for bad in ({"cpu": "1g"}, {"cpu": -1}, {"mem": "-1g"}, {"cpu": None}, {"cpu": True}, {"cpu": "nan"},
                {"cpu": [1]}, {"CPU!": 1}):
        with pytest.raises(SlotParseError):
            ResourceSlot.from_user(bad)


@pytest.mark.parametrize("bad,says", [
    ({"cpu": "Infinity"}, "finite"), ({"cpu": float("inf")}, "finite"), ({"cpu": "inf"}, "finite"),
    ({"cpu": float("nan")}, "not a number"), ({"cpu": "NaN"}, "not a number"), ({"cpu": "sNaN"}, "not a number"),
    ({"cpu": -1}, "zero or more"), ({"cpu": "-Infinity"}, "zero or more"),
    ({"cpu": 1e308}, "at most 1024"), ({"cpu": 1025}, "at most 1024"), ({"cpu": "1e999999999"}, "at most"),
    ({"mem": 1e30}, "at most 1 PiB"), ({"mem": "2p"}, "at most 1 PiB"), ({"mem": "Infinity"}, "finite"),
    ({"cuda.mem": "1e"}, "at most 1 PiB"), ({"mem": "lots"}, "not a valid amount"), ({"cuda.device": 10**6 + 1}, "at most 1000000"),
    ({"cpu": 10**5000}, "at most"), ({"cpu": "1" * 100}, "too long"), ({"x" * 65: 1}, "not a resource slot name"),
])
def test_requests_are_finite_and_bounded(bad, says):
    with pytest.raises(SlotParseError, match=says):
        ResourceSlot.from_user(bad)


def test_bounds_and_places():
    assert ResourceSlot.from_user({"cpu": 1024, "mem": "1p", "cuda.shares": 10**6}) == {
        "cpu": 1024, "mem": 2**50, "cuda.shares": 10**6}
    # count amounts keep 6 decimal places (rounded down): a tiny exponent cannot blow up to_json
    assert ResourceSlot.from_user({"cpu": "1e-999999999"}).to_json() == {"cpu": "0"}
    assert ResourceSlot.from_user({"cpu": "0.12345678"})["cpu"] == Decimal("0.123456")
    # limits: Infinity allowed, finite amounts bounded by 2^63
    assert ResourceSlot.from_user({"cpu": "Infinity"}, limit=True)["cpu"] == INFINITY
    assert ResourceSlot.from_user({"cpu": 5000}, limit=True)["cpu"] == 5000
    with pytest.raises(SlotParseError, match="at most 2\\^63"):
        ResourceSlot.from_user({"cpu": 2**64}, limit=True)
    with pytest.raises(SlotParseError):
        ResourceSlot.from_user({"cpu": "NaN"}, limit=True)


def test_request_problem_reads_back_stored_rows():
    assert request_problem(ResourceSlot({"cpu": 1, "mem": 2**30})) is None
    assert "finite" in request_problem(ResourceSlot({"cpu": "Infinity"}))
    assert "finite" in request_problem(ResourceSlot({"cpu": -1}))
    assert "finite" in request_problem(ResourceSlot({"mem": "1e30"}))
    assert "decimal places" in request_problem(ResourceSlot({"cpu": "1e-999999999"}))


def test_parse_amount_names_the_slot():
    with pytest.raises(SlotParseError, match="cpu"):
        parse_amount("cpu", "lots")
    assert parse_amount("cpu", Decimal("1.25")) == Decimal("1.25")
    assert is_bytes_slot("mem") and is_bytes_slot("cuda.mem") and not is_bytes_slot("cpu")


def test_json_uses_plain_decimal_strings():
    s = ResourceSlot({"cpu": Decimal("1E+3"), "mem": 4 * GIB, "cuda.shares": Decimal("0.50"), "x.y": INFINITY})
    assert s.to_json() == {"cpu": "1000", "mem": str(4 * GIB), "cuda.shares": "0.5", "x.y": "Infinity"}
    assert ResourceSlot.from_json(s.to_json()) == s
    assert ResourceSlot.from_json(None) == ResourceSlot()


def test_describe_and_format():
    s = ResourceSlot({"cpu": 2, "mem": 4 * GIB, "cuda.shares": 0})
    assert s.describe() == "cpu 2, mem 4 GiB"
    assert s.describe(keep_zeros=True) == "cpu 2, cuda.shares 0, mem 4 GiB"
    assert ResourceSlot().describe() == "nothing"
    assert format_amount("mem", Decimal(1536 * 1024**2)) == "1.5 GiB"
    assert format_amount("mem", Decimal(100)) == "100 B"
    assert format_amount("cpu", INFINITY) == "∞"
    assert "ResourceSlot(" in repr(s)


amounts = st.one_of(
    st.decimals(min_value=-10**12, max_value=10**12, allow_nan=False, allow_infinity=False, places=3),
    st.integers(min_value=0, max_value=2**62).map(Decimal),
    st.just(INFINITY),
)
slot_maps = st.dictionaries(st.sampled_from(["cpu", "mem", "cuda.device", "cuda.shares", "rocm.device"]), amounts,
                            max_size=5).map(ResourceSlot)
finite_maps = st.dictionaries(
    st.sampled_from(["cpu", "mem", "cuda.shares"]),
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False, places=2),
    max_size=3).map(ResourceSlot)


@settings(max_examples=200)
@given(slot_maps)
def test_json_round_trip(s):
    assert ResourceSlot.from_json(s.to_json()) == s
    assert all(isinstance(v, str) for v in s.to_json().values())


@settings(max_examples=100)
@given(finite_maps, finite_maps)
def test_algebra(a, b):
    assert ((a + b) - b).nonzero() == a.nonzero()
    assert a + b == b + a
    assert a.fits_in(a + b)
    assert a <= a.maximum(b) and b <= a.maximum(b)
    assert a.minimum(b) <= a and a.minimum(b) <= b
    assert a.within_limit(a + b)
    assert (a * 2) == a + a

"""Resource slots: an immutable mapping of slot name → ``Decimal`` amount.

Slot names are ``cpu`` (cores), ``mem`` (bytes), ``cuda.device`` (whole GPUs), ``cuda.shares``
(fractional GPUs), and any other ``vendor.kind`` an accelerator plugin reports.  Amounts are
always ``Decimal`` — never floats — and may be ``Decimal("Infinity")`` (an unlimited limit).

Two readings of a missing slot, one per role, chosen explicitly by the method you call:

- a **request, an occupancy, a capacity**: a missing slot is zero.  ``a.fits_in(capacity)`` and
  ``a <= b`` compare slot by slot with that reading (a request for ``cuda.shares`` does not fit an
  agent that has no ``cuda.shares`` slot);
- a **limit** (policy ``total_resource_slots``): a missing slot is unlimited, and so is
  ``"Infinity"``.  ``a.within_limit(limit)`` uses that reading.

Arithmetic (``+``, ``-``, ``*`` by an integer or Decimal, ``maximum``, ``minimum``) returns a new
``ResourceSlot`` over the union of both operands' slots and never mutates an operand; ``-`` may
go negative (callers that must not over-allocate check ``fits_in`` first).  Equality is mapping
equality (``{cpu: 1}`` ≠ ``{cpu: 1, mem: 0}``; use ``nonzero()`` to compare ignoring zeros).

Parsing user input (``ResourceSlot.from_user``): plain decimals for count slots; binary sizes
(``"512m"``, ``"1g"``, ``"1.5GiB"``, ``"1024"``) for byte slots (``mem`` and ``*.mem``), rounded
down to whole bytes; count amounts kept to ``MAX_PLACES`` decimal places (rounded down);
negatives and NaN rejected.  Two readings again, chosen by the caller:

- a **request** (the default: a session's resources, a preset, an image's minimum): finite and at
  most ``request_bound(slot)`` — ``cpu`` ≤ 1024 cores, byte slots ≤ 1 PiB, any other slot ≤ 10⁶
  units.  ``"Infinity"`` is refused;
- a **limit** (``limit=True``: policy, project, domain totals): ``"Infinity"`` (or ``"inf"``)
  means unlimited; a finite amount is at most ``MAX_LIMIT`` (2⁶³).

JSON (``to_json``/``from_json``) stores decimal strings (``"Infinity"`` for unlimited) and
round-trips exactly.  ``request_problem(slots)`` says what is wrong with an amount read back from
storage (the scheduler refuses such a row instead of failing its whole tick).
"""

from __future__ import annotations

import re
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from workbay.common.domain import parse_bytes

__all__ = [
    "INFINITY",
    "MAX_BYTES",
    "MAX_COUNT",
    "MAX_CPU",
    "MAX_LIMIT",
    "MAX_PLACES",
    "ZERO",
    "ResourceSlot",
    "SlotParseError",
    "format_amount",
    "is_bytes_slot",
    "parse_amount",
    "plain_decimal",
    "request_bound",
    "request_problem",
]

ZERO = Decimal(0)
INFINITY = Decimal("Infinity")

SLOT_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*\Z")
_INFINITY_WORDS = {"infinity", "inf", "+infinity", "+inf"}

# Bounds of user-given amounts (docs/api.md "Bounds"): far above any real machine, low enough
# that arithmetic, formatting and JSON stay cheap and exact.
MAX_CPU = Decimal(1024)            # cores of one request
MAX_BYTES = Decimal(2**50)         # 1 PiB: mem and every <vendor>.mem of one request
MAX_COUNT = Decimal(10**6)         # any other slot of one request (devices, shares, …)
MAX_LIMIT = Decimal(2**63)         # a finite limit (policy / project / domain totals)
MAX_PLACES = 6                     # decimal places kept for count slots
_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)


class SlotParseError(ValueError):
    """A slot name or amount that cannot be read; the message names the slot."""


def is_bytes_slot(name: str) -> bool:
    """Slots measured in bytes (accept binary size suffixes): ``mem`` and ``<vendor>.mem``."""
    return name == "mem" or name.endswith(".mem")


def request_bound(slot: str) -> Decimal:
    """The largest amount of ``slot`` one request may ask for."""
    if slot == "cpu":
        return MAX_CPU
    return MAX_BYTES if is_bytes_slot(slot) else MAX_COUNT


def _limit_text(slot: str, bound: Decimal) -> str:
    return format_amount(slot, bound) if bound != MAX_LIMIT else "2^63"


def parse_amount(slot: str, value: Any, *, limit: bool = False) -> Decimal:
    """One user-given amount for ``slot``: int, Decimal, float (via its shortest repr) or string
    (decimal, binary size for byte slots).  Never negative, never NaN; ``"Infinity"`` only when
    ``limit``; at most ``request_bound(slot)`` (a request) or ``MAX_LIMIT`` (a limit)."""
    if isinstance(value, bool) or value is None:
        raise SlotParseError(f"{slot}: not a number")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise SlotParseError(f"{slot}: {text[:20]!r}…: not a valid amount (too long)")
        if text.lower() in _INFINITY_WORDS or text.lower() in ("-inf", "-infinity"):
            amount = INFINITY if not text.startswith("-") else -INFINITY
        else:
            try:
                if is_bytes_slot(slot):
                    amount = parse_bytes(text)
                else:
                    amount = Decimal(text)
            except (InvalidOperation, ValueError, ArithmeticError) as e:
                raise SlotParseError(f"{slot}: {value!r} is not a valid amount") from e
    elif isinstance(value, (int, Decimal)):
        try:
            amount = Decimal(value)
        except (ValueError, ArithmeticError) as e:  # an int too long to convert
            raise SlotParseError(f"{slot}: not a valid amount") from e
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        raise SlotParseError(f"{slot}: not a number")
    return _checked(slot, amount, limit)


def _checked(slot: str, amount: Decimal, limit: bool) -> Decimal:
    if amount.is_nan():
        raise SlotParseError(f"{slot}: not a number")
    if amount < 0:
        raise SlotParseError(f"{slot}: must be zero or more")
    if amount.is_infinite():
        if limit:
            return INFINITY
        raise SlotParseError(f"{slot}: must be a finite amount (at most {format_amount(slot, request_bound(slot))})")
    bound = MAX_LIMIT if limit else request_bound(slot)
    if amount > bound:
        raise SlotParseError(f"{slot}: {'a limit' if limit else 'a request'} is at most "
                             f"{_limit_text(slot, bound)}")
    if is_bytes_slot(slot):
        return amount.quantize(Decimal(1), rounding=ROUND_DOWN)
    if amount.as_tuple().exponent < -MAX_PLACES:  # type: ignore[operator]
        amount = amount.quantize(_QUANTUM, rounding=ROUND_DOWN)
    return amount


def request_problem(slots: Mapping[str, Decimal]) -> str | None:
    """What is wrong with ``slots`` as a request read back from storage (None when nothing):
    a NaN, negative, infinite or out-of-bounds amount, or more than ``MAX_PLACES`` places."""
    for k, v in slots.items():
        if not isinstance(v, Decimal) or v.is_nan():
            return f"requested {k} is not a number"
        if v.is_infinite() or v < 0 or v > request_bound(k):
            return (f"requested {k} must be a finite amount between 0 and "
                    f"{format_amount(k, request_bound(k))}")
        if v.as_tuple().exponent < -MAX_PLACES:  # type: ignore[operator]
            return f"requested {k} has more than {MAX_PLACES} decimal places"
    return None


def _coerce(slot: Any, value: Any) -> Decimal:
    if not isinstance(slot, str) or not SLOT_NAME_RE.match(slot) or len(slot) > 64:
        raise SlotParseError(f"{slot!r}: not a resource slot name")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            amount = INFINITY if text.lower() in _INFINITY_WORDS else Decimal(text)
        except InvalidOperation as e:
            raise SlotParseError(f"{slot}: {value!r} is not a decimal number") from e
    else:
        raise TypeError(f"{slot}: resource amounts are Decimal, int or decimal strings, not {type(value).__name__}")
    if amount.is_nan():
        raise SlotParseError(f"{slot}: not a number")
    return amount


def format_amount(slot: str, amount: Decimal) -> str:
    """Human form for messages: ``mem 4 GiB``-style sizes for byte slots, plain decimals else."""
    if amount.is_infinite():
        return "∞" if amount > 0 else "-∞"
    if is_bytes_slot(slot):
        value, unit = abs(amount), 0
        units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
        while value >= 1024 and unit < len(units) - 1:
            value /= 1024
            unit += 1
        text = plain_decimal(value.quantize(Decimal("0.01")) if unit else value)
        return f"{'-' if amount < 0 else ''}{text} {units[unit]}"
    return plain_decimal(amount)


def plain_decimal(amount: Decimal) -> str:
    """``2``, ``0.5``, ``1073741824``, ``Infinity``: plain notation, no exponent, no trailing zeros."""
    if amount.is_infinite():
        return "Infinity" if amount > 0 else "-Infinity"
    if amount == amount.to_integral_value():
        return format(amount.quantize(Decimal(1)), "f")
    return format(amount.normalize(), "f")


class ResourceSlot(Mapping[str, Decimal]):
    """Immutable ``{slot: Decimal}``.  See the module docstring for the two readings of a missing slot."""

    __slots__ = ("_d", "_hash")

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None, /, **kwargs: Any) -> None:
        d: dict[str, Decimal] = {}
        if data is not None:
            items = data.items() if isinstance(data, Mapping) else data
            for k, v in items:
                d[k] = _coerce(k, v)
        for k, v in kwargs.items():
            d[k] = _coerce(k, v)
        self._d = d
        self._hash: int | None = None

    @classmethod
    def _raw(cls, d: dict[str, Decimal]) -> ResourceSlot:
        obj = cls.__new__(cls)
        obj._d = d
        obj._hash = None
        return obj

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def of_decimals(cls, data: Mapping[str, Decimal]) -> ResourceSlot:
        """Fast path for amounts that are already ``Decimal`` under valid slot names (results of
        arithmetic on ResourceSlots): copies, does not validate."""
        return cls._raw(dict(data))

    @classmethod
    def from_user(cls, data: Mapping[str, Any], *, limit: bool = False) -> ResourceSlot:
        """User/admin input with units (``{"cpu": 2, "mem": "4g", "cuda.shares": "0.5"}``): a
        request (finite, bounded) unless ``limit`` (``"Infinity"`` allowed).  See the module
        docstring for the bounds."""
        out: dict[str, Decimal] = {}
        for k, v in data.items():
            if not isinstance(k, str) or len(k) > 64 or not SLOT_NAME_RE.match(k):
                shown = k[:64] + "…" if isinstance(k, str) and len(k) > 64 else k
                raise SlotParseError(f"{shown!r}: not a resource slot name")
            out[k] = parse_amount(k, v, limit=limit)
        return cls._raw(out)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ResourceSlot:
        """Inverse of ``to_json`` (decimal strings, ``"Infinity"``); also accepts ints."""
        return cls(data or {})

    def to_json(self) -> dict[str, str]:
        """``{slot: decimal string}`` in plain notation (``"1073741824"``, ``"0.5"``, ``"Infinity"``)."""
        return {k: plain_decimal(v) for k, v in self._d.items()}

    # -- Mapping --------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Decimal:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: object) -> bool:
        return key in self._d

    # fast paths (the Mapping mixins go through __iter__/__getitem__)
    def get(self, key: str, default: Any = None) -> Any:
        return self._d.get(key, default)

    def items(self) -> ItemsView[str, Decimal]:
        return self._d.items()

    def keys(self) -> KeysView[str]:
        return self._d.keys()

    def values(self) -> ValuesView[Decimal]:
        return self._d.values()

    def amount(self, slot: str) -> Decimal:
        """The amount of ``slot``, zero when missing (the request/capacity reading)."""
        return self._d.get(slot, ZERO)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResourceSlot):
            return self._d == other._d
        if isinstance(other, Mapping):
            try:
                return self._d == {k: _coerce(k, v) for k, v in other.items()}
            except (TypeError, ValueError):
                return False
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._d.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"ResourceSlot({self.to_json()!r})"

    def __str__(self) -> str:
        return self.describe()

    def describe(self, keep_zeros: bool = False) -> str:
        """``cpu 2, cuda.shares 0.5, mem 4 GiB`` (zeros left out unless ``keep_zeros``; ``nothing``
        when empty)."""
        parts = [f"{k} {format_amount(k, v)}" for k, v in sorted(self._d.items()) if keep_zeros or v != 0]
        return ", ".join(parts) if parts else "nothing"

    # -- arithmetic (never mutates) -------------------------------------------------------------
    @staticmethod
    def _other(other: Any) -> ResourceSlot:
        if isinstance(other, ResourceSlot):
            return other
        if isinstance(other, Mapping):
            return ResourceSlot(other)
        raise TypeError(f"cannot combine ResourceSlot with {type(other).__name__}")

    def __add__(self, other: Mapping[str, Any]) -> ResourceSlot:
        o = self._other(other)._d
        d = dict(self._d)
        for k, v in o.items():
            d[k] = d.get(k, ZERO) + v
        return ResourceSlot._raw(d)

    def __radd__(self, other: Any) -> ResourceSlot:
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self  # sum(slots) starts from 0
        return self.__add__(other)

    def __sub__(self, other: Mapping[str, Any]) -> ResourceSlot:
        o = self._other(other)._d
        d = dict(self._d)
        for k, v in o.items():
            d[k] = d.get(k, ZERO) - v
        return ResourceSlot._raw(d)

    def __mul__(self, factor: int | Decimal) -> ResourceSlot:
        if isinstance(factor, bool) or not isinstance(factor, (int, Decimal)):
            return NotImplemented
        f = Decimal(factor)
        return ResourceSlot._raw({k: v * f for k, v in self._d.items()})

    __rmul__ = __mul__

    def maximum(self, other: Mapping[str, Any]) -> ResourceSlot:
        """Slot-wise max over the union of slots (missing = 0).  Used to raise a request to an
        image's minimum resources without ever lowering it."""
        o = self._other(other)._d
        d = dict(self._d)
        for k, v in o.items():
            mine = d.get(k)
            d[k] = v if mine is None or v > mine else mine
        return ResourceSlot._raw(d)

    def minimum(self, other: Mapping[str, Any]) -> ResourceSlot:
        """Slot-wise min over the union of slots (missing = 0)."""
        o = self._other(other)._d
        d = {}
        for k in self._d.keys() | o.keys():
            a, b = self._d.get(k, ZERO), o.get(k, ZERO)
            d[k] = a if a < b else b
        return ResourceSlot._raw(d)

    def nonzero(self) -> ResourceSlot:
        """The same amounts without the zero slots."""
        return ResourceSlot._raw({k: v for k, v in self._d.items() if v != 0})

    def is_zero(self) -> bool:
        return all(v == 0 for v in self._d.values())

    # -- comparisons ----------------------------------------------------------------------------
    def fits_in(self, capacity: Mapping[str, Decimal]) -> bool:
        """Every slot ≤ the same slot of ``capacity``, a missing slot being zero on both sides."""
        get = capacity.get
        for k, v in self._d.items():
            if v > get(k, ZERO):
                return False
        return True

    def __le__(self, other: Mapping[str, Any]) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        o = self._other(other)
        return all(self.amount(k) <= o.amount(k) for k in self._d.keys() | o._d.keys())

    def __ge__(self, other: Mapping[str, Any]) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._other(other) <= self

    def shortfall(self, capacity: Mapping[str, Decimal]) -> ResourceSlot:
        """How much of each slot is missing from ``capacity`` to hold ``self`` (only slots that
        lack; empty when it fits)."""
        return ResourceSlot._raw({k: v - capacity.get(k, ZERO) for k, v in self._d.items()
                                  if v > capacity.get(k, ZERO)})

    def within_limit(self, limit: Mapping[str, Decimal]) -> bool:
        """Every slot ≤ the limit's slot; a slot missing from ``limit`` (or ``Infinity``) is unlimited."""
        for k, v in self._d.items():
            lim = limit.get(k)
            if lim is not None and v > lim:
                return False
        return True

    def exceeding(self, limit: Mapping[str, Decimal]) -> ResourceSlot:
        """The slots over ``limit`` (limit reading: missing = unlimited), by how much."""
        out = {}
        for k, v in self._d.items():
            lim = limit.get(k)
            if lim is not None and v > lim:
                out[k] = v - lim
        return ResourceSlot._raw(out)

    def dominant_share(self, capacity: Mapping[str, Decimal]) -> Decimal:
        """max over slots of ``self[slot] / capacity[slot]`` (DRF), ignoring slots whose capacity
        is zero, missing or infinite; zero when no slot counts."""
        best = ZERO
        for k, v in self._d.items():
            cap = capacity.get(k)
            if cap is None or cap <= 0 or cap.is_infinite():
                continue
            share = v / cap
            if share > best:
                best = share
        return best

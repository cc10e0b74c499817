"""Which outside services a test needs, found from its code: the markers `engine`, `postgres`,
`redis` and `browser` that tests/conftest.py puts on every collected test.

A test needs what its own function, the fixtures it uses (their whole closure) and the functions
and classes of the test tree those reach need.  Leaves:
- engine: `tests.support.sessions.engine_problem` (every real-container helper asks it first),
  the `podman` command run by `subprocess`, `start_in_thread(..., components=(..., "agent"))`;
- postgres: `asyncpg`, `throwaway_db("postgresql", ...)`;
- redis: `REDIS_URL`, the `redis` package;
- browser: a module under tests/e2e.
A parameter decides instead of the code where the test is parametrized along an axis that names
the service (`manager[postgresql]`, `system[redis]`): its other values do without it.
"""

from __future__ import annotations

import dis
import inspect
import os
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
SERVICES = ("engine", "postgres", "redis")
# How a parameter value names a service (postgres and redis only: no test is parametrized over
# the container engine).
PARAM_WORDS = {"postgres": "postgresql", "redis": "redis"}


def _leaf(obj: Any) -> set[str] | None:
    """The services of a known helper (without looking inside it), or None when it is not one."""
    from tests.support import databases, sessions

    if obj is sessions.engine_problem:
        return {"engine"}
    if obj is sessions.System:
        # Started with agent=False it needs no engine; running_system (engine_problem) does.
        return set()
    if obj is inspect.unwrap(databases.throwaway_db):
        return set()  # the caller's "postgresql" constant says which database (see _code)
    return None


def _constants(code: types.CodeType) -> Iterable[Any]:
    for c in code.co_consts:
        if isinstance(c, tuple):
            yield from c
        elif not isinstance(c, types.CodeType):
            yield c


def _code_objects(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_objects(c)


class Scanner:
    """Memoized: the services a function or class of the test tree needs."""

    def __init__(self) -> None:
        self.memo: dict[int, set[str]] = {}

    def of(self, obj: Any) -> set[str]:
        obj = inspect.unwrap(getattr(obj, "__func__", obj))
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = set()  # cycles: a function reaching itself adds nothing
        leaf = _leaf(obj)
        if leaf is not None:
            found = leaf
        elif inspect.isclass(obj) and _in_tests(obj):
            found = set()
            for member in vars(obj).values():
                member = getattr(member, "__func__", member)
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    found |= self.of(member)
        elif inspect.isfunction(obj) and _in_tests(obj):
            found = set()
            for code in _code_objects(obj.__code__):
                found |= self._code(code, obj.__globals__)
        else:
            found = set()
        self.memo[key] = found
        return found

    def _code(self, code: types.CodeType, globs: dict[str, Any]) -> set[str]:
        from tests.support import databases

        strings = [c for c in _constants(code) if isinstance(c, str)]
        ops = [(i.opname, i.argval) for i in dis.get_instructions(code)]
        loaded = {v for op, v in ops if op in ("LOAD_GLOBAL", "LOAD_NAME")}
        attrs = {v for op, v in ops if op in ("LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM")}
        found: set[str] = set()
        # The podman command run as a process (not the word in a config or an assertion).
        if "subprocess" in loaded and any(s == "podman" or s.endswith("podman_service.sh") and " " not in s
                                          for s in strings):
            found.add("engine")
        if "start_in_thread" in loaded | attrs and "agent" in strings:
            found.add("engine")
        if "REDIS_URL" in loaded:
            found.add("redis")
        # What the code reaches: globals it reads, and attributes of the modules it reads or
        # imports (`import m` / `from m import x`, also inside the function).
        modules = [sys.modules[v] for op, v in ops if op == "IMPORT_NAME" and v in sys.modules]
        reached: list[Any] = []
        for name in loaded:
            if name in globs:
                (modules if isinstance(globs[name], types.ModuleType) else reached).append(globs[name])
        for mod in modules:
            top = mod.__name__.split(".")[0]
            if top == "asyncpg":
                found.add("postgres")
            elif top == "redis":
                found.add("redis")
            reached += [getattr(mod, a) for a in attrs if hasattr(mod, a)]
        for obj in reached:
            if isinstance(obj, types.ModuleType):
                continue
            if obj is databases.throwaway_db and "postgresql" in strings:
                found.add("postgres")
            found |= self.of(obj)
        return found


def _in_tests(obj: Any) -> bool:
    mod = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = getattr(mod, "__file__", None)
    return path is not None and TESTS in Path(path).resolve().parents


def _axes(items: list[pytest.Item]) -> dict[tuple[str, str], set[str]]:
    """(test's node id without its parameters, parameter name) -> every value the run has."""
    axes: dict[tuple[str, str], set[str]] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        base = item.nodeid.split("[", 1)[0]
        for name, value in callspec.params.items():
            if isinstance(value, str):  # a service is named by a string parameter
                axes.setdefault((base, name), set()).add(value)
    return axes


def _names(value: Any, word: str) -> bool:
    """A parameter value names the service: `postgresql`, `redis+postgresql`, not a sentence
    that merely mentions it."""
    return isinstance(value, str) and word in value.split("+")


def services_of(item: pytest.Item, scanner: Scanner,
                axes: dict[tuple[str, str], set[str]]) -> set[str]:
    found: set[str] = set()
    fn = getattr(item, "obj", None)
    if fn is not None:
        found |= scanner.of(fn)
    info = getattr(item, "_fixtureinfo", None)
    if info is not None:
        for name in item.fixturenames:
            for fixturedef in info.name2fixturedefs.get(name, ()):
                found |= scanner.of(fixturedef.func)
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        base = item.nodeid.split("[", 1)[0]
        for service, word in PARAM_WORDS.items():
            deciding = [name for name in callspec.params
                        if any(_names(v, word) for v in axes.get((base, name), ()))]
            if deciding:  # the parameter says, not the code (which serves every value)
                found.discard(service)
                if any(_names(callspec.params[name], word) for name in deciding):
                    found.add(service)
    return found


def mark_services(items: list[pytest.Item]) -> None:
    scanner = Scanner()
    axes = _axes(items)
    e2e = TESTS / "e2e"
    for item in items:
        for service in sorted(services_of(item, scanner, axes)):
            item.add_marker(service)
        if e2e in Path(str(item.path)).resolve().parents:
            item.add_marker("browser")


def refuse_engine_test_in_parallel(item: pytest.Item) -> None:
    """Container tests must not run in two xdist workers at once: the agents `workbay up` and
    `start_in_thread` start share this host's name as their id and the default host-port range,
    so two of them collide ("bind: address already in use").  Grouping them on one worker
    (`--dist loadgroup` with an `xdist_group`) does not work with pytest 9.2 and xdist 3.8
    (pytest-xdist issue #1386: the group no longer reaches the scheduler)."""
    if "PYTEST_XDIST_WORKER" in os.environ and item.get_closest_marker("engine"):
        pytest.fail("this test runs containers (marker `engine`) and cannot run under "
                    "pytest-xdist: run it without -n, or add -m 'not engine' to -n", pytrace=False)

"""The runner's execution engine, run on the host with a real interpreter process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import workbay.runner
from workbay.runner.execute import PREFIX, SUFFIX, Busy, Executor, SyncSplitter
from workbay.runner.prepare import ContainerUser

REPL = str(Path(workbay.runner.__file__).parent / "repl.py")


def marker(token: str) -> bytes:
    return PREFIX + token.encode() + SUFFIX


def feed_all(chunks: list[bytes]) -> list[tuple[str, object]]:
    s = SyncSplitter()
    out: list[tuple[str, object]] = []
    for c in chunks:
        out += s.feed(c)
    out += s.flush()
    merged: list[tuple[str, object]] = []
    for kind, value in out:
        if kind == "data" and merged and merged[-1][0] == "data":
            merged[-1] = ("data", merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return merged


def test_splitter_finds_markers_across_chunks():
    stream = b"hello " + marker("done1") + b"world" + marker("input2")
    for cut in range(len(stream) + 1):
        assert feed_all([stream[:cut], stream[cut:]]) == [
            ("data", b"hello "), ("sync", "done1"), ("data", b"world"), ("sync", "input2")]


@given(st.lists(st.binary(max_size=20), max_size=8), st.integers(1, 7))
def test_splitter_passes_plain_data_through(parts, step):
    data = b"".join(parts).replace(b"\x00\x1e", b"")
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    got = feed_all(chunks)
    assert got == ([("data", data)] if data else [])


@pytest.fixture
async def executor(tmp_path):
    user = ContainerUser("me", os.getuid(), os.getgid(), str(tmp_path), [])
    ex = Executor(user, REPL, python=sys.executable, log=lambda m: None)
    yield ex
    await ex.shutdown()


async def finish(ex: Executor, result: dict) -> tuple[dict, list]:
    console = list(result["console"])
    while result["status"] == "continued":
        result = await ex.execute("continue", result["runId"], "", {}, 1.0)
        console += result["console"]
    return result, console


async def test_query_mode(executor, tmp_path):
    r = await executor.execute("query", "", "print(6*7)", {}, 5)
    assert r["status"] == "finished" and r["exitCode"] == 0
    assert r["console"] == [["stdout", "42\n"]] and r["runId"]
    r = await executor.execute("query", "r2", "import os\nprint(os.getcwd())\nz = 3", {}, 5)
    assert r["runId"] == "r2" and r["console"] == [["stdout", f"{tmp_path}\n"]]
    r = await executor.execute("query", "", "print(z * 2)", {}, 5)
    assert r["console"] == [["stdout", "6\n"]]
    r = await executor.execute("query", "", "import sys\nsys.exit(4)", {}, 5)
    assert r["exitCode"] == 4
    r = await executor.execute("query", "", "raise ValueError('bad')", {}, 5)
    assert r["exitCode"] == 1
    err = "".join(d for t, d in r["console"] if t == "stderr")
    assert "ValueError: bad" in err and "repl.py" not in err
    # Output of child processes is captured too, in order.
    r = await executor.execute("query", "", "import os\nprint('a', flush=True)\n"
                               "os.system('echo from-shell')\nprint('b')", {}, 5)
    assert "".join(d for _, d in r["console"]) == "a\nfrom-shell\nb\n"
    assert executor.queries == 6


async def test_input_and_password(executor):
    r = await executor.execute("query", "", "a = input('A? ')\nimport getpass\n"
                               "b = getpass.getpass('B? ')\nprint(a, b)", {}, 5)
    assert r["status"] == "waiting-input" and r["options"] == {"is_password": False}
    assert r["console"] == [["stdout", "A? "]]
    with pytest.raises(Busy):
        await executor.execute("query", "", "print(1)", {}, 5)
    r = await executor.execute("input", r["runId"], "x", {}, 5)
    assert r["status"] == "waiting-input" and r["options"] == {"is_password": True}
    r = await executor.execute("input", r["runId"], "y", {}, 5)
    assert r["status"] == "finished" and r["console"] == [["stdout", "x y\n"]]


async def test_continue_and_interrupt(executor):
    r = await executor.execute("query", "", "import time\nfor i in range(3):\n"
                               "    print(i, flush=True); time.sleep(0.3)", {}, 0.1)
    assert r["status"] == "continued"
    r, console = await finish(executor, r)
    assert r["status"] == "finished" and "".join(d for _, d in console) == "0\n1\n2\n"
    r = await executor.execute("query", "", "import time\ntime.sleep(60)", {}, 0.2)
    assert r["status"] == "continued"
    assert await executor.interrupt() is True
    r, console = await finish(executor, r)
    assert r["exitCode"] == 1 and "KeyboardInterrupt" in "".join(d for _, d in console)
    # The interpreter survived the interrupt.
    r = await executor.execute("query", "", "print('alive')", {}, 5)
    assert r["console"] == [["stdout", "alive\n"]]


async def test_interpreter_crash_restarts(executor):
    r = await executor.execute("query", "", "q = 1\nimport os\nos._exit(9)", {}, 5)
    assert r["status"] == "finished" and r["exitCode"] == 9
    assert "exited with code 9" in r["console"][-1][1]
    r = await executor.execute("query", "", "print('q' in globals())", {}, 5)
    assert r["console"] == [["stdout", "False\n"]]


async def test_batch_mode(executor):
    r = await executor.execute("batch", "", "", {"clean": "echo c", "build": "echo b",
                                                 "exec": "echo e; echo oops >&2; exit 5"}, 5)
    assert r["status"] == "clean-finished" and r["console"] == [["stdout", "c\n"]]
    r = await executor.execute("continue", r["runId"], "", {}, 5)
    assert r["status"] == "build-finished" and r["console"] == [["stdout", "b\n"]]
    r = await executor.execute("continue", r["runId"], "", {}, 5)
    assert r["status"] == "finished" and r["exitCode"] == 5
    assert r["console"] == [["stdout", "e\n"], ["stderr", "oops\n"]]
    r = await executor.execute("batch", "", "", {"build": "exit 2", "exec": "echo never"}, 5)
    assert r["status"] == "finished" and r["exitCode"] == 2
    r = await executor.execute("batch", "", "echo from-code", {}, 5)
    assert r["console"] == [["stdout", "from-code\n"]] and r["exitCode"] == 0


async def test_complete_and_unknown(executor):
    await executor.execute("query", "", "import os", {}, 5)
    r = await executor.execute("complete", "", "os.pa", {}, 5)
    assert "os.path" in r["completions"]
    r = await executor.execute("continue", "nothing", "", {}, 1)
    assert r["status"] == "finished" and r["console"] == []
    with pytest.raises(ValueError):
        await executor.execute("weird", "", "", {}, 1)

"""Execution (Backend.AI's execute API): query mode in a persistent Python interpreter, batch mode
as shell commands; results are collected in ``continued`` chunks until ``finished``."""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import signal
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from .prepare import ContainerUser, shell_path

PREFIX = b"\x00\x1eWB-SYNC:"
SUFFIX = b"\x1e\x00"
_MAX_TOKEN = 64


class Busy(Exception):
    """Another run is in progress."""


class SyncSplitter:
    """Splits a byte stream into data and sync markers written by repl.py (pure)."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, chunk: bytes) -> List[Tuple[str, Any]]:
        self.buf += chunk
        out: List[Tuple[str, Any]] = []
        while self.buf:
            i = self.buf.find(PREFIX)
            if i < 0:
                keep = _partial_prefix_len(self.buf)
                cut = len(self.buf) - keep
                if cut:
                    out.append(("data", self.buf[:cut]))
                self.buf = self.buf[cut:]
                break
            j = self.buf.find(SUFFIX, i + len(PREFIX))
            if j < 0:
                if len(self.buf) - i > len(PREFIX) + _MAX_TOKEN + len(SUFFIX):
                    # Not a marker after all: pass the prefix through as data.
                    out.append(("data", self.buf[: i + len(PREFIX)]))
                    self.buf = self.buf[i + len(PREFIX):]
                    continue
                if i:
                    out.append(("data", self.buf[:i]))
                self.buf = self.buf[i:]
                break
            if i:
                out.append(("data", self.buf[:i]))
            out.append(("sync", self.buf[i + len(PREFIX): j].decode("ascii", "replace")))
            self.buf = self.buf[j + len(SUFFIX):]
        return out

    def flush(self) -> List[Tuple[str, Any]]:
        rest, self.buf = self.buf, b""
        return [("data", rest)] if rest else []


def _partial_prefix_len(buf: bytes) -> int:
    for n in range(min(len(PREFIX) - 1, len(buf)), 0, -1):
        if buf.endswith(PREFIX[:n]):
            return n
    return 0


class Run:
    def __init__(self, run_id: str, kind: str) -> None:
        self.id = run_id
        self.kind = kind
        self.console: List[List[str]] = []
        self.statuses: List[Tuple[str, Dict[str, Any]]] = []
        self.finished = False
        self.exit_code: Optional[int] = None
        self.waiting_input = False
        self.changed = asyncio.Event()
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.task: Optional[asyncio.Task] = None
        self.started = time.monotonic()

    def out(self, kind: str, text: str) -> None:
        if not text:
            return
        if self.console and self.console[-1][0] == kind:
            self.console[-1][1] += text
        else:
            self.console.append([kind, text])

    def boundary(self, status: str, **options: Any) -> None:
        self.statuses.append((status, options))
        self.changed.set()

    def finish(self, exit_code: Optional[int]) -> None:
        if not self.finished:
            self.finished = True
            self.exit_code = exit_code
            self.changed.set()

    def result(self, status: str, options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        console, self.console = self.console, []
        return {"status": status, "runId": self.id,
                "exitCode": self.exit_code if status == "finished" else None,
                "options": options or {}, "files": [], "console": console}

    async def collect(self, timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.statuses:
                status, options = self.statuses.pop(0)
                return self.result(status, options)
            if self.finished:
                return self.result("finished")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.result("continued")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


class Repl:
    """The interpreter process (repl.py) and the plumbing of its pipes."""

    def __init__(self, user: ContainerUser, python: str, script: str, log) -> None:
        self.user, self.python, self.script, self.log = user, python, script, log
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.run: Optional[Run] = None
        self.seen: Dict[str, set] = {"stdout": set(), "stderr": set()}
        self.pending: Dict[str, Dict[str, Any]] = {}
        self.completion: Optional[asyncio.Future] = None
        self.tasks: List[asyncio.Task] = []
        self.alive = False

    async def start(self) -> None:
        r, w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.python, "-u", self.script, str(w), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, pass_fds=(w,),
                env=self.user.env(), start_new_session=True, **self.user.popen_kwargs())
        finally:
            os.close(w)
        loop = asyncio.get_running_loop()
        ctl = asyncio.StreamReader(limit=2**26)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(ctl),
                                     os.fdopen(r, "rb", buffering=0))
        self.alive = True
        self.tasks = [asyncio.ensure_future(self._read_stream("stdout", self.proc.stdout)),
                      asyncio.ensure_future(self._read_stream("stderr", self.proc.stderr)),
                      asyncio.ensure_future(self._read_ctl(ctl))]
        asyncio.ensure_future(self._reap())

    async def _read_stream(self, name: str, stream: asyncio.StreamReader) -> None:
        splitter = SyncSplitter()
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            chunk = await stream.read(65536)
            items = splitter.feed(chunk) if chunk else splitter.flush()
            for kind, value in items:
                if kind == "data":
                    text = decoder.decode(value)
                    if self.run is not None:
                        self.run.out(name, text)
                    else:
                        self.log(f"[python {name}] {text.rstrip()}")
                else:
                    self.seen[name].add(value)
                    self._apply(value)
            if not chunk:
                return

    async def _read_ctl(self, ctl: asyncio.StreamReader) -> None:
        while True:
            line = await ctl.readline()
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            op = msg.get("op")
            if op in ("done", "input"):
                self.pending[msg["token"]] = msg
                self._apply(msg["token"])
            elif op == "completions" and self.completion and not self.completion.done():
                self.completion.set_result(msg.get("items", []))

    def _apply(self, token: str) -> None:
        msg = self.pending.get(token)
        if msg is None or not all(token in s for s in self.seen.values()):
            return
        del self.pending[token]
        for s in self.seen.values():
            s.discard(token)
        run = self.run
        if run is None:
            return
        if msg["op"] == "done":
            run.finish(int(msg.get("exit_code") or 0))
        elif msg["op"] == "input":
            run.waiting_input = True
            run.boundary("waiting-input", is_password=bool(msg.get("password")))

    async def _reap(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.alive = False
        run = self.run
        if run is not None and not run.finished:
            run.out("stderr", f"\n[the Python interpreter exited with code {code}; "
                              "a new one starts with the next query]\n")
            run.finish(code if code >= 0 else 128 - code)

    def send(self, msg: Dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())

    def interrupt(self) -> None:
        if self.proc is not None and self.alive:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    async def complete(self, text: str) -> List[str]:
        self.completion = asyncio.get_running_loop().create_future()
        self.send({"op": "complete", "text": text})
        try:
            return await asyncio.wait_for(self.completion, 5)
        except asyncio.TimeoutError:
            return []

    async def stop(self) -> None:
        if self.proc is not None and self.alive:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Executor:
    """One kernel's runs; at most one at a time."""

    def __init__(self, user: ContainerUser, repl_script: str, python: str = "python3", log=print) -> None:
        self.user, self.repl_script, self.python, self.log = user, repl_script, python, log
        self.current: Optional[Run] = None
        self.repl: Optional[Repl] = None
        self.queries = 0

    def _busy(self) -> bool:
        return self.current is not None and not self.current.finished

    async def execute(self, mode: str, run_id: str, code: str, options: Dict[str, Any],
                      flush_timeout: float = 2.0) -> Dict[str, Any]:
        run_id = run_id or uuid.uuid4().hex
        if mode in ("query", "batch"):
            if self._busy():
                raise Busy(f"run {self.current.id} is still in progress")
            run = Run(run_id, mode)
            self.current = run
            self.queries += 1
            if mode == "query":
                await self._start_query(run, code)
            else:
                run.task = asyncio.ensure_future(self._batch(run, code, options or {}))
            return await self._collect(run, flush_timeout)
        if mode in ("continue", "input"):
            run = self.current
            if run is None or (run_id and run.id != run_id):
                return {"status": "finished", "runId": run_id, "exitCode": None, "options": {},
                        "files": [], "console": []}
            if mode == "input":
                if not run.waiting_input or self.repl is None:
                    raise Busy("the run is not waiting for input")
                run.waiting_input = False
                self.repl.send({"op": "input", "text": code})
            return await self._collect(run, flush_timeout)
        if mode == "complete":
            items: List[str] = []
            if not self._busy() and self.repl is not None and self.repl.alive:
                self.repl.run = None
                items = await self.repl.complete(code)
            return {"status": "finished", "runId": run_id, "exitCode": 0, "options": {},
                    "files": [], "console": [], "completions": items}
        raise ValueError(f"unknown mode {mode!r}")

    async def _collect(self, run: Run, timeout: float) -> Dict[str, Any]:
        result = await run.collect(timeout)
        if result["status"] == "finished" and self.current is run:
            self.current = None
        return result

    async def _start_query(self, run: Run, code: str) -> None:
        if self.repl is None or not self.repl.alive:
            self.repl = Repl(self.user, self.python, self.repl_script, self.log)
            try:
                await self.repl.start()
            except OSError as e:
                run.out("stderr", f"cannot start the Python interpreter: {e}\n")
                run.finish(127)
                return
        self.repl.run = run
        self.repl.send({"op": "exec", "code": code})

    async def _batch(self, run: Run, code: str, options: Dict[str, Any]) -> None:
        steps = [(stage, cmd) for stage, cmd in
                 (("clean", options.get("clean")), ("build", options.get("build")),
                  ("exec", options.get("exec") or code))
                 if cmd and cmd != "*"]
        if not steps:
            run.finish(0)
            return
        for n, (stage, cmd) in enumerate(steps):
            try:
                proc = await asyncio.create_subprocess_exec(
                    shell_path(), "-c", cmd, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    env=self.user.env(), start_new_session=True, **self.user.popen_kwargs())
            except OSError as e:
                run.out("stderr", f"cannot run {stage} command: {e}\n")
                run.finish(127)
                return
            run.proc = proc
            await asyncio.gather(_pump(proc.stdout, run, "stdout"),
                                 _pump(proc.stderr, run, "stderr"))
            rc = await proc.wait()
            rc = rc if rc >= 0 else 128 - rc
            if rc != 0 or n == len(steps) - 1:
                run.finish(rc)
                return
            run.boundary(f"{stage}-finished")

    async def interrupt(self) -> bool:
        run = self.current
        if run is None or run.finished:
            return False
        if run.kind == "query" and self.repl is not None:
            self.repl.interrupt()
        elif run.proc is not None and run.proc.returncode is None:
            try:
                os.killpg(run.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        return True

    async def shutdown(self) -> None:
        if self.repl is not None:
            await self.repl.stop()
        run = self.current
        if run is not None and run.proc is not None and run.proc.returncode is None:
            try:
                os.killpg(run.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


async def _pump(stream: Optional[asyncio.StreamReader], run: Run, name: str) -> None:
    if stream is None:
        return
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            run.out(name, decoder.decode(b"", final=True))
            return
        run.out(name, decoder.decode(chunk))

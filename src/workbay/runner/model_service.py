"""A model service's replica (docs/serving.md, "The replica"): the pre-start actions, then the start
command as the container's main work.

The actions come from the model definition, which the service's owner writes: they run as the
container user, never as root -- in a child process of their own (``run_pre_start``), which runs
``run_actions`` and reports the variables it exported (``WORKBAY_TEMPFILE_<n>``) on its stdout.
Relative paths are relative to the user's home.  Each action's start and end, and why one failed,
go to the container log.  Runs with the image's Python (3.9+), stdlib only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional

ACTIONS = ("write_file", "write_tempfile", "run_command", "mkdir", "log")
TEMPFILE_VAR = "WORKBAY_TEMPFILE_{}"
Log = Callable[[str], None]


class ActionFailed(Exception):
    """Pre-start action ``index`` (1-based, in the definition's order) failed."""

    def __init__(self, index: int, name: str, reason: str) -> None:
        super().__init__(f"pre-start action #{index} ({name}) failed: {reason}")
        self.index, self.name, self.reason = index, name, reason


def _path(home: str, path: Any) -> str:
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ValueError("a path must be a non-empty string")
    return os.path.join(home, path)  # an absolute path stays as it is


def _mode(value: Any, default: str) -> int:
    text = str(default if value is None else value)
    try:
        mode = int(text, 8)
    except ValueError:
        raise ValueError(f"mode {text!r} is not an octal mode like 644") from None
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {text!r} is not an octal mode like 644")
    return mode


def write_file(args: Dict[str, Any], home: str) -> str:
    path = _path(home, args.get("filename"))
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "a" if args.get("append") else "w") as f:
        f.write(str(args.get("body") or ""))
    os.chmod(path, _mode(args.get("mode"), "644"))
    return path


def write_tempfile(args: Dict[str, Any]) -> str:
    fd, path = tempfile.mkstemp(prefix="workbay-")
    with os.fdopen(fd, "w") as f:
        f.write(str(args.get("body") or ""))
    os.chmod(path, _mode(args.get("mode"), "600"))
    return path


def mkdir(args: Dict[str, Any], home: str) -> str:
    path = _path(home, args.get("path"))
    os.makedirs(path, exist_ok=True)
    return path


def command_argv(command: Any) -> List[str]:
    """A command as a list of arguments; a string runs with ``/bin/sh -c``."""
    if isinstance(command, str) and command.strip():
        return ["/bin/sh", "-c", command]
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        return list(command)
    raise ValueError("command must be a non-empty list of strings or a string")


def run_command(args: Dict[str, Any], home: str, env: Dict[str, str]) -> None:
    argv = command_argv(args.get("command"))
    cwd = _path(home, args["cwd"]) if args.get("cwd") else home
    # Its output joins the container log (stderr: this process's stdout carries its report).
    try:
        err = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):
        err = 2
    sys.stderr.flush()
    rc = subprocess.call(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    if rc != 0:
        raise ValueError(f"{argv[0]} exited with code {rc}" if rc > 0 else f"{argv[0]} was killed by signal {-rc}")


def run_actions(actions: List[Dict[str, Any]], home: str, env: Dict[str, str], log: Log) -> Dict[str, str]:
    """Run the actions in order, as the current user; the variables they export (also given to
    the later actions).  Raises ``ActionFailed`` at the first that fails."""
    exported: Dict[str, str] = {}
    tempfiles = 0
    for index, action in enumerate(actions, 1):
        name = str(action.get("action")) if isinstance(action, dict) else "?"
        args = action.get("args") if isinstance(action, dict) else None
        log(f"pre-start action #{index} ({name}): starting")
        try:
            if not isinstance(args, dict):
                raise ValueError("args must be a mapping")
            if name == "write_file":
                write_file(args, home)
            elif name == "write_tempfile":
                tempfiles += 1
                exported[TEMPFILE_VAR.format(tempfiles)] = write_tempfile(args)
            elif name == "run_command":
                run_command(args, home, {**env, **exported})
            elif name == "mkdir":
                mkdir(args, home)
            elif name == "log":
                log(("debug: " if args.get("debug") else "") + str(args.get("message", "")))
            else:
                raise ValueError(f"unknown action (want one of {', '.join(ACTIONS)})")
        except (OSError, ValueError, KeyError) as e:
            raise ActionFailed(index, name, str(e) or type(e).__name__) from e
        log(f"pre-start action #{index} ({name}): done")
    return exported


# --- the child process that runs the actions as the container user ----------------------------
def child_main() -> int:
    """stdin: ``{"actions", "home"}``; stdout: ``{"exported"}`` or ``{"error"}`` (exit code 1)."""
    request = json.load(sys.stdin)

    def log(msg: str) -> None:
        print(f"[workbay-runner] {msg}", file=sys.stderr, flush=True)

    try:
        exported = run_actions(request["actions"], request["home"], dict(os.environ), log)
    except ActionFailed as e:
        log(str(e))
        print(json.dumps({"error": str(e)}), flush=True)
        return 1
    print(json.dumps({"exported": exported}), flush=True)
    return 0


def child_command() -> List[str]:
    """The command that runs ``child_main`` (this module, by its package's name and place)."""
    root = os.path.abspath(__file__)
    for _ in range(__name__.count(".") + 1):  # up to the directory that holds the top package
        root = os.path.dirname(root)
    code = (f"import sys; sys.path.insert(0, {root!r}); import importlib; "
            f"sys.exit(importlib.import_module({__name__!r}).child_main())")
    return [sys.executable, "-B", "-c", code]


async def run_pre_start(actions: List[Dict[str, Any]], home: str, env: Dict[str, str],
                        popen_kwargs: Dict[str, Any], stop: Optional[asyncio.Event] = None) -> Dict[str, str]:
    """Run the actions in a child process (``popen_kwargs``: as the container user); the variables
    they exported.  Raises ``RuntimeError`` saying which action failed and why."""
    if not actions:
        return {}
    proc = await asyncio.create_subprocess_exec(
        *child_command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        start_new_session=True, **popen_kwargs)
    talk = asyncio.ensure_future(proc.communicate(json.dumps({"actions": actions, "home": home}).encode()))
    waiters = [talk] + ([asyncio.ensure_future(stop.wait())] if stop is not None else [])
    done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for w in pending:
        if w is not talk:
            w.cancel()
    if talk not in done:  # stopping: end the actions and what they started
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await talk
        raise RuntimeError("stopped during the pre-start actions")
    out, _ = talk.result()
    try:
        report = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {}
    if proc.returncode == 0 and isinstance(report.get("exported"), dict):
        return {str(k): str(v) for k, v in report["exported"].items()}
    raise RuntimeError(str(report.get("error") or f"the pre-start actions ended with code {proc.returncode}"))

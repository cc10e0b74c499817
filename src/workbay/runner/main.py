"""The runner's main program: prepare the kernel, signal readiness, serve the agent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

from . import gate, model_service, prepare, protocol, services, users
from .execute import Busy, Executor


def log(msg: str) -> None:
    print(f"[workbay-runner] {msg}", file=sys.stderr, flush=True)


def write_json(path: str, data: Dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


class Runner:
    def __init__(self, cfg: Dict[str, Any], ipc_dir: str) -> None:
        self.cfg = cfg
        self.ipc = ipc_dir
        self.state = "preparing"
        self.stop = asyncio.Event()
        home = cfg.get("home", "/home/work")
        uid = cfg.get("uid", os.environ.get("LOCAL_USER_ID", 1000))
        gid = cfg.get("gid", os.environ.get("LOCAL_GROUP_ID", 1000))
        self.user = prepare.ContainerUser(cfg.get("user", "work"), int(uid), int(gid), home,
                                 [int(g) for g in cfg.get("supplementary_gids", [])])
        self.executor = Executor(self.user, os.path.join(os.path.dirname(__file__), "repl.py"),
                                 log=log)
        # Apps are reached through the gates (gate.py) where the agent gave an app secret: the
        # apps the runner starts itself then listen on loopback only.
        self.app_secret = str(cfg.get("app_secret") or "")
        self.services = services.ServiceManager(self.user, log,
                                                bind="127.0.0.1" if self.app_secret else "0.0.0.0")
        self.server: Optional[asyncio.AbstractServer] = None
        self.gates: list = []
        # A model service's replica (docs/serving.md, "The replica"): its start command is the
        # container's main work.
        spec = cfg.get("model_service") if cfg.get("session_type") == "inference" else None
        self.model_service: Optional[Dict[str, Any]] = spec if isinstance(spec, dict) else None

    # --- preparation -------------------------------------------------------------------------
    def prepare(self) -> Dict[str, Any]:
        cfg, user = self.cfg, self.user
        if os.getuid() == 0:
            os.chmod(self.ipc, 0o700)
            users.ensure_user(user.name, user.uid, user.gid, user.home, prepare.shell_path(),
                              user.groups)
            os.makedirs(user.home, exist_ok=True)
            os.chown(user.home, user.uid, user.gid)
            if cfg.get("sudo"):
                users.enable_sudo(user.name)
                log("sudo enabled for " + user.name)
        environ = dict(cfg.get("environ", {}))
        prepare.write_environment(environ, cfg.get("resources", {}))
        sshd_port = next((p["container_ports"][0] for p in cfg.get("service_ports", [])
                          if p.get("name") == "sshd" and p.get("container_ports")), None)
        pub = prepare.setup_ssh(user, cfg.get("ssh_keypair"), cfg.get("cluster"), sshd_port,
                               extra_keys=cfg.get("authorized_keys") or [])
        n = prepare.apply_dotfiles(user, cfg.get("dotfiles", []), log)
        return {"ssh_public_key": pub, "dotfiles": n}

    async def bootstrap(self) -> Optional[int]:
        script = self.cfg.get("bootstrap_script")
        if not script:
            return None
        path = os.path.join(self.user.home, ".workbay-bootstrap.sh")
        prepare.write_file(path, script, 0o700, self.user if os.getuid() == 0 else None)
        log("running the bootstrap script")
        proc = await asyncio.create_subprocess_exec(prepare.shell_path(), path,
                                                    stdin=asyncio.subprocess.DEVNULL,
                                                    env=self.user.env(),
                                                    **self.user.popen_kwargs())
        rc = await proc.wait()
        log(f"bootstrap script exited with {rc}")
        try:
            os.unlink(path)
        except OSError:
            pass
        return rc

    async def start_intrinsic(self) -> Dict[str, Any]:
        out = {}
        for sp in self.cfg.get("service_ports", []):
            name = sp.get("name")
            if name in services.INTRINSIC:
                out[name] = await self.services.start(name, list(sp.get("container_ports", [])))
        return out

    # --- the control socket -------------------------------------------------------------------
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                return
            try:
                req = json.loads(line)
                resp = await self.dispatch(req)
            except Busy as e:
                resp = {"error": "busy", "msg": str(e)}
            except (ValueError, KeyError, TypeError) as e:
                resp = {"error": "invalid", "msg": str(e)}
            except Exception as e:  # keep serving
                log("request failed: " + traceback.format_exc())
                resp = {"error": "internal", "msg": str(e)}
            writer.write((json.dumps(resp) + "\n").encode())
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def dispatch(self, req: Dict[str, Any]) -> Dict[str, Any]:
        op = req.get("op")
        if op == "ping":
            return {"ok": True, "state": self.state}
        if op == "execute":
            return await self.executor.execute(
                str(req.get("mode", "query")), str(req.get("run_id") or ""),
                str(req.get("code") or ""), dict(req.get("options") or {}),
                float(req.get("flush_timeout", 2.0)))
        if op == "interrupt":
            return {"ok": await self.executor.interrupt()}
        if op == "start_service":
            return await self.services.start(str(req["name"]), [int(p) for p in req.get("ports", [])],
                                             req.get("args"), req.get("envs"))
        if op == "status":
            return {"state": self.state, "services": self.services.running(),
                    "queries": self.executor.queries}
        raise ValueError(f"unknown op {op!r}")

    # --- batch ----------------------------------------------------------------------------------
    async def run_startup(self, cmd: str, timeout: Optional[float]) -> Dict[str, Any]:
        log(f"running the startup command: {cmd}")
        return await self.run_main_work([prepare.shell_path(), "-c", cmd], timeout)

    async def run_main_work(self, argv: List[str], timeout: Optional[float],
                            extra_env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """Run ``argv`` as the user, its output the container log, until it exits, ``timeout``
        passes (exit code 124) or the runner stops."""
        env = self.user.env()
        env.update(extra_env or {})
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    env=env, start_new_session=True,
                                                    **self.user.popen_kwargs())
        timed_out = False
        waiter = asyncio.ensure_future(proc.wait())
        stopper = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait([waiter, stopper], timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if waiter not in done:
            timed_out = stopper not in done
            log("batch timeout reached; stopping the command" if timed_out
                else "stopping the command")
            await _kill_group(proc)
        rc = await waiter
        if timed_out:
            rc = 124
        elif rc < 0:
            rc = 128 - rc
        return {"exit_code": rc, "timed_out": timed_out}

    # --- main -----------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        ready_path = os.path.join(self.ipc, protocol.READY)
        sock_path = os.path.join(self.ipc, protocol.SOCKET)
        try:
            info = self.prepare()
            if os.path.exists(sock_path):
                os.unlink(sock_path)
            self.server = await asyncio.start_unix_server(self.handle, sock_path,
                                                          limit=protocol.MAX_MESSAGE)
            os.chmod(sock_path, 0o600)
            if self.app_secret:
                self.gates = await gate.start_gates(self.cfg.get("service_ports", []),
                                                    self.app_secret, log)
            bootstrap_rc = await self.bootstrap()
            # A replica starts fast: no sshd (nobody logs into it).
            started = {} if self.model_service else await self.start_intrinsic()
        except Exception as e:
            log("preparation failed: " + traceback.format_exc())
            write_json(ready_path, {"status": "failed", "error": f"{type(e).__name__}: {e}",
                                    "at": time.time()})
            return 1
        self.state = "ready"
        write_json(ready_path, {"status": "ready", "at": time.time(),
                                "bootstrap_exit_code": bootstrap_rc, "services": started, **info})
        log("kernel ready")
        cmd = self.cfg.get("startup_command")
        rc = 0
        if self.model_service is not None:
            rc = await self.serve_model(self.model_service)
        elif self.cfg.get("session_type") == "batch":
            if not cmd:
                result = {"exit_code": 0, "timed_out": False}
            else:
                result = await self.run_startup(cmd, self.cfg.get("batch_timeout"))
            write_json(os.path.join(self.ipc, protocol.RESULT), {**result, "at": time.time()})
            log(f"batch task finished with exit code {result['exit_code']}")
            rc = int(result["exit_code"])
        else:
            if cmd:
                asyncio.ensure_future(self.background(cmd))
            await self.stop.wait()
            log("stopping")
        await self.shutdown()
        return rc

    async def serve_model(self, spec: Dict[str, Any]) -> int:
        """A replica's main work: the pre-start actions, then the start command; its exit code
        (1 when an action fails).  The container's end is the replica's end."""
        actions = list(spec.get("pre_start_actions") or [])
        try:
            if actions:
                log(f"running {len(actions)} pre-start action(s)")
            exported = await model_service.run_pre_start(actions, self.user.home, self.user.env(),
                                                         self.user.popen_kwargs(), self.stop)
            argv = model_service.command_argv(spec.get("start_command"))
        except (RuntimeError, ValueError, OSError) as e:
            log(f"the model service cannot start: {e}")
            return 1
        log(f"starting the model service on port {spec.get('port')}: {' '.join(argv)}")
        try:
            result = await self.run_main_work(argv, None, exported)
        except OSError as e:
            log(f"the model service's start command failed: {e}")
            return 127
        rc = int(result["exit_code"])
        log(f"the model service exited with code {rc}")
        return rc

    async def background(self, cmd: str) -> None:
        try:
            result = await self.run_startup(cmd, None)
            log(f"startup command exited with {result['exit_code']}")
        except OSError as e:
            log(f"startup command failed: {e}")

    async def shutdown(self) -> None:
        if self.server is not None:
            self.server.close()
        for g in self.gates:
            g.close()
        await self.executor.shutdown()
        await self.services.stop_all()


async def _kill_group(proc: asyncio.subprocess.Process, grace: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
            return
        except asyncio.TimeoutError:
            continue


def main() -> int:
    ipc = os.environ.get("WORKBAY_IPC_DIR", protocol.IPC_DIR)
    with open(os.path.join(ipc, protocol.KERNEL_CONFIG)) as f:
        cfg = json.load(f)
    log(f"kernel {cfg.get('kernel_id')} starting (python {sys.version.split()[0]})")

    async def run() -> int:
        # Created inside the loop: before 3.10 asyncio primitives bind to the loop current at
        # their creation.
        return await Runner(cfg, ipc).run()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())

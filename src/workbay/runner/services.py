"""Services inside the kernel: intrinsic ones started before the kernel is ready (sshd, ttyd) and
on-demand ones (jupyter, …) started through the ``start_service`` request.

The hook: ``SERVICES`` maps a service name to a factory ``(ctx) -> ServiceDef | None`` (None when
the image cannot run it). Images may add or override definitions with JSON files in
``/etc/workbay/service-defs/NAME.json`` or Backend.AI's ``/etc/backend.ai/service-defs/NAME.json``:
``{"command": ["{runtime_path}", "-m", "jupyter", "notebook", "--port", "{ports[0]}"],
"env": {...}, "user": "work"|"root", "prestart": [["cmd", "arg"], ...]}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from typing import Any, Callable, Dict, List, Optional

from .prepare import ContainerUser, session_ssh_dir

SERVICE_DEF_DIRS = ["/etc/workbay/service-defs", "/etc/backend.ai/service-defs"]
INTRINSIC = ("sshd",)  # the terminal starts when first opened (start_service)


class ServiceDef:
    def __init__(self, name: str, command: List[str], as_root: bool = False,
                 env: Optional[Dict[str, str]] = None,
                 prestart: Optional[List[List[str]]] = None) -> None:
        self.name, self.command, self.as_root = name, command, as_root
        self.env = env or {}
        self.prestart = prestart or []


class Context:
    def __init__(self, user: ContainerUser, ports: List[int], runtime_path: str = "python3",
                 args: Optional[Dict[str, Any]] = None, envs: Optional[Dict[str, str]] = None,
                 bind: str = "0.0.0.0") -> None:
        self.user, self.ports, self.runtime_path = user, ports, runtime_path
        self.args = args or {}
        self.envs = envs or {}
        # Where the apps the runner defines listen: loopback behind the app gates (gate.py).
        self.bind = bind


def _sshd(ctx: Context) -> Optional[ServiceDef]:
    exe = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.path.exists(p)), None)
    if exe is None or not ctx.ports:
        return None
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    # One ed25519 host key per container (ssh-keygen -A would also make a slow RSA key).
    host_key = "/etc/ssh/ssh_host_ed25519_key"
    if not os.path.exists(host_key) and shutil.which("ssh-keygen"):
        os.makedirs(os.path.dirname(host_key), exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ServiceDef("sshd", sshd_command(exe, ctx.ports[0], host_key, ctx.user), as_root=True)


def sshd_command(exe: str, port: int, host_key: str, user: ContainerUser) -> List[str]:
    return [exe, "-D", "-e", "-p", str(port), "-h", host_key,
            "-o", "PermitRootLogin=no", "-o", "PasswordAuthentication=no",
            "-o", "UsePAM=no", "-o", "AllowUsers=" + user.name,
            # the user's own keys (maybe the persistent `.ssh` folder) and this session's keys,
            # kept outside it (prepare.setup_ssh)
            "-o", "AuthorizedKeysFile=.ssh/authorized_keys "
            + os.path.join(session_ssh_dir(user), "authorized_keys"),
            "-o", "PermitUserEnvironment=no", "-o", "PrintMotd=no"]


def _ttyd(ctx: Context) -> Optional[ServiceDef]:
    if not ctx.ports:
        return None
    shell = ["tmux", "new-session", "-A", "-s", "main"] if shutil.which("tmux") else ["bash", "-l"]
    exe = shutil.which("ttyd")
    if exe is not None:
        iface = ["-i", "lo"] if ctx.bind == "127.0.0.1" else []
        return ServiceDef("ttyd", [exe, "-p", str(ctx.ports[0]), *iface, "-W", *shell])
    # No ttyd (Debian has no package): Workbay's own terminal, where the image has terminado.
    if _has_modules(ctx.runtime_path, "tornado", "terminado"):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "terminal.py")
        return ServiceDef("ttyd", [ctx.runtime_path, script, "--port", str(ctx.ports[0]),
                                   "--address", ctx.bind],
                          env={"TERM": "xterm-256color"})
    return None


def _has_modules(python: str, *modules: str) -> bool:
    exe = shutil.which(python) or python
    try:
        probe = subprocess.run([exe, "-c", "import " + ", ".join(modules)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _jupyter(kind: str) -> Callable[[Context], Optional[ServiceDef]]:
    def factory(ctx: Context) -> Optional[ServiceDef]:
        if not ctx.ports:
            return None
        return ServiceDef(kind, [ctx.runtime_path, "-m", "jupyter", kind, "--no-browser",
                                 f"--ip={ctx.bind}", f"--port={ctx.ports[0]}",
                                 "--ServerApp.token=", "--ServerApp.password=",
                                 "--ServerApp.allow_origin=*", "--NotebookApp.token=",
                                 # on loopback behind the gate: Host names the node's address
                                 "--ServerApp.allow_remote_access=True",
                                 f"--notebook-dir={ctx.user.home}"])
    return factory


def _filebrowser(ctx: Context) -> Optional[ServiceDef]:
    """The File Browser (filebrowser.py → fb_server.py, tornado): ``root`` from the arguments, inside the home."""
    if not ctx.ports:
        return None
    from .fb_paths import root_allowed  # ValueError for roots outside the home: a 400 to the user
    root = root_allowed(ctx.args.get("root") or None, ctx.user.home)
    if not _has_modules(ctx.runtime_path, "tornado"):
        return None
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "filebrowser.py")
    return ServiceDef("filebrowser", [ctx.runtime_path, script, "--port", str(ctx.ports[0]),
                                      "--address", ctx.bind,
                                      "--root", root, "--home", ctx.user.home])


SERVICES: Dict[str, Callable[[Context], Optional[ServiceDef]]] = {
    "sshd": _sshd,
    "ttyd": _ttyd,
    "jupyter": _jupyter("notebook"),
    "jupyterlab": _jupyter("lab"),
    "filebrowser": _filebrowser,
}


def register(name: str, factory: Callable[[Context], Optional[ServiceDef]]) -> None:
    """Add or replace a service definition (the hook for later services)."""
    SERVICES[name] = factory


def substitute(template: str, ctx: Context) -> str:
    return template.format(ports=ctx.ports, port=ctx.ports[0] if ctx.ports else "",
                           runtime_path=ctx.runtime_path, home=ctx.user.home, **ctx.args)


def from_file(name: str, ctx: Context, dirs: Optional[List[str]] = None) -> Optional[ServiceDef]:
    for d in dirs or SERVICE_DEF_DIRS:
        path = os.path.join(d, name + ".json")
        if os.path.exists(path):
            with open(path) as f:
                spec = json.load(f)
            return ServiceDef(name, [substitute(str(a), ctx) for a in spec["command"]],
                              as_root=spec.get("user") == "root",
                              env={k: substitute(str(v), ctx) for k, v in
                                   spec.get("env", {}).items()},
                              prestart=[prestart_command(step, ctx) for step in spec.get("prestart", [])
                                        if prestart_command(step, ctx)])
    return None


def prestart_command(step: Any, ctx: Context) -> List[str]:
    """A prestart step as a command: a list (``["cmd", "arg"]``) or Backend.AI's action objects
    (``{"action": "mkdir", "args": {"path": …}}``, ``run_command`` with ``args.command``)."""
    if isinstance(step, list):
        return [substitute(str(a), ctx) for a in step]
    if isinstance(step, dict):
        args = step.get("args") or {}
        if step.get("action") == "mkdir" and args.get("path"):
            return ["mkdir", "-p", substitute(str(args["path"]), ctx)]
        if step.get("action") == "run_command" and isinstance(args.get("command"), list):
            return [substitute(str(a), ctx) for a in args["command"]]
    return []


def resolve(name: str, ctx: Context) -> Optional[ServiceDef]:
    sdef = from_file(name, ctx)
    if sdef is None and name in SERVICES:
        sdef = SERVICES[name](ctx)
    return sdef


class ServiceManager:
    def __init__(self, user: ContainerUser, log, bind: str = "0.0.0.0") -> None:
        self.user, self.log, self.bind = user, log, bind
        self.procs: Dict[str, asyncio.subprocess.Process] = {}
        self.started_with: Dict[str, Any] = {}

    def running(self) -> Dict[str, int]:
        return {n: p.pid for n, p in self.procs.items() if p.returncode is None}

    async def start(self, name: str, ports: List[int], args: Optional[Dict[str, Any]] = None,
                    envs: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        proc = self.procs.get(name)
        wanted = (list(ports), args or {}, envs or {})
        if proc is not None and proc.returncode is None:
            if self.started_with.get(name) == wanted:
                return {"status": "running", "name": name, "pid": proc.pid}
            # Asked again with other arguments (say, another File Browser root): restart it.
            try:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 10)
            except (ProcessLookupError, asyncio.TimeoutError):
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
        ctx = Context(self.user, ports, args=args, envs=envs, bind=self.bind)
        sdef = resolve(name, ctx)
        if sdef is None:
            return {"status": "unavailable", "name": name,
                    "error": f"this image cannot run the service {name!r}"}
        env = self.user.env()
        env.update(sdef.env)
        env.update(envs or {})
        kwargs: Dict[str, Any] = {"cwd": self.user.home} if sdef.as_root else \
            self.user.popen_kwargs()
        try:
            for step in sdef.prestart:
                p = await asyncio.create_subprocess_exec(*step, env=env, **kwargs)
                await p.wait()
            proc = await asyncio.create_subprocess_exec(
                *sdef.command, stdin=asyncio.subprocess.DEVNULL, env=env, start_new_session=True,
                **kwargs)
        except OSError as e:
            return {"status": "failed", "name": name, "error": str(e)}
        self.procs[name] = proc
        self.started_with[name] = wanted
        self.log(f"service {name} started (pid {proc.pid}): {' '.join(sdef.command)}")
        return {"status": "started", "name": name, "pid": proc.pid}

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                try:
                    proc.terminate()
                except ProcessLookupError:
                    pass

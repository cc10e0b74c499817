"""The NEO session launcher (CS-2…CS-11): ``/session/start``.

Five steps (session type → environments & resources → data & storage → network → review & launch)
in one form whose state lives in the query string: every step switch is a GET of the same URL
with ``step`` changed (htmx swaps ``#launcher`` and pushes the URL), so reload and back/forward keep
the form.  Review renders each card with its own validation errors; launching posts the same
fields, answers the no-mount warning dialog first, and on success sends the user to the sessions
list with an event the notification bell tracks until the session runs (UI-2)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import MultiDict

from workbay.client.sdk import APIError, Client

from ..context import Admin, PageContext, UserPage
from ..i18n import N_
from ..responses import CLOSE_MODAL_EVENT, api_error_text, events

router = APIRouter(tags=["pages"])

STEPS = (
    (1, N_("Session type"), "ui-radios"),
    (2, N_("Environments & resource allocation"), "cpu"),
    (3, N_("Data & storage"), "folder2-open"),
    (4, N_("Network"), "diagram-2"),
    (5, N_("Review & launch"), "rocket-takeoff"),
)
SESSIONS_URL = "/sessions"
GiB = Decimal(1 << 30)
MiB = Decimal(1 << 20)
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
EDGE_RE = re.compile(r"^[A-Za-z0-9].*[A-Za-z0-9]$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TIMEOUT_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_COUNT = 100
MAX_CLUSTER = 64
HPC_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
DEFAULTS = {"type": "interactive", "cpu": "1", "mem": "1", "shmem": "0.0625", "count": "1",
            "cluster_mode": "single-node", "cluster_size": "1", "timeout_unit": "s", "preset": "custom"}
# Accelerator slots and how they are shown (CS-6: GPU / fractional GPU).
ACCELERATORS = {"cuda.device": N_("GPU"), "cuda.shares": N_("fGPU"), "rocm.device": N_("ROCm GPU"),
                "tpu.device": N_("TPU"), "ipu.device": N_("IPU"), "atom.device": N_("ATOM"),
                "warboy.device": N_("Warboy"), "hyperaccel-lpu.device": N_("LPU")}


# -- the form -------------------------------------------------------------------------------------
@dataclass
class LaunchForm:
    """The launcher's fields, read from the query string (steps) or the posted form (launch)."""

    values: dict[str, str]
    env_vars: list[tuple[str, str]]
    mounts: list[str]
    aliases: dict[str, str]
    step: int = 1

    @classmethod
    def parse(cls, data: MultiDict) -> LaunchForm:
        values = {k: str(v).strip() for k, v in data.items()
                  if not k.startswith("alias:") and k not in ("ev_k", "ev_v", "mount", "csrf_token")}
        for key, default in DEFAULTS.items():
            values.setdefault(key, default)
            if values[key] == "":
                values[key] = default
        keys, vals = data.getlist("ev_k"), data.getlist("ev_v")
        env_vars = [(str(k).strip(), str(v)) for k, v in zip(keys, vals + [""] * (len(keys) - len(vals)), strict=False)
                    if str(k).strip() or str(v).strip()]
        mounts = list(dict.fromkeys(str(m) for m in data.getlist("mount") if str(m)))
        aliases = {k[len("alias:"):]: str(v).strip() for k, v in data.items()
                   if k.startswith("alias:") and str(v).strip()}
        try:
            step = min(5, max(1, int(values.get("step", "1"))))
        except ValueError:
            step = 1
        return cls(values, env_vars, mounts, aliases, step)

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def on(self, key: str) -> bool:
        return self.get(key).lower() in ("on", "true", "1", "yes")

    @property
    def image(self) -> str:
        return self.get("image_manual") or self.get("version")

    def query(self, **changes: Any) -> str:
        """The form as a query string (what the URL holds), with some fields changed."""
        pairs: list[tuple[str, str]] = []
        values = dict(self.values)
        for k, v in changes.items():
            if v is None:
                values.pop(k, None)
            else:
                values[k] = str(v)
        for k, v in values.items():
            if v != "" and DEFAULTS.get(k) != v:
                pairs.append((k, v))
        for k, v in self.env_vars:
            pairs += [("ev_k", k), ("ev_v", v)]
        pairs += [("mount", m) for m in self.mounts]
        pairs += [(f"alias:{n}", a) for n, a in self.aliases.items() if n in self.mounts]
        return urlencode(pairs)


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _slot(data: dict[str, Any] | None, name: str) -> Decimal | None:
    """A slot amount from a slot map; None when missing or unlimited."""
    if not data or name not in data:
        return None
    try:
        value = Decimal(str(data[name]))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _fmt(value: Any, bytes_: bool = False) -> str:
    if value is None or value == "":
        return "∞"
    if not isinstance(value, Decimal):
        value = _decimal(str(value))
        if value is None:
            return "∞"
    if bytes_:
        return f"{(value / GiB).quantize(Decimal('0.0001')).normalize():f}"
    return f"{value.normalize():f}"


# -- what the page needs from the manager -----------------------------------------------------------
@dataclass
class Choices:
    images: list[dict[str, Any]] = field(default_factory=list)
    environments: list[dict[str, Any]] = field(default_factory=list)
    resource_groups: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    presets: list[dict[str, Any]] = field(default_factory=list)
    folders: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    accelerators: list[tuple[str, str]] = field(default_factory=list)
    project: dict[str, Any] | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)


def _version_key(tag: str) -> tuple:
    """Natural order: 3.11 after 3.9, 1.13-cpu after 1.9."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-_]", tag))


def _environments(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The catalog grouped into environments (repository) and versions (tags)."""
    envs: dict[str, dict[str, Any]] = {}
    for img in images:
        name = str(img.get("name", ""))
        repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        labels = img.get("labels") or {}
        short = repo.rsplit("/", 1)[-1]
        env = envs.setdefault(repo, {"repo": repo, "label": short.replace("-", " ").title(), "versions": []})
        env["versions"].append({
            "image": name, "tag": img.get("tag") or name.rsplit(":", 1)[-1],
            "display": labels.get("org.workbay.display-name") or "",
            "architecture": img.get("architecture", ""), "installed": bool(img.get("installed")),
            "min_slots": img.get("min_slots") or {},
        })
    out = sorted(envs.values(), key=lambda e: e["label"].lower())
    for env in out:
        env["versions"].sort(key=lambda v: _version_key(v["tag"]), reverse=True)
        env["installed"] = any(v["installed"] for v in env["versions"])
    return out


def _project(ctx: PageContext) -> dict[str, Any] | None:
    projects = (ctx.me or {}).get("projects") or []
    chosen = ctx.preferences.get("project")
    return next((p for p in projects if p["id"] == chosen), projects[0] if projects else None)


async def _safe(call, default):
    try:
        return await call
    except APIError:
        return default


async def load_choices(ctx: PageContext, api: Client, form: LaunchForm) -> Choices:
    ch = Choices(project=_project(ctx))
    group = ch.project["id"] if ch.project else None
    params = {"group": group} if group else {}
    if form.get("rg"):
        params["scaling_group"] = form.get("rg")
    if form.on("owner") and form.get("owner_ak") and ctx.session and ctx.session.is_admin:
        # CS-4: the presets and limits shown are the owner's, as the session will be theirs
        params["owner_access_key"] = form.get("owner_ak")
        if form.get("owner_project"):
            params["group"] = form.get("owner_project")
        if form.get("owner_rg"):
            params["scaling_group"] = form.get("owner_rg")
    superadmin = bool(ctx.session and ctx.session.is_superadmin)
    images, check, folders = await asyncio.gather(
        _safe(api.get("/images"), {"items": []}),
        api.post("/resource/check-presets", json=params),
        _safe(api.get("/folders"), []),
        return_exceptions=True)
    if isinstance(check, APIError):
        ch.errors.append(api_error_text(check))
        check = {}
    for got in (images, folders, check):
        if isinstance(got, BaseException):
            raise got
    ch.images = list(images.get("items") or [])
    ch.environments = _environments(ch.images)
    ch.check = check
    ch.resource_groups = sorted((check.get("scaling_groups") or {}).keys())
    ch.presets = [p for p in check.get("presets") or [] if p.get("allocatable")]
    items = folders.get("items") if isinstance(folders, dict) else folders
    ch.folders = sorted((f for f in items or [] if f.get("status", "ready") == "ready"
                         and not str(f.get("name", "")).startswith(".")),
                        key=lambda f: str(f.get("name", "")).lower())
    rg = form.get("rg") or (ch.resource_groups[0] if ch.resource_groups else "")
    if superadmin:
        agents = await _safe(api.get("/admin/agents", params={"status": "ALIVE", "resource_group": rg or None}),
                             {"items": []})
        ch.agents = [a for a in agents.get("items") or [] if a.get("schedulable", True)]
        for a in ch.agents:
            a["free"] = {k: (_slot(a.get("available_slots"), k) or Decimal(0))
                         - (_slot(a.get("occupied_slots"), k) or Decimal(0))
                         for k in (a.get("available_slots") or {})}
    ch.limits = _limits(check, rg)
    names = set(check.get("keypair_limits") or {}) | set(
        ((check.get("scaling_groups") or {}).get(rg) or {}).get("remaining") or {})
    ch.accelerators = [(k, ACCELERATORS.get(k, k)) for k in sorted(names) if k not in ("cpu", "mem")]
    return ch


def _limits(check: dict[str, Any], rg: str) -> dict[str, dict[str, Any]]:
    """Per slot: the policy limit, what is left of it, what is free in the resource group, and the
    largest amount the sliders offer."""
    free = ((check.get("scaling_groups") or {}).get(rg) or {}).get("remaining") or check.get(
        "scaling_group_remaining") or {}
    out = {}
    names = {"cpu", "mem"} | set(check.get("keypair_limits") or {}) | set(free)
    for name in names:
        limit = _slot(check.get("keypair_limits"), name)
        remaining = _slot(check.get("keypair_remaining"), name)
        rg_free = _slot(free, name)
        known = [x for x in (remaining, rg_free) if x is not None]
        top = min(known) if known else None
        out[name] = {"limit": limit, "remaining": remaining, "free": rg_free, "max": top}
    return out


# -- validation and the request body ---------------------------------------------------------------
def _resources(form: LaunchForm, ch: Choices, errors: dict[str, str], _) -> tuple[dict[str, Any], Decimal | None]:
    """The per-container request: (resources, shared memory bytes)."""
    preset = next((p for p in ch.check.get("presets") or [] if p.get("name") == form.get("preset")), None)
    if form.get("preset") != "custom" and preset is None:
        errors["preset"] = _("The preset %(name)s does not exist.", name=form.get("preset"))
    if preset is not None and form.get("preset") != "custom":
        if not preset.get("allocatable"):
            errors["preset"] = _("The preset %(name)s needs more than what is free.", name=preset["name"])
        slots = dict(preset.get("resource_slots") or {})
        shm = _decimal(str(preset.get("shared_memory") or "")) if preset.get("shared_memory") else None
        return slots, shm
    cpu = _decimal(form.get("cpu"))
    if cpu is None or cpu < 1 or cpu != cpu.to_integral_value():
        errors["cpu"] = _("CPU must be a whole number of cores, at least 1.")
    mem = _decimal(form.get("mem"))
    if mem is None or mem <= 0:
        errors["mem"] = _("Memory must be a positive number of GiB.")
    shm = _decimal(form.get("shmem")) if form.get("shmem") else Decimal(0)
    if shm is None or shm < 0:
        errors["shmem"] = _("Shared memory must be zero or a positive number of GiB.")
    elif mem is not None and shm > mem:
        errors["shmem"] = _("Shared memory cannot exceed the memory size.")
    resources: dict[str, Any] = {}
    if "cpu" not in errors:
        resources["cpu"] = int(cpu)
        top = ch.limits.get("cpu", {}).get("limit")
        if top is not None and cpu > top:
            errors["cpu"] = _("At most %(max)s cores (your resource policy).", max=_fmt(top))
    if "mem" not in errors:
        mib = int((mem * 1024).to_integral_value())
        if mib < 1:
            errors["mem"] = _("Memory must be a positive number of GiB.")
        resources["mem"] = f"{mib}m"
        top = ch.limits.get("mem", {}).get("limit")
        if top is not None and mem * GiB > top:
            errors["mem"] = _("At most %(max)s GiB (your resource policy).", max=_fmt(top, True))
    acc = _decimal(form.get("acc")) if form.get("acc") else Decimal(0)
    slot = form.get("acc_slot")
    if acc is None or acc < 0:
        errors["acc"] = _("Enter a number, zero or more.")
    elif acc > 0:
        if slot not in dict(ch.accelerators):
            errors["acc"] = _("This resource group has no such accelerator.")
        else:
            resources[slot] = f"{acc.normalize():f}"
    shm_bytes = (shm * GiB).to_integral_value() if shm is not None and shm > 0 and "shmem" not in errors else None
    return resources, shm_bytes


def validate(ctx: PageContext, form: LaunchForm, ch: Choices) -> tuple[dict[int, dict[str, str]], dict[str, Any]]:
    """Errors per step ({step: {field: message}}) and the POST /session body built from the form."""
    _ = ctx._
    e1: dict[str, str] = {}
    e2: dict[str, str] = {}
    e3: dict[str, str] = {}
    e4: dict[str, str] = {}
    body: dict[str, Any] = {"type": form.get("type") if form.get("type") in ("interactive", "batch") else "interactive",
                            "enqueueOnly": True, "reuseIfExists": False}
    config: dict[str, Any] = {}
    # 1 session type
    if form.get("type") not in ("interactive", "batch"):
        e1["type"] = _("Choose interactive or batch.")
    name = form.get("name")
    if name:
        if not NAME_RE.match(name) or not EDGE_RE.match(name):
            e1["name"] = _("4–64 letters, digits, '-' or '_', starting and ending with a letter or digit; no spaces.")
        else:
            body["name"] = name
    if body["type"] == "batch":
        cmd = form.get("cmd")
        if not cmd:
            e1["cmd"] = _("A batch session needs a startup command.")
        body["startupCommand"] = cmd
        if form.on("sched"):
            when = form.get("starts_at")
            if not when:
                e1["starts_at"] = _("Choose when the session starts.")
            else:
                from datetime import datetime
                try:
                    datetime.fromisoformat(when.replace("Z", "+00:00"))
                except ValueError:
                    e1["starts_at"] = _("Enter a date and time.")
                else:
                    body["starts_at"] = when
        if form.on("timeout_on"):
            amount = _decimal(form.get("timeout"))
            unit = TIMEOUT_UNITS.get(form.get("timeout_unit"), 1)
            if amount is None or amount <= 0 or amount != amount.to_integral_value():
                e1["timeout"] = _("Enter a whole number greater than zero.")
            else:
                body["batchTimeout"] = int(amount) * unit
    group = ch.project["id"] if ch.project else None
    rg = form.get("rg") or (ch.resource_groups[0] if ch.resource_groups else "")
    if form.on("owner") and ctx.session and ctx.session.is_admin:
        if not form.get("owner_ak"):
            e1["owner_email"] = _("Look up the owner's e-mail and choose an access key.")
        else:
            body["owner_access_key"] = form.get("owner_ak")
        if form.get("owner_project"):
            group = form.get("owner_project")
        if form.get("owner_rg"):
            rg = form.get("owner_rg")
    if group:
        body["group"] = group
    else:
        e2["project"] = _("You are not a member of any project; ask your administrator to add you to one.")
    # 2 environments & resources
    image = form.image
    if not image:
        e2["image"] = _("Choose an environment and a version, or enter an image name.")
    else:
        body["image"] = image
    environ: dict[str, str] = {}
    for key, value in form.env_vars:
        if not ENV_NAME_RE.match(key):
            e2["environ"] = _("Variable names are letters, digits and '_', not starting with a digit: %(name)s",
                              name=key or "''")
        elif key in environ:
            e2["environ"] = _("The variable %(name)s is set twice.", name=key)
        environ[key] = value
    if form.on("hpc"):
        for var, fld in zip(HPC_VARS, ("omp", "openblas"), strict=False):
            threads = _decimal(form.get(fld))
            if threads is None or threads < 1 or threads != threads.to_integral_value():
                e2[fld] = _("Enter a whole number of threads, at least 1.")
            else:
                environ.setdefault(var, str(int(threads)))
    if environ:
        config["environ"] = environ
    if ch.resource_groups and rg not in ch.resource_groups and not form.on("owner"):
        e2["rg"] = _("You may not use the resource group %(name)s.", name=rg)
    if rg:
        config["scaling_group"] = rg
    resources, shm = _resources(form, ch, e2, _)
    config["resources"] = resources
    if shm:
        config["resource_opts"] = {"shmem": f"{int(shm // MiB)}m" if shm % MiB == 0 else str(int(shm))}
    count = _decimal(form.get("count"))
    if count is None or count < 1 or count > MAX_COUNT or count != count.to_integral_value():
        e2["count"] = _("Between 1 and %(max)s sessions.", max=MAX_COUNT)
    elif count > 1:
        body["count"] = int(count)
    mode = form.get("cluster_mode")
    if mode not in ("single-node", "multi-node"):
        e2["cluster_mode"] = _("Choose single node or multi node.")
    size = _decimal(form.get("cluster_size"))
    if size is None or size < 1 or size > MAX_CLUSTER or size != size.to_integral_value():
        e2["cluster_size"] = _("Between 1 and %(max)s containers.", max=MAX_CLUSTER)
    else:
        body["clusterMode"] = mode
        body["clusterSize"] = int(size)
    agent = form.get("agent")
    if agent:
        if not (ctx.session and ctx.session.is_superadmin):
            e2["agent"] = _("Only a superadmin may choose the agent.")
        elif size is not None and size > 1:
            e2["agent"] = _("Choosing an agent works for single-container sessions only.")
        elif ch.agents and agent not in {a["id"] for a in ch.agents}:
            e2["agent"] = _("The agent %(name)s is not available in this resource group.", name=agent)
        else:
            config["agentList"] = [agent]
    # 3 data & storage
    known = {f.get("name") for f in ch.folders}
    paths: dict[str, str] = {}
    mounts = []
    for folder in form.mounts:
        if ch.folders and folder not in known:
            e3["mounts"] = _("The folder %(name)s cannot be mounted.", name=folder)
            continue
        mounts.append(folder)
        alias = form.aliases.get(folder, "")
        target = alias or f"/home/work/{folder}"
        if alias:
            parts = [p for p in alias.split("/") if p]
            if not parts or ".." in parts or any(c in alias for c in "\\\0\n"):
                e3["mounts"] = _("The path %(path)s for %(name)s is not valid.", path=alias, name=folder)
        if not target.startswith("/"):
            target = "/home/work/" + target
        if target.rstrip("/") in paths:
            e3["mounts"] = _("%(a)s and %(b)s would mount at the same path.", a=paths[target.rstrip("/")], b=folder)
        paths[target.rstrip("/")] = folder
    if mounts:
        config["mounts"] = mounts
        aliases = {m: form.aliases[m] for m in mounts if form.aliases.get(m)}
        if aliases:
            config["mount_map"] = aliases
    # 4 network
    ports = []
    for token in re.split(r"[\s,]+", form.get("ports")):
        if not token:
            continue
        if not token.isdigit() or not 1024 <= int(token) <= 65535:
            e4["ports"] = _("Ports are numbers from 1024 to 65535: %(port)s", port=token)
        elif int(token) not in ports:
            ports.append(int(token))
    if ports:
        config["preopen_ports"] = ports
    body["config"] = config
    return {k: v for k, v in ((1, e1), (2, e2), (3, e3), (4, e4)) if v}, body


# -- pages --------------------------------------------------------------------------------------------
def _summary(form: LaunchForm, ch: Choices, body: dict[str, Any]) -> dict[str, Any]:
    """What the review cards show."""
    version = next((v for env in ch.environments for v in env["versions"] if v["image"] == form.image), None)
    res = (body.get("config") or {}).get("resources") or {}
    size = body.get("clusterSize") or 1
    count = body.get("count") or 1
    cpu = _decimal(str(res.get("cpu", "")))
    mem = str(res.get("mem", ""))
    mem_bytes = (int(mem[:-1]) << 20) if mem.endswith("m") and mem[:-1].isdigit() else (
        int(mem) if mem.isdigit() else None)
    return {"version": version, "resources": res, "cpu": _fmt(cpu) if cpu is not None else None,
            "cpu_one": cpu == 1, "cpu_total": _fmt(cpu * size * count) if cpu is not None else None,
            "cpu_total_one": cpu is not None and cpu * size * count == 1,
            "mem_total": mem_bytes * size * count if mem_bytes else None,
            "shmem": ((body.get("config") or {}).get("resource_opts") or {}).get("shmem"),
            "containers": size, "count": count, "total_factor": size * count}


def render_launcher(ctx: PageContext, request: Request, form: LaunchForm, ch: Choices, *,
                    errors: dict[int, dict[str, str]] | None = None, body: dict[str, Any] | None = None,
                    general: tuple[str, str] | None = None, status_code: int = 200,
                    headers: dict[str, str] | None = None) -> Response:
    if errors is None or body is None:
        errors, body = validate(ctx, form, ch)
    ctx.section = "launcher"
    env_repo = form.get("environment")
    if not env_repo and form.get("version"):
        env_repo = next((e["repo"] for e in ch.environments
                         if any(v["image"] == form.get("version") for v in e["versions"])), "")
    if not env_repo and ch.environments:
        env_repo = next((e["repo"] for e in ch.environments if e["installed"]), ch.environments[0]["repo"])
    env = next((e for e in ch.environments if e["repo"] == env_repo), None)
    version = form.get("version")
    if env and version not in {v["image"] for v in env["versions"]}:
        version = next((v["image"] for v in env["versions"] if v["installed"]), env["versions"][0]["image"])
    if not form.get("version") and version:
        form.values["version"] = version
        errors, body = validate(ctx, form, ch)
    form.values["environment"] = env_repo
    rg = form.get("rg") or (ch.resource_groups[0] if ch.resource_groups else "")
    return ctx.state.renderer.render(
        request, "pages/launcher.html", status_code=status_code, headers=headers,
        form=form, ch=ch, steps=STEPS, step=form.step, errors=errors, body=body, general=general,
        env_repo=env_repo, version=version, rg=rg, summary=_summary(form, ch, body),
        query=form.query, sessions_url=SESSIONS_URL, is_admin=bool(ctx.session and ctx.session.is_admin),
        is_superadmin=bool(ctx.session and ctx.session.is_superadmin),
        gib=lambda v: _fmt(v, True), num=_fmt)


@router.get("/session/start")
async def launcher_page(request: Request, ctx: UserPage) -> Response:
    form = LaunchForm.parse(request.query_params)
    async with ctx.state.gateway.client(ctx.session) as api:
        ch = await load_choices(ctx, api, form)
    return render_launcher(ctx, request, form, ch, general=ch.errors[0] if ch.errors else None)


@router.get("/session/start/owner")
async def owner_lookup(request: Request, ctx: Admin) -> Response:
    """CS-4: the owner's access keys, projects and resource groups for an e-mail."""
    email = request.query_params.get("owner_email", "").strip()
    error, keypairs, projects, groups = None, [], [], []
    if not email:
        error = ctx._("Enter the owner's e-mail address.")
    else:
        async with ctx.state.gateway.client(ctx.session) as api:
            try:
                user = await api.get(f"/admin/users/{email}")
                listing = await api.get("/admin/keypairs", params={"user_email": email, "is_active": "true"})
            except APIError as err:
                error = (ctx._("No user has the e-mail address %(email)s.", email=email) if err.status == 404
                         else " ".join(api_error_text(err)).strip())
            else:
                keypairs = [k["access_key"] for k in listing.get("items") or []]
                projects = user.get("projects") or []
                rgs = await _safe(api.get("/admin/resource-groups"), {"items": []})
                items = rgs.get("items") if isinstance(rgs, dict) else rgs
                groups = [g["name"] for g in items or [] if g.get("is_active", True)]
                if not keypairs:
                    error = ctx._("%(email)s has no active keypair.", email=email)
    q = request.query_params
    return ctx.state.renderer.render(
        request, "dialogs/launcher_owner.html", owner_email=email, error=error, keypairs=keypairs,
        projects=projects, groups=groups, chosen={"ak": q.get("owner_ak", ""), "project": q.get("owner_project", ""),
                                                  "rg": q.get("owner_rg", "")})


@router.post("/session/start")
async def launch(request: Request, ctx: UserPage) -> Response:
    form = LaunchForm.parse(await request.form())
    form.step = 5
    form.values["step"] = "5"
    async with ctx.state.gateway.client(ctx.session) as api:
        ch = await load_choices(ctx, api, form)
        errors, body = validate(ctx, form, ch)
        swap_page = {"HX-Retarget": "#launcher", "HX-Reswap": "outerHTML", "HX-Reselect": "#launcher",
                     "HX-Push-Url": "/session/start?" + form.query(step=5, nomount_ok=None),
                     "HX-Trigger": json.dumps({CLOSE_MODAL_EVENT: True})}
        if errors:
            return render_launcher(ctx, request, form, ch, errors=errors, body=body, headers=swap_page)
        if not body["config"].get("mounts") and not form.on("nomount_ok"):
            return ctx.state.renderer.render(request, "dialogs/launcher_nomount.html")
        try:
            created = await api.post("/session", json=body)
        except APIError as err:
            return render_launcher(ctx, request, form, ch, errors=errors, body=body,
                                   general=api_error_text(err), headers=swap_page)
    sessions = created.get("sessions") or [{"sessionId": created.get("sessionId"),
                                            "sessionName": created.get("sessionName")}]
    names = ", ".join(str(s["sessionName"]) for s in sessions)
    launched = {"sessions": [{"id": s["sessionId"], "name": s["sessionName"]} for s in sessions],
                "query": form.query(step=None, nomount_ok=None),
                "summary": {"name": form.get("name"), "image": body.get("image"), "type": body.get("type"),
                            "resources": body["config"].get("resources"), "mounts": body["config"].get("mounts") or [],
                            "count": body.get("count") or 1}}
    launched["message"] = ctx._("Session %(names)s was requested.", names=names)
    response = events(ctx, extra={"wb:session-launched": launched})
    response.headers["HX-Redirect"] = SESSIONS_URL
    return response

"""The NEO session launcher (CS-2…CS-11): ``/session/start``.

Five steps (session type → environments & resources → data & storage → network → review & launch)
in one form whose state lives in the query string: every step switch is a GET of the same URL
with ``step`` changed (htmx swaps ``#launcher`` and pushes the URL), so reload and back/forward keep
the form.  The webserver only reads the form into a POST /session body (numbers, units, which step
a field belongs to); every rule is the manager's: each render asks ``POST /session/_/validate`` and
shows its ``field_errors`` at their fields, review shows each card with its own.  Launching posts
the same fields, answers the no-mount warning dialog first, and on success sends the user to the
sessions list with an event the notification bell tracks until the session runs (UI-2)."""

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
from workbay.common.domain import parse_bytes_or_none

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
TIMEOUT_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
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


# -- the request body (form parsing only) and the manager's verdict ---------------------------------
# Where the manager's ``field_errors`` paths (docs/api.md "For the WebUI") show on the form: the step
# and the form field.  A path under one of these (``config.environ.FOO``, ``config.preopen_ports.0``)
# shows where its parent does; any other slot under ``config.resources.`` is the accelerator field.
FIELD_PLACES: dict[str, tuple[int, str]] = {
    "type": (1, "type"), "name": (1, "name"), "startupCommand": (1, "cmd"), "starts_at": (1, "starts_at"),
    "batchTimeout": (1, "timeout"), "owner_access_key": (1, "owner_email"),
    "group": (2, "project"), "image": (2, "image"), "architecture": (2, "image"),
    "config.environ": (2, "environ"), "config.scaling_group": (2, "rg"), "config.scalingGroup": (2, "rg"),
    "config.resources": (2, "resources"), "config.resources.cpu": (2, "cpu"), "config.resources.mem": (2, "mem"),
    "config.resource_opts": (2, "shmem"), "config.resource_opts.shmem": (2, "shmem"),
    "count": (2, "count"), "clusterMode": (2, "cluster_mode"), "clusterSize": (2, "cluster_size"),
    "config.agentList": (2, "agent"), "config.agent_list": (2, "agent"),
    "config.mounts": (3, "mounts"), "config.mount_map": (3, "mounts"),
    "config.preopen_ports": (4, "ports"),
}
Problems = dict[int, dict[str, str]]


def field_place(path: str) -> tuple[int, str] | None:
    """The (step, form field) that shows the manager's message for a request field, or None."""
    if path in FIELD_PLACES:
        return FIELD_PLACES[path]
    if path.startswith("config.resources."):
        return 2, "acc"
    head = path
    while "." in head:
        head = head.rsplit(".", 1)[0]
        if head in FIELD_PLACES:
            return FIELD_PLACES[head]
    return None


def _whole(text: str) -> int | None:
    """A whole number typed into a number field; None when it is not one."""
    value = _decimal(text)
    if value is None or value != value.to_integral_value():
        return None
    return int(value)


def _size(amount: Decimal) -> str:
    """Bytes as the size the manager reads: whole MiB as ``<n>m``, else bytes."""
    amount = amount.to_integral_value()
    return f"{int(amount // MiB)}m" if amount % MiB == 0 else str(int(amount))


def _resources(form: LaunchForm, ch: Choices, problems: dict[str, str], _) -> tuple[dict[str, Any], str | None]:
    """The per-container request read from the form: (resources, shared memory or None)."""
    if form.get("preset") != "custom":
        # a preset is the form's shorthand for amounts; the manager said which ones fit (allocatable)
        preset = next((p for p in ch.check.get("presets") or [] if p.get("name") == form.get("preset")), None)
        if preset is None:
            problems["preset"] = _("The preset %(name)s does not exist.", name=form.get("preset"))
            return {}, None
        if not preset.get("allocatable"):
            problems["preset"] = _("The preset %(name)s needs more than what is free.", name=preset["name"])
        shm = parse_bytes_or_none(preset.get("shared_memory"))
        return dict(preset.get("resource_slots") or {}), _size(shm) if shm else None
    resources: dict[str, Any] = {}
    cpu = _whole(form.get("cpu"))
    if cpu is None:
        problems["cpu"] = _("Enter a whole number of cores.")
    else:
        resources["cpu"] = cpu
    mem = _decimal(form.get("mem"))
    if mem is None:
        problems["mem"] = _("Enter a number of GiB.")
    else:
        resources["mem"] = _size(mem * GiB)
    shm_text = None
    shm = _decimal(form.get("shmem")) if form.get("shmem") else Decimal(0)
    if shm is None:
        problems["shmem"] = _("Enter a number of GiB.")
    elif shm != 0:
        shm_text = _size(shm * GiB)
    acc = _decimal(form.get("acc")) if form.get("acc") else Decimal(0)
    if acc is None:
        problems["acc"] = _("Enter a number.")
    elif acc != 0:
        if not form.get("acc_slot"):
            problems["acc"] = _("Choose an accelerator.")
        else:
            resources[form.get("acc_slot")] = f"{acc.normalize():f}"
    return resources, shm_text


def build_request(ctx: PageContext, form: LaunchForm, ch: Choices) -> tuple[Problems, dict[str, Any]]:
    """The POST /session body read from the form, and what could not be read ({step: {field: message}}).
    Parsing only: every rule about the values is the manager's (``check_request``)."""
    _ = ctx._
    p1: dict[str, str] = {}
    p2: dict[str, str] = {}
    p4: dict[str, str] = {}
    body: dict[str, Any] = {"type": form.get("type") if form.get("type") in ("interactive", "batch") else "interactive",
                            "enqueueOnly": True, "reuseIfExists": False}
    config: dict[str, Any] = {}
    # 1 session type
    if form.get("type") not in ("interactive", "batch"):
        p1["type"] = _("Choose interactive or batch.")
    if form.get("name"):
        body["name"] = form.get("name")
    if body["type"] == "batch":
        body["startupCommand"] = form.get("cmd")
        if form.on("sched"):
            if not form.get("starts_at"):
                p1["starts_at"] = _("Choose when the session starts.")
            else:
                body["starts_at"] = form.get("starts_at")
        if form.on("timeout_on"):
            amount = _whole(form.get("timeout"))
            if amount is None:
                p1["timeout"] = _("Enter a whole number.")
            else:
                body["batchTimeout"] = amount * TIMEOUT_UNITS.get(form.get("timeout_unit"), 1)
    group = ch.project["id"] if ch.project else None
    rg = form.get("rg") or (ch.resource_groups[0] if ch.resource_groups else "")
    if form.on("owner") and ctx.session and ctx.session.is_admin:
        if not form.get("owner_ak"):
            p1["owner_email"] = _("Look up the owner's e-mail and choose an access key.")
        else:
            body["owner_access_key"] = form.get("owner_ak")
        if form.get("owner_project"):
            group = form.get("owner_project")
        if form.get("owner_rg"):
            rg = form.get("owner_rg")
    if group:
        body["group"] = group
    else:  # the page has no project to put in the request
        p2["project"] = _("You are not a member of any project; ask your administrator to add you to one.")
    # 2 environments & resources
    if form.image:
        body["image"] = form.image
    environ: dict[str, str] = {}
    for key, value in form.env_vars:
        if key in environ:  # two rows, one variable: the request cannot carry both
            p2["environ"] = _("The variable %(name)s is set twice.", name=key)
        environ[key] = value
    if form.on("hpc"):
        for var, fld in zip(HPC_VARS, ("omp", "openblas"), strict=True):
            threads = _whole(form.get(fld))
            if threads is None or threads < 1:
                p2[fld] = _("Enter a whole number of threads, at least 1.")
            else:
                environ.setdefault(var, str(threads))
    if environ:
        config["environ"] = environ
    if rg:
        config["scaling_group"] = rg
    resources, shm = _resources(form, ch, p2, _)
    config["resources"] = resources
    if shm:
        config["resource_opts"] = {"shmem": shm}
    count = _whole(form.get("count"))
    if count is None:
        p2["count"] = _("Enter a whole number.")
    elif count != 1:
        body["count"] = count
    body["clusterMode"] = form.get("cluster_mode")
    size = _whole(form.get("cluster_size"))
    if size is None:
        p2["cluster_size"] = _("Enter a whole number.")
    else:
        body["clusterSize"] = size
    if form.get("agent"):
        config["agentList"] = [form.get("agent")]
    # 3 data & storage
    if form.mounts:
        config["mounts"] = list(form.mounts)
        aliases = {m: form.aliases[m] for m in form.mounts if form.aliases.get(m)}
        if aliases:
            config["mount_map"] = aliases
    # 4 network
    ports: list[int] = []
    for token in re.split(r"[\s,]+", form.get("ports")):
        if not token:
            continue
        if not token.isdigit():
            p4["ports"] = _("Ports are numbers: %(port)s", port=token)
        elif int(token) not in ports:
            ports.append(int(token))
    if ports:
        config["preopen_ports"] = ports
    body["config"] = config
    return {k: v for k, v in ((1, p1), (2, p2), (4, p4)) if v}, body


def manager_problems(err: APIError) -> tuple[Problems, tuple[str, str] | None]:
    """The manager's refusal on the form: its ``field_errors`` at their fields, the rest above it."""
    problems: Problems = {}
    unplaced: list[str] = []
    fields = err.body.get("field_errors") if isinstance(err.body, dict) else None
    for path, message in (fields or {}).items() if isinstance(fields, dict) else ():
        place = field_place(str(path))
        if place is None:
            unplaced.append(f"{path}: {message}")
        else:
            step_problems = problems.setdefault(place[0], {})
            step_problems.setdefault(place[1], str(message))
    if not problems or unplaced:
        title, message = api_error_text(err)
        return problems, (title, "; ".join(unplaced) if unplaced else message)
    return problems, None


def merge(first: Problems, then: Problems) -> Problems:
    """Both sets of problems; where both name a field, ``first``'s message."""
    out = {step: dict(fields) for step, fields in then.items()}
    for step, fields in first.items():
        out.setdefault(step, {}).update(fields)
    return out


async def check_request(ctx: PageContext, api: Client, form: LaunchForm, ch: Choices
                        ) -> tuple[Problems, dict[str, Any], tuple[str, str] | None]:
    """What is wrong with the form: what could not be read, and the manager's dry run of the
    request (``POST /session/_/validate``); also the body and the manager's message that belongs
    to no field."""
    problems, body = build_request(ctx, form, ch)
    try:
        await api.post("/session/_/validate", json=body)
    except APIError as err:
        refused, general = manager_problems(err)
        return merge(problems, refused), body, general
    return problems, body, None


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


def environment_shown(form: LaunchForm, ch: Choices) -> tuple[str, str | None]:
    """The environment and version the selectors show: the form's, else the first installed one."""
    env_repo = form.get("environment")
    if not env_repo and form.get("version"):
        env_repo = next((e["repo"] for e in ch.environments
                         if any(v["image"] == form.get("version") for v in e["versions"])), "")
    if not env_repo and ch.environments:
        env_repo = next((e["repo"] for e in ch.environments if e["installed"]), ch.environments[0]["repo"])
    env = next((e for e in ch.environments if e["repo"] == env_repo), None)
    version = form.get("version") or None
    if env and version not in {v["image"] for v in env["versions"]}:
        version = next((v["image"] for v in env["versions"] if v["installed"]), env["versions"][0]["image"])
    return env_repo, version


def choose_environment(form: LaunchForm, ch: Choices) -> None:
    """A form that names no version asks for the one the selectors show."""
    if not form.get("version"):
        version = environment_shown(form, ch)[1]
        if version:
            form.values["version"] = version


def render_launcher(ctx: PageContext, request: Request, form: LaunchForm, ch: Choices, *,
                    errors: Problems, body: dict[str, Any], general: tuple[str, str] | None = None,
                    status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    ctx.section = "launcher"
    env_repo, version = environment_shown(form, ch)
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
        choose_environment(form, ch)
        errors, body, refused = await check_request(ctx, api, form, ch)
    return render_launcher(ctx, request, form, ch, errors=errors, body=body,
                           general=ch.errors[0] if ch.errors else refused)


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
        choose_environment(form, ch)
        errors, body, refused = await check_request(ctx, api, form, ch)
        swap_page = {"HX-Retarget": "#launcher", "HX-Reswap": "outerHTML", "HX-Reselect": "#launcher",
                     "HX-Push-Url": "/session/start?" + form.query(step=5, nomount_ok=None),
                     "HX-Trigger": json.dumps({CLOSE_MODAL_EVENT: True})}
        if errors or refused:
            return render_launcher(ctx, request, form, ch, errors=errors, body=body, general=refused,
                                   headers=swap_page)
        if not body["config"].get("mounts") and not form.on("nomount_ok"):
            return ctx.state.renderer.render(request, "dialogs/launcher_nomount.html")
        try:
            created = await api.post("/session", json=body)
        except APIError as err:
            errors, general = manager_problems(err)
            return render_launcher(ctx, request, form, ch, errors=errors, body=body, general=general,
                                   headers=swap_page)
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

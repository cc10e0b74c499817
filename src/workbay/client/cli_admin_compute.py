"""`workbay admin agent|resource-group|preset|image|recalculate-usage`: compute administration.

Tables show memory in binary units (GiB/MiB); ``--json`` prints the API's answer as it is.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import click
from rich.markup import escape

from workbay.common.domain import AgentStatus

from .commands import call, json_option, parse_pairs, run
from .formatting import fmt_age, fmt_amount, fmt_bytes, fmt_slots, fmt_time, slot_order
from .output import Markup, console, new_table, print_fields, print_json

AGENT_STATUS_STYLE: dict[str, str] = {AgentStatus.ALIVE: "green", AgentStatus.LOST: "red", AgentStatus.TERMINATED: "dim"}

def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _used_of(slot: str, used: dict[str, Any], total: dict[str, Any]) -> str:
    if slot not in total and slot not in used:
        return "-"
    return f"{fmt_amount(slot, used.get(slot, 0))} / {fmt_amount(slot, total.get(slot))}"


def _status(value: str | None) -> str:
    style = AGENT_STATUS_STYLE.get(value or "")
    return f"[{style}]{value}[/{style}]" if style else escape(value or "-")


# -- agents ----------------------------------------------------------------------------------------
@click.group()
def agent() -> None:
    """Agents (compute nodes)."""


@agent.command("ls")
@click.option("--status", type=click.Choice([s.value for s in AgentStatus], case_sensitive=False))
@click.option("--resource-group")
@json_option
@run
async def agent_ls(status, resource_group, as_json):
    """List agents with their capacity and what is in use."""
    data = await call("GET", "/admin/agents", params={"status": status, "resource_group": resource_group})
    if as_json:
        print_json(data)
        return
    table = new_table("id", "status", "schedulable", "resource group", "arch", "cpu used", "mem used",
                      "other slots", "address", "heartbeat", title="Agents")
    for a in data.get("items") or []:
        total, used = a.get("available_slots") or {}, a.get("occupied_slots") or {}
        others = [f"{k} {fmt_amount(k, used.get(k, 0))}/{fmt_amount(k, total[k])}"
                  for k in slot_order(total) if k not in ("cpu", "mem")]
        table.add_row(escape(a.get("id") or ""), _status(a.get("status")),
                      "[green]yes[/green]" if a.get("schedulable") else "[yellow]no[/yellow]",
                      escape(a.get("resource_group") or "-"), escape(a.get("architecture") or "-"),
                      _used_of("cpu", used, total), _used_of("mem", used, total), escape(", ".join(others) or "-"),
                      escape(a.get("addr") or "-"), fmt_age(a.get("last_heartbeat")))
    console.print(table)
    console.print(f"[dim]{data.get('total_count', 0)} agents[/dim]")


agent.add_command(agent_ls, "list")


async def _find_agent(agent_id: str) -> dict[str, Any]:
    data = await call("GET", "/admin/agents")
    for a in data.get("items") or []:
        if a.get("id") == agent_id:
            return a
    raise LookupError(f"No such agent: {agent_id}")


@agent.command("info")
@click.argument("agent_id")
@json_option
@run
async def agent_info(agent_id, as_json):
    """One agent: status, slots (capacity, used, free), accelerators, live statistics."""
    a = await _find_agent(agent_id)
    if as_json:
        print_json(a)
        return
    print_fields([(k, v) for k, v in [
        ("ID", a.get("id")), ("Status", Markup(_status(a.get("status")))),
        ("Status info", a.get("status_info")), ("Schedulable", a.get("schedulable")),
        ("Resource group", a.get("resource_group")), ("Region", a.get("region")),
        ("Architecture", a.get("architecture")), ("Address", a.get("addr")), ("Version", a.get("version")),
        ("First contact", fmt_time(a.get("first_contact"))),
        ("Last heartbeat", f"{fmt_time(a.get('last_heartbeat'))} ({fmt_age(a.get('last_heartbeat'))})"),
        ("Lost at", fmt_time(a.get("lost_at")) if a.get("lost_at") else None),
        ("Accelerators", a.get("accelerators") or None),
    ] if v is not None], title=f"Agent {a.get('id')}")
    total, used = a.get("available_slots") or {}, a.get("occupied_slots") or {}
    table = new_table("slot", "capacity", "used", "free", title="Resource slots")
    for k in slot_order({**total, **used}):
        try:
            free = fmt_amount(k, Decimal(str(total.get(k, 0))) - Decimal(str(used.get(k, 0))))
        except (ArithmeticError, ValueError):  # not a number (InvalidOperation is an ArithmeticError)
            free = "-"
        table.add_row(escape(k), fmt_amount(k, total.get(k)), fmt_amount(k, used.get(k, 0)), free)
    console.print(table)
    stat = a.get("live_stat") or {}
    if stat:
        table = new_table("metric", "value", title="Live statistics")
        for key, value in sorted(stat.items()):
            if isinstance(value, dict) and "current" in value:
                value = value.get("current")
                sized = "mem" in key or "bytes" in key or key.startswith(("io_", "net_"))
                shown = fmt_bytes(value) if sized else str(value)
            else:
                shown = str(value)
            table.add_row(escape(key), escape(shown))
        console.print(table)


@agent.command("schedulable")
@click.argument("agent_id")
@click.argument("state", type=click.Choice(["on", "off"]))
@json_option
@run
async def agent_schedulable(agent_id, state, as_json):
    """Let the scheduler place new sessions on the agent (on), or stop it (off; running ones stay)."""
    data = await call("PATCH", f"/admin/agents/{agent_id}", json={"schedulable": state == "on"})
    if as_json:
        print_json(data)
        return
    console.print(f"Agent {escape(agent_id)} is {'schedulable' if data.get('schedulable') else 'not schedulable'}"
                  f"{'' if data.get('schedulable') else ' (running sessions stay)'}.")


# -- resource groups -------------------------------------------------------------------------------
@click.group("resource-group")
def resource_group() -> None:
    """Resource groups (scaling groups): scheduler, allowed session types, who may use them."""


RG_COLUMNS = ("name", "active", "public", "scheduler", "agent selection", "session types", "pending timeout",
              "retries to skip", "description")


@resource_group.command("ls")
@json_option
@run
async def rg_ls(as_json):
    """List resource groups."""
    data = await call("GET", "/admin/resource-groups")
    if as_json:
        print_json(data)
        return
    table = new_table(*RG_COLUMNS, title="Resource groups")
    for rg in data.get("items") or []:
        table.add_row(escape(rg["name"]), "yes" if rg.get("is_active") else "[yellow]no[/yellow]",
                      "yes" if rg.get("is_public") else "no", escape(str(rg.get("scheduler"))),
                      escape(str(rg.get("agent_selection"))), escape(", ".join(rg.get("allowed_session_types") or [])),
                      _timeout(rg.get("pending_timeout")), str(rg.get("retries_to_skip")),
                      escape(rg.get("description") or "-"))
    console.print(table)


resource_group.add_command(rg_ls, "list")


def _timeout(value: Any) -> str:
    if not value:
        return "none"
    return f"{float(value):g}s"


def _print_rg(rg: dict[str, Any]) -> None:
    print_fields([
        ("Name", rg.get("name")), ("Description", rg.get("description") or None), ("Active", rg.get("is_active")),
        ("Public", rg.get("is_public")), ("Scheduler", rg.get("scheduler")),
        ("Agent selection", rg.get("agent_selection")),
        ("Allowed session types", ", ".join(rg.get("allowed_session_types") or [])),
        ("Pending timeout", _timeout(rg.get("pending_timeout"))), ("Retries to skip", rg.get("retries_to_skip")),
        ("WSProxy address", rg.get("wsproxy_addr")), ("Domains", ", ".join(rg.get("domains") or []) or None),
        ("Projects", ", ".join(rg.get("projects") or []) or None), ("Created", fmt_time(rg.get("created_at"))),
    ], title=f"Resource group {rg.get('name')}")


@resource_group.command("info")
@click.argument("name")
@json_option
@run
async def rg_info(name, as_json):
    """One resource group."""
    rg = await call("GET", f"/admin/resource-groups/{name}")
    print_json(rg) if as_json else _print_rg(rg)


async def _project_ids(refs: tuple[str, ...]) -> list[str]:
    """Project ids for ids or names (names are looked up among the projects you can see)."""
    out: list[str] = []
    for ref in refs:
        try:
            out.append(str(uuid.UUID(ref)))
            continue
        except ValueError:
            pass
        data = await call("GET", "/admin/projects", params={"q": ref})
        items = data.get("items", data) if isinstance(data, dict) else data
        matches = [p for p in items or [] if p.get("name") == ref]
        if len(matches) != 1:
            raise click.BadParameter(f"{'no' if not matches else 'more than one'} project named {ref!r}; "
                                     "give its id", param_hint="--project")
        out.append(str(matches[0]["id"]))
    return out


def rg_options(creating: bool):
    """Options for every resource-group field (defaults only when creating)."""

    def deco(fn):
        opts = [
            click.option("--description"),
            click.option("--active/--inactive", "is_active", default=True if creating else None,
                         help="Inactive groups take no new sessions."),
            click.option("--public/--private", "is_public", default=True if creating else None,
                         help="Public groups are open to every project; private ones to --domain/--project."),
            click.option("--scheduler", type=click.Choice(["fifo", "lifo", "drf"]),
                         default="fifo" if creating else None, show_default=creating),
            click.option("--allowed-session-types", "session_types", metavar="TYPES",
                         help="Comma-separated: interactive,batch,inference."),
            click.option("--pending-timeout", type=click.FloatRange(0),
                         help="Seconds a session may stay PENDING before it is cancelled (0 = forever)."),
            click.option("--retries-to-skip", type=click.IntRange(0),
                         help="Scheduling attempts after which a blocked head-of-line session is skipped."),
            click.option("--agent-selection", type=click.Choice(["dispersed", "concentrated"])),
            click.option("--wsproxy-addr", help="App-proxy address for this group."),
            click.option("--domain", "domains", multiple=True, help="Allow this domain (repeatable; replaces)."),
            click.option("--project", "projects", multiple=True,
                         help="Allow this project, by name or id (repeatable; replaces)."),
        ]
        if not creating:
            opts += [click.option("--no-domains", is_flag=True, help="Remove every allowed domain."),
                     click.option("--no-projects", is_flag=True, help="Remove every allowed project.")]
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return deco


async def _rg_body(description, is_active, is_public, scheduler, session_types, pending_timeout, retries_to_skip,
                   agent_selection, wsproxy_addr, domains, projects, no_domains=False, no_projects=False
                   ) -> dict[str, Any]:
    body = _drop_none(dict(description=description, is_active=is_active, is_public=is_public, scheduler=scheduler,
                           pending_timeout=pending_timeout, retries_to_skip=retries_to_skip,
                           agent_selection=agent_selection, wsproxy_addr=wsproxy_addr))
    if session_types:
        body["allowed_session_types"] = [t.strip() for t in session_types.split(",") if t.strip()]
    if domains or no_domains:
        body["domains"] = list(domains)
    if projects or no_projects:
        body["projects"] = await _project_ids(projects)
    return body


@resource_group.command("create")
@click.argument("name")
@rg_options(creating=True)
@json_option
@run
async def rg_create(name, as_json, **fields):
    """Create a resource group."""
    body = {"name": name, **(await _rg_body(**fields))}
    rg = await call("POST", "/admin/resource-groups", json=body)
    print_json(rg) if as_json else _print_rg(rg)


@resource_group.command("update")
@click.argument("name")
@rg_options(creating=False)
@json_option
@run
async def rg_update(name, as_json, **fields):
    """Change a resource group's fields (only those given)."""
    body = await _rg_body(**fields)
    if not body:
        raise click.UsageError("Nothing to change: give at least one option.")
    rg = await call("PATCH", f"/admin/resource-groups/{name}", json=body)
    print_json(rg) if as_json else _print_rg(rg)


@resource_group.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this resource group?")
@run
async def rg_delete(name):
    """Delete a resource group (refused while agents or live sessions use it)."""
    await call("DELETE", f"/admin/resource-groups/{name}")
    console.print(f"Resource group {escape(name)} is deleted.")


# -- presets ---------------------------------------------------------------------------------------
@click.group()
def preset() -> None:
    """Resource presets (named cpu/mem/accelerator sizes offered when starting sessions)."""


def _print_presets(items: list[dict[str, Any]]) -> None:
    table = new_table("name", "cpu", "mem", "shared memory", "other slots", "resource group", title="Resource presets")
    for p in items:
        slots = p.get("resource_slots") or {}
        table.add_row(escape(p["name"]), fmt_amount("cpu", slots.get("cpu")), fmt_amount("mem", slots.get("mem")),
                      fmt_bytes(p["shared_memory"]) if p.get("shared_memory") else "-",
                      escape(fmt_slots(slots, skip=("cpu", "mem"))), escape(p.get("resource_group") or "any"))
    console.print(table)


@preset.command("ls")
@json_option
@run
async def preset_ls(as_json):
    """List resource presets."""
    data = await call("GET", "/admin/resource-presets")
    print_json(data) if as_json else _print_presets(data.get("items") or [])


preset.add_command(preset_ls, "list")


def preset_options(creating: bool):
    def deco(fn):
        for opt in reversed([
            click.option("--cpu", required=creating, help="CPU cores, e.g. 2 or 0.5."),
            click.option("--mem", required=creating, help="Memory, e.g. 4g or 512m."),
            click.option("--shmem", help="Shared memory (/dev/shm), e.g. 64m; at most --mem ('' clears)."),
            click.option("--slot", "slots", multiple=True, metavar="SLOT=AMOUNT",
                         help="Another slot, e.g. cuda.device=1 or cuda.shares=0.5 (repeatable)."),
            click.option("--resource-group", help="Offer it only in this group ('' = every group)."),
        ]):
            fn = opt(fn)
        return fn

    return deco


@preset.command("create")
@click.argument("name")
@preset_options(creating=True)
@json_option
@run
async def preset_create(name, cpu, mem, shmem, slots, resource_group, as_json):
    """Create a resource preset."""
    body = _drop_none({"name": name, "resource_slots": {"cpu": cpu, "mem": mem, **parse_pairs(slots, "--slot")},
                       "shared_memory": shmem or None, "resource_group": resource_group or None})
    data = await call("POST", "/admin/resource-presets", json=body)
    print_json(data) if as_json else _print_presets([data])


@preset.command("update")
@click.argument("name")
@preset_options(creating=False)
@json_option
@run
async def preset_update(name, cpu, mem, shmem, slots, resource_group, as_json):
    """Change a preset (slots not given keep their amounts)."""
    body: dict[str, Any] = {}
    if cpu is not None or mem is not None or slots:
        current = next((p for p in (await call("GET", "/admin/resource-presets")).get("items") or []
                        if p["name"] == name), None)
        if current is None:
            raise LookupError(f"No such resource preset: {name}")
        merged = dict(current.get("resource_slots") or {})
        merged.update(_drop_none({"cpu": cpu, "mem": mem}))
        merged.update(parse_pairs(slots, "--slot"))
        body["resource_slots"] = merged
    if shmem is not None:
        body["shared_memory"] = shmem or None
    if resource_group is not None:
        body["resource_group"] = resource_group or None
    if not body:
        raise click.UsageError("Nothing to change: give at least one option.")
    data = await call("PATCH", f"/admin/resource-presets/{name}", json=body)
    print_json(data) if as_json else _print_presets([data])


@preset.command("delete")
@click.argument("name")
@run
async def preset_delete(name):
    """Delete a resource preset."""
    await call("DELETE", f"/admin/resource-presets/{name}")
    console.print(f"Preset {escape(name)} is deleted.")


# -- images ----------------------------------------------------------------------------------------
@click.group("image")
def image() -> None:
    """The manager's image catalog: minimum resources, apps, rescan."""


def _apps(i: dict[str, Any]) -> str:
    return ", ".join(f"{p.get('name')}:{','.join(str(x) for x in p.get('ports') or [])}"
                     for p in i.get("service_ports") or []) or "-"


@image.command("ls")
@click.option("--installed", is_flag=True, help="Only images some agent has.")
@json_option
@run
async def image_ls(installed, as_json):
    """List the catalog's images."""
    data = await call("GET", "/images", params={"installed": "true" if installed else None})
    if as_json:
        print_json(data)
        return
    table = new_table("name", "id", "arch", "min cpu", "min mem", "apps", "installed on", "size", title="Images")
    for i in data.get("items") or []:
        mins = i.get("min_slots") or {}
        table.add_row(escape(i["name"]), str(i.get("id", ""))[:8], escape(i.get("architecture") or "-"),
                      fmt_amount("cpu", mins.get("cpu")), fmt_amount("mem", mins.get("mem")), escape(_apps(i)),
                      escape(", ".join(i.get("installed_on") or []) or "-"),
                      fmt_bytes(i["size_bytes"]) if i.get("size_bytes") else "-")
    console.print(table)


image.add_command(image_ls, "list")


def _print_image(i: dict[str, Any]) -> None:
    print_fields([(k, v) for k, v in [
        ("Name", i.get("name")), ("ID", i.get("id")), ("Registry", i.get("registry")), ("Tag", i.get("tag")),
        ("Architecture", i.get("architecture")), ("Digest", i.get("digest")),
        ("Size", fmt_bytes(i["size_bytes"]) if i.get("size_bytes") else None),
        ("Minimum resources", fmt_slots(i.get("min_slots"))), ("Apps", _apps(i)),
        ("Installed on", ", ".join(i.get("installed_on") or []) or "no agent"),
        ("Modified", fmt_time(i.get("modified_at")) if i.get("modified_at") else None),
    ] if v is not None], title=f"Image {i.get('name')}")


@image.command("info")
@click.argument("ref", metavar="ID_OR_NAME")
@json_option
@run
async def image_info(ref, as_json):
    """One image (by id or full name)."""
    found = await _find_image(ref)
    print_json(found) if as_json else _print_image(found)


async def _find_image(ref: str) -> dict[str, Any]:
    """An image by id, full name (``localhost/workbay/python:3.11``) or short name (``python:3.11``)."""
    items = (await call("GET", "/images")).get("items") or []
    found = next((i for i in items if ref in (i.get("id"), i.get("name"))), None)
    if found is None:
        short = [i for i in items if i.get("name", "").endswith("/" + ref)]
        if len(short) > 1:
            raise LookupError(f"{ref} matches {len(short)} images; give the full name or the id")
        found = short[0] if short else None
    if found is None:
        raise LookupError(f"No such image: {ref}")
    return found


@image.command("set-min")
@click.argument("ref", metavar="ID_OR_NAME")
@click.argument("slots", nargs=-1, required=True, metavar="SLOT=AMOUNT...")
@json_option
@run
async def image_set_min(ref, slots, as_json):
    """Set an image's minimum resources, e.g. `set-min ID cpu=1 mem=1g` (smaller requests are raised)."""
    min_slots = parse_pairs(slots, "SLOT=AMOUNT")
    image_id = (await _find_image(ref))["id"]  # names hold '/', which a path segment cannot
    data = await call("PATCH", f"/admin/images/{image_id}", json={"min_slots": min_slots})
    print_json(data) if as_json else _print_image(data)


@image.command("rescan")
@json_option
@run
async def image_rescan(as_json):
    """Ask every live agent to rescan its local images and refresh the catalog."""
    data = await call("POST", "/admin/images/rescan")
    if as_json:
        print_json(data)
        return
    console.print(f"Scanned {len(data.get('scanned_agents') or [])} agents "
                  f"({escape(', '.join(data.get('scanned_agents') or []) or 'none')}); "
                  f"the catalog has {len(data.get('images') or [])} images.")
    for f in data.get("failed") or []:
        console.print(f"[red]✗[/red] {escape(str(f.get('agent')))}: {escape(str(f.get('error')))}")


# -- usage -----------------------------------------------------------------------------------------
@click.command("recalculate-usage")
@run
async def recalculate_usage():
    """Rebuild the agents' occupied slots from the kernels that are really alive (superadmin)."""
    await call("POST", "/resource/recalculate-usage")
    console.print("Resource usage recalculated from live kernels.")


COMMANDS = (agent, resource_group, preset, image, recalculate_usage)

"""`workbay session …`: compute sessions — create (with live progress), ls, info, exec, logs, events,
history, rename, rm, restart, download.

Progress while a session starts comes from polling ``GET /session/{id}/status-history`` every half
second: it carries every transition (none is missed between two polls) and, while the session is
PENDING, the scheduler's predicates of its last attempt.  ``events`` reads ``GET /events/session``
(SSE) through :func:`workbay.client.sessions.sse_events`; ``download`` uses the same module.  Only
commands and their presentation live here: the SDK work is in ``sessions``, value formatting in
``formatting``, shared command glue in ``commands``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from workbay.common.domain import (
    DEAD_STATUSES,
    RUNNING_STATUSES,
    SESSION_NAME_RULE,
    WAITING_STATUSES,
    SessionStatus,
)

from . import sessions
from .commands import call, json_option, owner_option, parse_duration, parse_pairs, run
from .credentials import make_client
from .formatting import (
    fmt_age,
    fmt_amount,
    fmt_bytes,
    fmt_duration,
    fmt_slots,
    fmt_time,
    parse_time,
    short_image,
    styled_status,
)
from .output import Markup, console, err_console, new_table, print_fields, print_json, warn_stream_interrupted
from .sdk import APIError, Client

POLL_INTERVAL = 0.5


# -- the group -------------------------------------------------------------------------------------
@click.group()
def session() -> None:
    """Compute sessions: create, list, inspect, run code, follow, terminate."""


# -- create ----------------------------------------------------------------------------------------
class _Watch:
    """What the progress display knows about one session."""

    def __init__(self, sid: str, name: str) -> None:
        self.id, self.name = sid, name
        self.status = "PENDING"
        self.reason = ""
        self.seen = 0
        self.failed: list[dict[str, Any]] = []
        self.sched_msg = ""
        self.retries = 0
        self.done = False


def _failed_predicates(scheduling: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in scheduling.get("predicates") or [] if not p.get("passed")]


class _Progress:
    """Spinner lines under the scrolling transition log (terminal only)."""

    def __init__(self, watches: list[_Watch]) -> None:
        self.watches = watches
        self.t0 = time.monotonic()
        self.spinner = Spinner("dots")

    def __rich__(self) -> Group:
        elapsed = fmt_duration(time.monotonic() - self.t0)
        lines: list[Any] = []
        for w in self.watches:
            if w.done:
                continue
            grid = Table.grid(padding=(0, 1))
            grid.add_row(self.spinner, Text.from_markup(
                f"[bold]{escape(w.name)}[/bold] {styled_status(w.status)} [dim]{elapsed}"
                + (f" · scheduling attempt {w.retries}" if w.status == "PENDING" and w.retries else "")
                + "[/dim]"))
            lines.append(grid)
            if w.status == "PENDING":
                for p in w.failed:
                    lines.append(Text(f"    ✗ {p.get('name')}: {p.get('message')}", style="yellow",
                                      overflow="ellipsis", no_wrap=True))
        return Group(*lines)


async def watch_sessions(client: Client, watches: list[_Watch], max_wait: float, until_done: bool = False,
                         quiet: bool = False) -> None:
    """Poll until every session runs (or has ended; with ``until_done`` until it has ended), or
    ``max_wait`` seconds pass (0 = no limit).  Transitions are printed to stderr as they happen."""
    t0 = time.monotonic()
    interactive = err_console.is_terminal and not quiet
    progress = _Progress(watches)
    live = Live(progress, console=err_console, transient=True, refresh_per_second=8) if interactive else None

    def log(line: str) -> None:
        if not quiet:
            err_console.print(line, highlight=False, soft_wrap=True)

    async def poll(w: _Watch) -> None:
        hist = await client.get(f"/session/{w.id}/status-history")
        entries = hist.get("result") or []
        for e in entries[w.seen:]:
            reason = f" [dim]({escape(str(e.get('reason')))})[/dim]" if e.get("reason") else ""
            log(f"[dim]{fmt_duration(time.monotonic() - t0):>6}[/dim] [bold]{escape(w.name)}[/bold] "
                f"{styled_status(e.get('status'))}{reason}")
        w.seen = len(entries)
        if entries:
            w.status, w.reason = entries[-1].get("status") or w.status, entries[-1].get("reason") or ""
        scheduling = hist.get("scheduling") or {}
        w.retries = scheduling.get("retries") or 0
        failed = _failed_predicates(scheduling) if w.status == "PENDING" else []
        msg = "; ".join(f"{p.get('name')}: {p.get('message')}" for p in failed)
        if msg and msg != w.sched_msg and not interactive:
            log(f"       [yellow]{escape(w.name)} waits: {escape(msg)}[/yellow]")  # (no live view)
        w.failed, w.sched_msg = failed, msg
        w.done = w.status in DEAD_STATUSES if until_done else w.status not in WAITING_STATUSES

    with live or contextlib.nullcontext():
        while True:
            await asyncio.gather(*(poll(w) for w in watches if not w.done))
            if all(w.done for w in watches):
                return
            if max_wait and time.monotonic() - t0 >= max_wait:
                return
            await asyncio.sleep(POLL_INTERVAL)


def _service_port_rows(ports: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    rows = []
    for p in ports or []:
        container = ", ".join(str(x) for x in (p.get("container_ports") or p.get("ports") or []))
        host = p.get("kernel_host") or "127.0.0.1"
        hosts = ", ".join(f"{host}:{x}" for x in p.get("host_ports") or []) or "-"
        rows.append((str(p.get("name")), str(p.get("protocol")), container or "-", hosts))
    return rows


def print_service_ports(ports: list[dict[str, Any]], title: str = "Service ports") -> None:
    rows = _service_port_rows(ports)
    if not rows:
        return
    table = new_table("app", "protocol", "container port", "host address", title=title)
    for row in rows:
        table.add_row(*(escape(x) for x in row))
    console.print(table)


def _summarize_created(info: dict[str, Any], watch: _Watch, timed_out: bool) -> int:
    """Print one session's outcome; returns its exit status for the command."""
    name, status = escape(info.get("name") or watch.name), info.get("status") or watch.status
    sid = info.get("id") or watch.id
    reason = info.get("status_info") or watch.reason
    if status in RUNNING_STATUSES:
        started = parse_time(info.get("started_at"))
        created = parse_time(info.get("created_at"))
        took = f" in {fmt_duration((started - created).total_seconds())}" if started and created else ""
        console.print(f"[green]✓[/green] Session [bold]{name}[/bold] is {styled_status(status)}{took} "
                      f"[dim](id {sid})[/dim]")
        print_service_ports(info.get("service_ports") or [])
        if info.get("type") == "batch":
            console.print("[dim]A batch session ends with its startup command: `workbay session info "
                          f"{name}` shows the result (or create it with --wait).[/dim]")
        return 0
    if status in WAITING_STATUSES:
        if timed_out:
            console.print(f"[yellow]…[/yellow] Session [bold]{name}[/bold] is still {styled_status(status)} "
                          f"[dim](id {sid})[/dim]; it stays queued and starts when it can.")
        else:
            console.print(f"Session [bold]{name}[/bold] is enqueued: {styled_status(status)} [dim](id {sid})[/dim]")
        sched = (info.get("status_data") or {}).get("scheduler") or {}
        for p in _failed_predicates(sched):
            console.print(f"  [yellow]✗ {escape(str(p.get('name')))}[/yellow]: {escape(str(p.get('message')))}")
        return 0
    if status == SessionStatus.TERMINATED and info.get("type") == "batch":
        result = info.get("result") or "-"
        style = "green" if result == "SUCCESS" else "red"
        console.print(f"Batch session [bold]{name}[/bold] ended: [{style}]{result}[/{style}] "
                      f"(exit code {info.get('exit_code')}, {escape(str(reason))}) [dim](id {sid})[/dim]")
        return 0 if result == "SUCCESS" else 1
    detail = ""
    data = {k: v for k, v in (info.get("status_data") or {}).items() if k != "scheduler"}
    if data:
        detail = f": {escape(json.dumps(data))}"
    console.print(f"[red]✗[/red] Session [bold]{name}[/bold] is {styled_status(status)} "
                  f"({escape(str(reason))}){detail} [dim](id {sid})[/dim]")
    return 1


@session.command("create")
@click.argument("image")
@click.option("-n", "--name", help=f"Session name ({SESSION_NAME_RULE}); default generated.")
@click.option("-t", "--type", "session_type", type=click.Choice(["interactive", "batch", "inference"]),
              default="interactive", show_default=True)
@click.option("--startup-command", help="Batch: the command to run (its exit code decides the result).")
@click.option("--starts-at", help="Batch: start at an ISO time or after a delay (30s, 10m, 1h).")
@click.option("--batch-timeout", help="Batch: terminate after this long (90, 10m, 2h).")
@click.option("-r", "-c", "--resources", "resources", multiple=True, metavar="SLOT=AMOUNT",
              help="Resources, repeatable or comma-separated: -c cpu=2 -c mem=4g -c cuda.shares=0.5.")
@click.option("--shmem", help="Shared memory (/dev/shm), e.g. 256m; at most mem.")
@click.option("-e", "--env", "envs", multiple=True, metavar="KEY=VALUE", help="Environment variable (repeatable).")
@click.option("-g", "--group", "project", metavar="PROJECT", help="Project name or id (default: default).")
@click.option("--resource-group", "--scaling-group", "resource_group", help="Resource group to run in.")
@click.option("--cluster-size", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--cluster-mode", type=click.Choice(["single-node", "multi-node"]), default="single-node",
              show_default=True)
@click.option("-m", "--mount", "mounts", multiple=True, metavar="FOLDER[:PATH]",
              help="Mount a storage folder (at /home/work/FOLDER, or PATH); repeatable.")
@click.option("--preopen-port", "preopen_ports", type=click.IntRange(1024, 65535), multiple=True,
              help="Container port to expose (repeatable).")
@click.option("--bootstrap-script", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Shell script run once before the session is ready.")
@click.option("--depends-on", "dependencies", multiple=True, metavar="SESSION",
              help="Start only after this session (name or id) succeeded (repeatable).")
@click.option("--tag", help="Free-form tag.")
@click.option("--arch", "architecture", help="Image architecture (default: the agents').")
@click.option("--agent", "agents", multiple=True, help="Superadmin: run on this agent (repeatable).")
@click.option("--owner", "owner_access_key", metavar="ACCESS_KEY", help="Admin: create for this keypair's user.")
@click.option("--count", type=click.IntRange(1, 100), default=1, show_default=True,
              help="N identical sessions (named NAME-1 … NAME-N).")
@click.option("--no-reuse", is_flag=True, help="Fail if a live session has this name (default: reuse it).")
@click.option("--enqueue-only", is_flag=True, help="Return once the session is queued.")
@click.option("--max-wait", type=click.FloatRange(0), default=0, show_default=True,
              help="Stop watching after S seconds (0 = until it runs); the session stays queued.")
@click.option("--wait", "wait_done", is_flag=True,
              help="Batch: wait until the task ends; the exit status follows its result.")
@json_option
@run
async def create(image, name, session_type, startup_command, starts_at, batch_timeout, resources, shmem, envs,
                 project, resource_group, cluster_size, cluster_mode, mounts, preopen_ports, bootstrap_script,
                 dependencies, tag, architecture, agents, owner_access_key, count, no_reuse, enqueue_only,
                 max_wait, wait_done, as_json):
    """Start a session from IMAGE and show its progress until it runs."""
    config: dict[str, Any] = {}
    if resources:
        config["resources"] = parse_pairs(resources, "--resources")
    if shmem:
        config["resource_opts"] = {"shmem": shmem}
    if envs:
        config["environ"] = parse_pairs(envs, "--env", split_commas=False)
    if resource_group:
        config["scaling_group"] = resource_group
    if preopen_ports:
        config["preopen_ports"] = list(preopen_ports)
    if mounts:
        config["mounts"] = [m.partition(":")[0] for m in mounts]
        mount_map = {m.partition(":")[0]: m.partition(":")[2] for m in mounts if m.partition(":")[2]}
        if mount_map:
            config["mount_map"] = mount_map
    if agents:
        config["agentList"] = list(agents)
    body: dict[str, Any] = {"image": image, "type": session_type, "clusterSize": cluster_size,
                            "clusterMode": cluster_mode, "config": config, "enqueueOnly": True,
                            "reuseIfExists": not no_reuse}
    optional = {"name": name, "group": project, "startupCommand": startup_command, "starts_at": starts_at,
                "tag": tag, "architecture": architecture, "owner_access_key": owner_access_key,
                "dependencies": list(dependencies) or None}
    body.update({k: v for k, v in optional.items() if v is not None})
    if batch_timeout:
        body["batchTimeout"] = parse_duration(batch_timeout, "--batch-timeout")
    if count > 1:
        body["count"] = count
    if bootstrap_script:
        body["bootstrap_script"] = base64.b64encode(bootstrap_script.read_bytes()).decode()

    async with make_client() as client:
        created = await client.post("/session", json=body)
        listed = created.get("sessions") or [{"sessionId": created["sessionId"],
                                              "sessionName": created["sessionName"]}]
        watches = [_Watch(s["sessionId"], s["sessionName"]) for s in listed]
        if created.get("created") is False:
            err_console.print(f"Reusing the live session [bold]{escape(created['sessionName'])}[/bold].")
        elif not as_json:
            what = (f"{len(watches)} sessions" if len(watches) > 1
                    else f"session {watches[0].name} [dim](id {watches[0].id})[/dim]")
            err_console.print(f"Creating {what} from {escape(image)}", highlight=False, soft_wrap=True)
        timed_out = False
        if not enqueue_only:
            try:
                await watch_sessions(client, watches, max_wait, until_done=wait_done)
            except (KeyboardInterrupt, asyncio.CancelledError):
                err_console.print("[yellow]Stopped watching; the sessions stay "
                                  "(`workbay session rm NAME` cancels them).[/yellow]")
                raise
            timed_out = not all(w.done for w in watches)
        infos = [await client.get(f"/session/{w.id}") for w in watches]
    if as_json:
        out = []
        for w, info in zip(watches, infos, strict=False):
            status = info.get("status")
            out.append({"sessionId": w.id, "sessionName": info.get("name", w.name),
                        "status": "TIMEOUT" if timed_out and status in WAITING_STATUSES else status,
                        "statusInfo": info.get("status_info"), "result": info.get("result"),
                        "exitCode": info.get("exit_code"), "servicePorts": info.get("service_ports") or [],
                        "created": created.get("created", True)})
        print_json(out[0] if count == 1 else {"sessions": out})
        failed = (SessionStatus.ERROR, SessionStatus.CANCELLED)
        codes = [0 if o["status"] not in failed and o["result"] != "FAILURE" else 1 for o in out]
    else:
        codes = [_summarize_created(info, w, timed_out) for w, info in zip(watches, infos, strict=False)]
    if any(codes):
        sys.exit(1)


# -- list / info / history -------------------------------------------------------------------------
@session.command("ls")
@click.option("-s", "--status", default="live", show_default=True,
              help="running, pending, live, finished, all, or statuses comma-separated (RUNNING,ERROR).")
@click.option("--type", "session_type", type=click.Choice(["interactive", "batch", "inference"]))
@click.option("-a", "--all-users", is_flag=True, help="Admins: every user's sessions (in your scope).")
@click.option("--owner", "owner_email", metavar="EMAIL", help="Only this user's sessions (with --all-users).")
@click.option("--project", "project_id", metavar="PROJECT_ID", help="Only this project's sessions.")
@click.option("-q", "--query", help="Name contains.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@json_option
@run
async def ls(status, session_type, all_users, owner_email, project_id, query, limit, offset, as_json):
    """List sessions (live ones by default)."""
    params = {"status": None if status == "all" else status, "type": session_type,
              "all": "true" if all_users or owner_email else None, "owner": owner_email,
              "project_id": project_id, "q": query, "limit": limit, "offset": offset}
    data = await call("GET", "/sessions", params=params)
    if as_json:
        print_json(data)
        return
    items = data.get("items") or []
    if not items and not offset:
        console.print(f"No sessions{'' if status == 'all' else f' ({status})'}.")
        return
    show_owner = all_users or owner_email
    show_result = any(i.get("type") == "batch" for i in items)
    cols = ["name", "id", "type", "status", "image", "resources", "agent", "created"]
    if show_result:
        cols.insert(5, "result")
    if show_owner:
        cols.insert(1, "owner")
    table = new_table(*cols, title="Sessions")
    for i in items:
        row = {"name": escape(i.get("name") or ""), "id": (i.get("id") or "")[:8], "type": i.get("type") or "-",
               "status": styled_status(i.get("status")) + (f" [dim]{escape(i['status_info'])}[/dim]"
                                                           if i.get("status_info") else ""),
               "image": escape(short_image(i.get("image"))),
               "resources": fmt_slots(i.get("occupying_slots") or i.get("requested_slots")),
               "agent": escape(", ".join(i.get("agents") or []) or "-"), "created": fmt_age(i.get("created_at")),
               "owner": escape(i.get("owner_email") or "-"),
               "result": _result_cell(i)}
        if (i.get("cluster_size") or 1) > 1:
            row["name"] += f" [dim]×{i['cluster_size']}[/dim]"
        table.add_row(*(row[c] for c in cols))
    console.print(table)
    total = data.get("total_count", len(items))
    more = f" (showing {offset + 1}–{offset + len(items)})" if total > len(items) and items else ""
    console.print(f"[dim]{total} session{'s' if total != 1 else ''}{more}[/dim]")


def _result_cell(i: dict[str, Any]) -> str:
    result = i.get("result")
    if not result or result == "UNDEFINED":
        return "-"
    style = "green" if result == "SUCCESS" else "red"
    code = f" ({i.get('exit_code')})" if i.get("exit_code") is not None else ""
    return f"[{style}]{result}[/{style}]{code}"


session.add_command(ls, "list")


def print_predicates(scheduling: dict[str, Any], title: str = "Last scheduling attempt") -> None:
    preds = scheduling.get("predicates") or []
    if not preds and not scheduling.get("msg"):
        return
    when = fmt_time(scheduling.get("last_try"))
    retries = scheduling.get("retries")
    table = new_table("", "predicate", "message",
                      title=f"{title} ({when}{f', attempt {retries}' if retries else ''})")
    for p in preds:
        mark = "[green]✓[/green]" if p.get("passed") else "[red]✗[/red]"
        table.add_row(mark, escape(str(p.get("name"))), escape(str(p.get("message") or "")))
    if preds:
        console.print(table)
    elif scheduling.get("msg"):
        console.print(f"[bold]{title}[/bold]: {escape(str(scheduling['msg']))}")
    if scheduling.get("blocked_by"):
        console.print(f"[dim]Blocked behind session {escape(str(scheduling['blocked_by']))}[/dim]")


@session.command("info")
@click.argument("name")
@owner_option
@json_option
@run
async def info(name, owner_access_key, as_json):
    """Details of a session: status, resources, kernels, service ports, scheduling."""
    data = await call("GET", f"/session/{name}", params={"owner_access_key": owner_access_key})
    if as_json:
        print_json(data)
        return
    opts = data.get("resource_opts") or {}
    status = Markup(styled_status(data.get("status")) + (f" ({escape(str(data['status_info']))})"
                                                         if data.get("status_info") else ""))
    rows: list[tuple[str, Any]] = [
        ("Name", data.get("name")), ("ID", data.get("id")), ("Type", data.get("type")), ("Status", status),
    ]
    if data.get("type") == "batch" or (data.get("result") not in (None, "UNDEFINED")):
        rows.append(("Result", Markup(_result_cell(data))))
        rows.append(("Exit code", data.get("exit_code")))
        rows.append(("Startup command", data.get("startup_command")))
        rows.append(("Starts at", fmt_time(data.get("starts_at")) if data.get("starts_at") else None))
        rows.append(("Batch timeout", fmt_duration(data["batch_timeout"]) if data.get("batch_timeout") else None))
    rows += [
        ("Image", data.get("image")), ("Architecture", data.get("architecture")),
        ("Owner access key", data.get("access_key")), ("Project", data.get("project_id")),
        ("Domain", data.get("domain_name")), ("Resource group", data.get("resource_group")),
        ("Cluster", f"{data.get('cluster_mode')}, {data.get('cluster_size')} container"
                    f"{'s' if (data.get('cluster_size') or 1) > 1 else ''}"),
        ("Requested", fmt_slots(data.get("requested_slots"))),
        ("Occupying", fmt_slots(data.get("occupying_slots"))),
        ("Shared memory", fmt_bytes(opts["shmem"]) if opts.get("shmem") else None),
        ("Environment", " ".join(f"{k}={v}" for k, v in (data.get("environ") or {}).items()) or None),
        ("Preopen ports", ", ".join(str(p) for p in data.get("preopen_ports") or []) or None),
        ("Agents", ", ".join(data.get("agents") or []) or None), ("Tag", data.get("tag")),
        ("Queries executed", data.get("numQueriesExecuted")),
        ("Created", fmt_time(data.get("created_at"))),
        ("Started", fmt_time(data.get("started_at")) if data.get("started_at") else None),
        ("Terminated", fmt_time(data.get("terminated_at")) if data.get("terminated_at") else None),
    ]
    extra = {k: v for k, v in (data.get("status_data") or {}).items() if k != "scheduler"}
    if extra:
        rows.append(("Status data", extra))
    print_fields([(k, v) for k, v in rows if v not in (None, "", [], {})], title=f"Session {data.get('name')}")

    kernels = data.get("kernels") or []
    if kernels:
        table = new_table("hostname", "role", "status", "agent", "container", "cpu", "mem", "other slots",
                          "exit code", title="Kernels")
        for k in kernels:
            slots = k.get("occupied_slots") or {}
            kstatus = styled_status(k.get("status")) + (f" [dim]({escape(str(k['status_info']))})[/dim]"
                                                        if k.get("status_info") else "")
            table.add_row(escape(str(k.get("cluster_hostname"))), escape(str(k.get("cluster_role"))), kstatus,
                          escape(k.get("agent_id") or "-"), (k.get("container_id") or "-")[:12],
                          fmt_amount("cpu", slots.get("cpu")), fmt_amount("mem", slots.get("mem")),
                          fmt_slots(slots, skip=("cpu", "mem")),
                          "-" if k.get("exit_code") is None else str(k["exit_code"]))
        console.print(table)
    print_service_ports(data.get("service_ports") or [])
    print_predicates((data.get("status_data") or {}).get("scheduler") or {})


@session.command("history")
@click.argument("name")
@owner_option
@json_option
@run
async def history(name, owner_access_key, as_json):
    """The session's status history."""
    data = await call("GET", f"/session/{name}/status-history", params={"owner_access_key": owner_access_key})
    if as_json:
        print_json(data)
        return
    table = new_table("status", "time", "after", "reason", title=f"Status history of {name}")
    prev = None
    for e in data.get("result") or []:
        ts = parse_time(e.get("timestamp"))
        after = fmt_duration((ts - prev).total_seconds()) if ts and prev else "-"
        prev = ts or prev
        table.add_row(styled_status(e.get("status")), fmt_time(e.get("timestamp")), after,
                      escape(str(e.get("reason") or "-")))
    console.print(table)
    print_predicates(data.get("scheduling") or {})


# -- logs / rename / rm / restart ------------------------------------------------------------------
@session.command("logs")
@click.argument("name")
@click.option("-k", "--kernel", metavar="KERNEL", help="Kernel id or hostname (main1, sub1, …); default main1.")
@owner_option
@run
async def logs(name, kernel, owner_access_key):
    """Print a kernel's container log."""
    data = await call("GET", f"/session/{name}/logs", params={"kernel_id": kernel,
                                                              "owner_access_key": owner_access_key})
    text = (data.get("result") or {}).get("logs") or ""
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


@session.command("rename")
@click.argument("name")
@click.argument("new_name")
@run
async def rename(name, new_name):
    """Rename a running session."""
    await call("POST", f"/session/{name}/rename", params={"name": new_name})
    console.print(f"Session {escape(name)} is now [bold]{escape(new_name)}[/bold].")


@session.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--forced", is_flag=True, help="Terminate at once, even if the agent does not answer.")
@owner_option
@run
async def rm(names, forced, owner_access_key):
    """Terminate sessions (pending ones are cancelled)."""
    async with make_client() as client:
        client.timeout = httpx.Timeout(30.0, read=180.0)  # DELETE answers once the kernels stopped

        async def one(name: str) -> bool:
            try:
                data = await client.delete(f"/session/{name}", params={
                    "forced": "true" if forced else None, "owner_access_key": owner_access_key})
            except APIError as e:
                err_console.print(f"[red]✗[/red] {escape(name)}: {escape(e.message)}")
                return False
            stats = data.get("stats") or {}
            status = stats.get("session_status") or str(stats.get("status", "")).upper()
            console.print(f"[green]✓[/green] {escape(name)}: {styled_status(status)}")
            return True

        results = await asyncio.gather(*(one(n) for n in dict.fromkeys(names)))
    if not all(results):
        sys.exit(1)


session.add_command(rm, "destroy")


@session.command("restart")
@click.argument("name")
@owner_option
@run
async def restart(name, owner_access_key):
    """Restart a running session's kernels (their scratch files stay)."""
    await call("PATCH", f"/session/{name}", params={"owner_access_key": owner_access_key})
    console.print(f"Session {escape(name)} restarted.")


# -- exec ------------------------------------------------------------------------------------------
def _write_console(items: list[Any]) -> None:
    for item in items or []:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            continue
        kind, data = item
        if kind == "stdout":
            sys.stdout.write(str(data))
            sys.stdout.flush()
        elif kind == "stderr":
            sys.stderr.write(str(data))
            sys.stderr.flush()
        elif kind == "media":
            mime = data[0] if isinstance(data, (list, tuple)) and data else "?"
            err_console.print(f"[dim][media output: {escape(str(mime))}][/dim]")
        elif kind == "html":
            err_console.print(f"[dim][html output, {len(str(data))} characters][/dim]")
        elif kind == "log":
            err_console.print(f"[dim]{escape(str(data))}[/dim]")


@session.command("exec")
@click.argument("name")
@click.argument("code", required=False)
@click.option("-f", "--file", "code_file", type=click.File("r"), help="Run this file ('-' reads stdin).")
@run
async def exec_(name, code, code_file):
    """Run Python CODE (or a file) in the session; its output streams back and the command exits
    with the run's exit code."""
    if code_file is not None:
        if code is not None:
            raise click.UsageError("Give CODE or --file, not both.")
        code = code_file.read()
    if code is None:
        raise click.UsageError("Give CODE or --file.")
    run_id = uuid.uuid4().hex
    body: dict[str, Any] = {"mode": "query", "code": code, "runId": run_id}
    async with make_client() as client:
        client.timeout = httpx.Timeout(30.0, read=None)  # a query answers when it has output
        printed_any = False
        while True:
            result = (await client.post(f"/session/{name}", json=body)).get("result") or {}
            _write_console(result.get("console") or [])
            status = result.get("status")
            if status == "continued":
                body = {"mode": "continue", "code": "", "runId": run_id}
            elif status == "waiting-input":
                prompt = "Password: " if (result.get("options") or {}).get("is_password") else ""
                try:
                    text = click.prompt(prompt or "", prompt_suffix="", default="", show_default=False,
                                        hide_input=bool(prompt), err=True)
                except (EOFError, click.Abort):
                    text = ""  # no more input: the program reads an empty line
                body = {"mode": "input", "code": text, "runId": run_id}
            elif status == "exec-timeout":
                err_console.print("[red]The run timed out.[/red]")
                code_ = result.get("exitCode")
                sys.exit(code_ if isinstance(code_, int) and code_ else 1)
            else:
                exit_code = result.get("exitCode")
                if exit_code == 130 and not printed_any and not result.get("console"):
                    err_console.print("[yellow]Exit code 130 with no output: the kernel is gone "
                                      "(is the session still running?).[/yellow]")
                sys.exit(exit_code if isinstance(exit_code, int) else 0)
            printed_any = printed_any or bool(result.get("console"))


# -- events ----------------------------------------------------------------------------------------
def _event_line(event: str, data: dict[str, Any]) -> str:
    now = datetime.now().strftime("%H:%M:%S")
    style = ("red" if event.endswith(("failure", "cancelled")) else "green" if event.endswith(("started", "success"))
             else "magenta" if "terminat" in event else "cyan")
    parts = [f"[dim]{now}[/dim]", f"[{style}]{event:<20}[/{style}]",
             f"[bold]{escape(str(data.get('sessionName')))}[/bold]"]
    if data.get("kernelId"):
        role = f"{data.get('clusterRole') or ''}{data.get('clusterIdx') or ''}"
        parts.append(f"[dim]kernel {escape(role or str(data['kernelId'])[:8])}[/dim]")
    if data.get("reason"):
        parts.append(escape(str(data["reason"])))
    if data.get("exitCode") is not None:
        parts.append(f"exit code {data['exitCode']}")
    return " ".join(parts)


@session.command("events")
@click.option("-n", "--name", "session_name", help="Only events of sessions with this name.")
@click.option("--session-id", help="Only events of this session.")
@click.option("--owner", "owner_access_key", metavar="ACCESS_KEY", help="Admins: events of this keypair's sessions.")
@click.option("--scope", type=click.Choice(["*", "session", "kernel"]), default="*", show_default=True)
@click.option("--max-events", type=click.IntRange(1), help="Stop after this many events.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), help="Stop after this many seconds.")
@json_option
def events(session_name, session_id, owner_access_key, scope, max_events, timeout, as_json):
    """Print session and kernel events as they happen (until Ctrl+C)."""
    params = {"sessionId": session_id, "name": session_name, "ownerAccessKey": owner_access_key, "scope": scope}

    def connected() -> None:
        err_console.print("[dim]Listening for events (Ctrl+C stops)…[/dim]", highlight=False)

    async def follow() -> None:
        seen = 0
        async with make_client() as client:
            async for event, raw, _ in sessions.sse_events(client, "/events/session", params, on_connect=connected,
                                                            on_reconnect=warn_stream_interrupted):
                try:
                    data = json.loads(raw) if raw else {}
                except ValueError:
                    data = {"raw": raw}
                if as_json:
                    print(json.dumps({"event": event, "data": data}), flush=True)
                else:
                    console.print(_event_line(event, data if isinstance(data, dict) else {}), highlight=False)
                    sys.stdout.flush()
                seen += 1
                if max_events and seen >= max_events:
                    return

    async def bounded() -> None:
        try:
            await asyncio.wait_for(follow(), timeout) if timeout else await follow()
        except TimeoutError:
            pass

    try:
        run(bounded)()
    except SystemExit as e:
        if e.code != 130:  # Ctrl+C is how one stops following: not an error
            raise


# -- download --------------------------------------------------------------------------------------
@session.command("download")
@click.argument("name")
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Directory to write into.")
@run
async def download(name, files, out_dir):
    """Download FILES from a running session (paths relative to /home/work, or absolute), e.g.
    `workbay session download my-session id_container`.  A directory arrives as its whole tree."""
    out_dir.mkdir(parents=True, exist_ok=True)
    async with make_client() as client:
        client.timeout = httpx.Timeout(30.0, read=300.0)
        for path in files:
            content = await sessions.download_file(client, name, path)
            if content is not None:
                filename = os.path.basename(path.rstrip("/")) or "download"
                target = out_dir / filename
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                             0o600 if filename == "id_container" else 0o644)
                with os.fdopen(fd, "wb") as f:
                    f.write(content)
                console.print(f"[green]✓[/green] {escape(path)} → {escape(str(target))} "
                              f"[dim]({fmt_bytes(len(content))})[/dim]")
                continue
            try:
                names = await sessions.download_tree(client, name, path, out_dir)
            except sessions.DownloadError as e:
                raise click.ClickException(str(e)) from None
            top = names[0].split("/")[0] if names else path
            console.print(f"[green]✓[/green] {escape(path)} → {escape(str(out_dir / top))} "
                          f"[dim]({len(names)} entries)[/dim]")

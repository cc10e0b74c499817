"""`workbay service …`: model services (docs/serving.md) — create (optionally waiting until
HEALTHY), ls, info, update, scale, rm, token, errors, logs, autoscale, and validate (the dry run's
log streamed live, exit code 0 only for a healthy verdict).  Services are named by name or id; the
SDK work is in ``services``, value formatting in ``formatting``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner

from workbay.common.domain import RuntimeVariant, ServiceStatus

from . import services
from .commands import json_option, parse_pairs, run
from .credentials import make_client
from .formatting import fmt_age, fmt_duration, fmt_slots, fmt_time, short_image
from .output import Markup, console, err_console, new_table, print_fields, print_json

POLL_INTERVAL = 1.0
SERVICE_STYLE = {ServiceStatus.PROVISIONING: "cyan", ServiceStatus.HEALTHY: "green",
                 ServiceStatus.DEGRADED: "yellow", ServiceStatus.UNHEALTHY: "red",
                 ServiceStatus.TERMINATING: "magenta", ServiceStatus.DESTROYED: "dim",
                 "FAILED": "red", "valid": "green", "expired": "dim", "revoked": "red"}


def styled(status: str | None) -> str:
    """A service, replica or token status in its colour (rich markup)."""
    status = status or "-"
    style = SERVICE_STYLE.get(status)
    return f"[{style}]{escape(status)}[/{style}]" if style else escape(status)


@click.group()
def service() -> None:
    """Model services: serve a model folder behind one URL with N replicas."""


# -- the create/update/validate options ------------------------------------------------------------
def _field_options() -> Any:
    """The options of every create field (``update`` takes the same ones, none required)."""
    opts = [
        click.option("--name", "name", help="Service name (4–24 characters; also the endpoint's path)."),
        click.option("--model-folder", "model_folder", metavar="FOLDER", help="The model folder (name or id)."),
        click.option("--runtime", "runtime_variant", type=click.Choice([v.value for v in RuntimeVariant]),
                     help="Runtime variant: custom (the folder's model-definition.yaml), command (the "
                          "image's command), vllm, nim, llama-cpp."),
        click.option("--mount-destination", metavar="PATH", help="Where the model folder is mounted (default /models)."),
        click.option("--definition-path", metavar="PATH",
                     help="The model definition file, relative to the folder (default model-definition.yaml)."),
        click.option("--extra-mount", "extra_mounts", multiple=True, metavar="FOLDER=DEST",
                     help="Also mount this folder at DEST (repeatable)."),
        click.option("--replicas", type=click.IntRange(0, 100), help="Desired replicas (default 1)."),
        click.option("--image", help="The image replicas run."),
        click.option("--resource-group", "--scaling-group", "resource_group", help="Resource group to run in."),
        click.option("-r", "-c", "--resources", "resources", multiple=True, metavar="SLOT=AMOUNT",
                     help="Per replica, repeatable or comma-separated: -c cpu=2 -c mem=4g."),
        click.option("--shmem", help="Shared memory per replica, e.g. 256m."),
        click.option("-e", "--env", "envs", multiple=True, metavar="KEY=VALUE", help="Environment variable (repeatable)."),
        click.option("--public/--private", "public", default=None,
                     help="Public: the endpoint needs no token (default private)."),
        click.option("--startup-command", help="The `command` runtime: the command replicas run."),
        click.option("-g", "--project", "project", metavar="PROJECT", help="Project name or id."),
        click.option("--owner", "owner_access_key", metavar="ACCESS_KEY", help="Admin: create for this keypair's user."),
    ]

    def apply(fn: Any) -> Any:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return apply


def _fields(kw: dict[str, Any]) -> services.ServiceFields:
    """The options (popped from ``kw``) as :class:`services.ServiceFields`."""
    return services.ServiceFields(
        name=kw.pop("name"), model_folder=kw.pop("model_folder"), runtime_variant=kw.pop("runtime_variant"),
        mount_destination=kw.pop("mount_destination"), definition_path=kw.pop("definition_path"),
        extra_mounts=parse_pairs(kw.pop("extra_mounts"), "--extra-mount", split_commas=False),
        replicas=kw.pop("replicas"), image=kw.pop("image"), resource_group=kw.pop("resource_group"),
        resources=parse_pairs(kw.pop("resources"), "--resources"), shmem=kw.pop("shmem"),
        environ=parse_pairs(kw.pop("envs"), "--env", split_commas=False), public=kw.pop("public"),
        startup_command=kw.pop("startup_command"), project=kw.pop("project"),
        owner_access_key=kw.pop("owner_access_key"))


def _require(fields: services.ServiceFields) -> None:
    missing = [opt for opt, value in (("--name", fields.name), ("--model-folder", fields.model_folder),
                                      ("--image", fields.image)) if not value]
    if missing:
        raise click.UsageError(f"Missing option{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.")


# -- create ----------------------------------------------------------------------------------------
def _replicas(s: dict[str, Any]) -> str:
    healthy = s.get("healthy_route_count")
    if healthy is None:
        healthy = sum(1 for r in s.get("routes") or [] if r.get("status") == "HEALTHY")
    return f"{healthy}/{s.get('desired_session_count', '-')}"


async def wait_healthy(client: Any, sid: str, max_wait: float) -> dict[str, Any]:
    """Poll the service until it is HEALTHY or UNHEALTHY (or ``max_wait`` seconds pass; 0 = no
    limit), a spinner showing its status and replicas; its last detail."""
    t0 = time.monotonic()
    spinner = Spinner("dots", text="")
    live = Live(spinner, console=err_console, transient=True, refresh_per_second=8) if err_console.is_terminal else None
    last = ""
    with live or contextlib.nullcontext():
        while True:
            info = dict(await client.get(f"/services/{sid}"))
            status = info.get("status") or "-"
            line = (f"[bold]{escape(str(info.get('name')))}[/bold] {styled(status)} "
                    f"replicas {_replicas(info)}" + (f" [dim]({escape(str(info['status_info']))})[/dim]"
                                                     if info.get("status_info") else ""))
            if live:
                spinner.update(text=Markup(line + f" [dim]{fmt_duration(time.monotonic() - t0)}[/dim]"))
            elif line != last:
                err_console.print(line, highlight=False, soft_wrap=True)
            last = line
            if status in (ServiceStatus.HEALTHY, ServiceStatus.UNHEALTHY, ServiceStatus.DESTROYED):
                return info
            if max_wait and time.monotonic() - t0 >= max_wait:
                return info
            await asyncio.sleep(POLL_INTERVAL)


@service.command("create")
@_field_options()
@click.option("--wait", is_flag=True, help="Wait until the service is HEALTHY (exit 1 if it turns UNHEALTHY).")
@click.option("--max-wait", type=click.FloatRange(0), default=0, help="With --wait: give up after S seconds.")
@json_option
@run
async def create(wait: bool, max_wait: float, as_json: bool, **kw: Any) -> None:
    """Create a model service (needs --name, --model-folder and --image)."""
    fields = _fields(kw)
    _require(fields)
    async with make_client() as client:
        sid = await services.create_service(client, fields)
        if not as_json:
            err_console.print(f"Created service [bold]{escape(str(fields.name))}[/bold] [dim](id {sid})[/dim]",
                              highlight=False)
        info = await wait_healthy(client, sid, max_wait) if wait else dict(await client.get(f"/services/{sid}"))
    if as_json:
        print_json({"endpoint_id": sid, "name": info.get("name"), "status": info.get("status"),
                    "service_endpoint": info.get("service_endpoint") or info.get("url")})
    else:
        console.print(f"Service [bold]{escape(str(info.get('name')))}[/bold] is {styled(info.get('status'))}, "
                      f"replicas {_replicas(info)}; endpoint {escape(str(info.get('service_endpoint') or '-'))}")
    if wait and info.get("status") != ServiceStatus.HEALTHY:
        sys.exit(1)


# -- ls / info -------------------------------------------------------------------------------------
@service.command("ls")
@click.option("-a", "--all", "all_owners", is_flag=True, help="Admins: every owner's services.")
@click.option("-s", "--status", help="Only this status (HEALTHY, DEGRADED, …).")
@click.option("-g", "--project", help="Only this project's services.")
@json_option
@run
async def ls(all_owners: bool, status: str | None, project: str | None, as_json: bool) -> None:
    """List model services."""
    async with make_client() as client:
        items = await services.list_services(client, status=status, project=project, all_owners=all_owners)
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("No model services.")
        return
    table = new_table("name", "status", "replicas", "endpoint", "model folder", "owner", "created",
                      title="Model services")
    for s in items:
        folder = s.get("model_folder") or {}
        table.add_row(escape(str(s.get("name"))), styled(s.get("status")), _replicas(s),
                      escape(str(s.get("service_endpoint") or "-")),
                      escape(str(folder.get("name") or folder.get("id") or "-")) if isinstance(folder, dict)
                      else escape(str(folder)),
                      escape(str(s.get("owner_email") or "-")), fmt_age(s.get("created_at")))
    console.print(table)
    console.print(f"[dim]{len(items)} service{'s' if len(items) != 1 else ''}[/dim]")


service.add_command(ls, "list")


@service.command("info")
@click.argument("service_ref", metavar="NAME|ID")
@json_option
@run
async def info(service_ref: str, as_json: bool) -> None:
    """Everything about a service: settings, replicas, request figures, tokens, autoscaling rules."""
    async with make_client() as client:
        data = await services.get_service(client, service_ref)
        sid = services.service_id(data)
        tokens = await services.list_tokens(client, sid)
        rules = await services.list_rules(client, sid)
    if as_json:
        print_json({**data, "tokens_count": len(tokens), "auto_scaling_rules": rules})
        return
    config = data.get("config") or {}
    folder = data.get("model_folder") or {}
    status = Markup(styled(data.get("status")) + (f" ({escape(str(data['status_info']))})"
                                                  if data.get("status_info") else ""))
    extra = config.get("extra_mounts") or {}
    rows: list[tuple[str, Any]] = [
        ("Name", data.get("name")), ("ID", sid), ("Status", status), ("Replicas", _replicas(data)),
        ("Endpoint", data.get("service_endpoint")), ("Public", data.get("is_public", data.get("open_to_public"))),
        ("Model folder", _name_of(folder)),
        ("Mounted at", config.get("model_mount_destination")),
        ("Definition", config.get("model_definition_path")),
        ("Extra mounts", ", ".join(f"{k} → {v}" for k, v in extra.items()) if isinstance(extra, dict) else extra),
        ("Runtime", data.get("runtime_variant")), ("Image", short_image(data.get("image"))),
        ("Resources", fmt_slots(config.get("resources"))),
        ("Resource group", config.get("scaling_group") or config.get("resource_group")),
        ("Environment", " ".join(f"{k}={v}" for k, v in (config.get("environ") or {}).items()) or None),
        ("Owner", data.get("owner_email")), ("Project", _name_of(data.get("project"))),
        ("Errors", data.get("error_count")), ("Retries", data.get("retries")),
        ("Tokens", len(tokens)), ("Created", fmt_time(data.get("created_at"))),
    ]
    print_fields([(k, v) for k, v in rows if v not in (None, "", [], {})], title=f"Service {data.get('name')}")
    stats = data.get("stats") or {}
    if stats:
        print_fields([("Requests/s", stats.get("rps")), ("In flight", stats.get("in_flight")),
                      ("Requests", stats.get("requests")), ("Errors", stats.get("errors")),
                      ("p50", _ms(stats.get("p50_ms"))), ("p95", _ms(stats.get("p95_ms")))], title="Traffic")
    routes = data.get("routes") or data.get("active_routes") or []
    if routes:
        table = new_table("route", "session", "status", "traffic", "gen", "requests", "errors", "p50",
                          title="Replicas")
        for r in routes:
            table.add_row((r.get("route_id") or "-")[:8],
                          escape(str(r.get("session_name") or (r.get("session_id") or "-")[:8])),
                          styled(r.get("status")) + (f" [dim]{escape(str(r['status_info']))}[/dim]"
                                                     if r.get("status_info") else ""),
                          str(r.get("traffic_ratio", "-")), str(r.get("generation", "-")),
                          str(r.get("requests", "-")), str(r.get("errors", "-")), _ms(r.get("p50_ms")))
        console.print(table)
    _print_rules(rules)


def _name_of(value: Any) -> Any:
    """An ``{id, name}`` reference by its name (or id)."""
    return (value.get("name") or value.get("id")) if isinstance(value, dict) else value


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} ms"


# -- update / scale / rm ---------------------------------------------------------------------------
@service.command("update")
@click.argument("service_ref", metavar="NAME|ID")
@_field_options()
@json_option
@run
async def update(service_ref: str, as_json: bool, **kw: Any) -> None:
    """Change a service (only the options given); replicas roll over one at a time."""
    fields = _fields(kw)
    body = services.service_body(fields)
    if not body:
        raise click.UsageError("Nothing to change: give at least one option.")
    async with make_client() as client:
        answer = await services.update_service(client, service_ref, fields)
    if as_json:
        print_json(answer)
    else:
        console.print(f"[green]✓[/green] Service {escape(service_ref)} updated.")


@service.command("scale")
@click.argument("service_ref", metavar="NAME|ID")
@click.argument("replicas", type=click.IntRange(0, 100))
@run
async def scale(service_ref: str, replicas: int) -> None:
    """Set the desired number of replicas."""
    async with make_client() as client:
        answer = await services.scale(client, service_ref, replicas)
    console.print(f"[green]✓[/green] {escape(service_ref)}: {answer.get('current_route_count', '-')} → "
                  f"{answer.get('target_count', replicas)} replicas.")


@service.command("rm")
@click.argument("service_ref", metavar="NAME|ID")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@run
async def rm(service_ref: str, yes: bool) -> None:
    """Delete a service: its replicas terminate and its endpoint goes away."""
    if not yes:
        click.confirm(f"Delete model service {service_ref} and terminate its replicas?", abort=True)
    async with make_client() as client:
        await services.delete_service(client, service_ref)
    console.print(f"[green]✓[/green] Service {escape(service_ref)} is being deleted.")


service.add_command(rm, "delete")


# -- tokens ----------------------------------------------------------------------------------------
class _TokenGroup(click.Group):
    """``token NAME`` issues a token; ``token ls|revoke …`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


@service.group("token", cls=_TokenGroup)
def token() -> None:
    """Access tokens: `token NAME [--duration 1h]` prints a new one; `token ls`, `token revoke`."""


@token.command("issue")
@click.argument("service_ref", metavar="NAME|ID")
@click.option("--duration", help="How long it is valid: 30m, 1h, 7d (default 24h).")
@click.option("--valid-until", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
              help="Valid until this time (ISO, local time).")
@json_option
@run
async def token_issue(service_ref: str, duration: str | None, valid_until: datetime | None, as_json: bool) -> None:
    """Issue a token and print it (send it as `Authorization: BackendAI TOKEN`)."""
    if duration and valid_until:
        raise click.UsageError("Give --duration or --valid-until, not both.")
    until = valid_until.astimezone(UTC) if valid_until else None
    async with make_client() as client:
        answer = await services.issue_token(client, service_ref, duration, until)
    if as_json:
        print_json(answer)
        return
    print(answer.get("token"))
    if answer.get("expires_at"):
        err_console.print(f"[dim]expires {fmt_time(str(answer['expires_at']))}[/dim]")


@token.command("ls")
@click.argument("service_ref", metavar="NAME|ID")
@json_option
@run
async def token_ls(service_ref: str, as_json: bool) -> None:
    """The service's tokens: valid, expired or revoked."""
    async with make_client() as client:
        items = await services.list_tokens(client, service_ref)
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("No tokens.")
        return
    table = new_table("id", "status", "created", "expires", "token", title="Tokens")
    for t in items:
        text = str(t.get("token") or "")
        table.add_row(escape(str(t.get("id"))), styled(t.get("status")), fmt_time(t.get("created_at")),
                      fmt_time(t.get("expires_at")), escape(text[:16] + "…" if len(text) > 16 else text))
    console.print(table)


@token.command("revoke")
@click.argument("service_ref", metavar="NAME|ID")
@click.argument("token_id")
@run
async def token_revoke(service_ref: str, token_id: str) -> None:
    """Revoke a token: the endpoint refuses it from now on."""
    async with make_client() as client:
        await services.revoke_token(client, service_ref, token_id)
    console.print(f"[green]✓[/green] Token {escape(token_id)} revoked.")


# -- errors / logs ---------------------------------------------------------------------------------
@service.command("errors")
@click.argument("service_ref", metavar="NAME|ID")
@click.option("--clear", is_flag=True, help="Clear the errors and retry starting replicas at once.")
@json_option
@run
async def errors_cmd(service_ref: str, clear: bool, as_json: bool) -> None:
    """Replica failures with their log tails (--clear: clear them and retry)."""
    async with make_client() as client:
        if clear:
            await services.clear_errors(client, service_ref)
            console.print(f"[green]✓[/green] Errors of {escape(service_ref)} cleared; replicas start again.")
            return
        data = await services.errors(client, service_ref)
    if as_json:
        print_json(data)
        return
    items = data.get("errors") or []
    if not items:
        console.print("No errors.")
        return
    for e in items:
        console.print(f"[red]✗[/red] {fmt_time(e.get('created_at'))} session "
                      f"{escape(str(e.get('session_id') or '-'))}: {escape(str(e.get('error')))}",
                      highlight=False, soft_wrap=True)
        if e.get("log_tail"):
            console.print(escape(str(e["log_tail"]).rstrip()), style="dim", highlight=False)
    console.print(f"[dim]{len(items)} error{'s' if len(items) != 1 else ''}, retries {data.get('retries', 0)}[/dim]")


@service.command("logs")
@click.argument("service_ref", metavar="NAME|ID")
@click.option("--route", metavar="ROUTE_ID", help="This replica (default the newest).")
@run
async def logs(service_ref: str, route: str | None) -> None:
    """Print a replica's container log."""
    async with make_client() as client:
        text = await services.logs(client, service_ref, route)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


# -- autoscaling -----------------------------------------------------------------------------------
@service.group("autoscale")
def autoscale() -> None:
    """Autoscaling rules: add a replica when a metric crosses a threshold (or remove one)."""


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _print_rules(rules: list[dict[str, Any]]) -> None:
    if not rules:
        return
    table = new_table("id", "source", "metric", "rule", "step", "min", "max", "cooldown", "last triggered",
                      title="Autoscaling rules")
    signs = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
    for r in rules:
        table.add_row(escape(str(r.get("id"))), escape(str(r.get("metric_source"))),
                      escape(str(r.get("metric_name"))),
                      f"{signs.get(str(r.get('comparator')), escape(str(r.get('comparator'))))} "
                      f"{escape(str(r.get('threshold')))}",
                      f"{int(r.get('step_size') or 0):+d}", _or_dash(r.get("min_replicas")),
                      _or_dash(r.get("max_replicas")), fmt_duration(float(r.get("cooldown_seconds") or 0)),
                      fmt_time(r.get("last_triggered_at")) if r.get("last_triggered_at") else "-")
    console.print(table)


@autoscale.command("ls")
@click.argument("service_ref", metavar="NAME|ID")
@json_option
@run
async def autoscale_ls(service_ref: str, as_json: bool) -> None:
    """List the service's autoscaling rules."""
    async with make_client() as client:
        rules = await services.list_rules(client, service_ref)
    if as_json:
        print_json(rules)
    elif not rules:
        console.print("No autoscaling rules.")
    else:
        _print_rules(rules)


@autoscale.command("add")
@click.argument("service_ref", metavar="NAME|ID")
@click.option("--source", "metric_source", type=click.Choice(["kernel", "inference-framework", "endpoint"]),
              required=True, help="kernel (CPU/memory), inference-framework (a Prometheus metric), endpoint.")
@click.option("--metric", "metric_name", required=True,
              help="e.g. cpu_util, mem, vllm:num_requests_running, rps, in_flight.")
@click.option("--comparator", required=True, help="<, <=, >, >= (or lt, le, gt, ge).")
@click.option("--threshold", required=True)
@click.option("--step", "step_size", type=int, required=True, help="Replicas to add (negative: remove).")
@click.option("--cooldown", "cooldown_seconds", type=click.IntRange(0), help="Seconds between two triggers.")
@click.option("--min", "min_replicas", type=click.IntRange(0), help="Never below (0: scale to zero when idle).")
@click.option("--max", "max_replicas", type=click.IntRange(1), help="Never above.")
@json_option
@run
async def autoscale_add(service_ref: str, as_json: bool, **kw: Any) -> None:
    """Add a rule, e.g. `--source endpoint --metric rps --comparator '>' --threshold 5 --step 1 --max 4`."""
    rule = services.RuleFields(**kw)
    try:
        services.rule_body(rule)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--comparator") from None
    async with make_client() as client:
        answer = await services.add_rule(client, service_ref, rule)
    if as_json:
        print_json(answer)
    else:
        console.print(f"[green]✓[/green] Rule {escape(str(answer.get('id', '')))} added.")


@autoscale.command("rm")
@click.argument("service_ref", metavar="NAME|ID")
@click.argument("rule_id")
@run
async def autoscale_rm(service_ref: str, rule_id: str) -> None:
    """Remove a rule."""
    async with make_client() as client:
        await services.remove_rule(client, service_ref, rule_id)
    console.print(f"[green]✓[/green] Rule {escape(rule_id)} removed.")


# -- validate --------------------------------------------------------------------------------------
@service.command("validate")
@_field_options()
@json_option
@run
async def validate(as_json: bool, **kw: Any) -> None:
    """Dry-run one replica with these settings: its log streams here, then the verdict (exit 0 only
    when it turned healthy)."""
    fields = _fields(kw)
    if not fields.name:
        fields.name = "validate"  # the dry run's service has no endpoint; the name is only checked
    _require(fields)
    verdict: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    async with make_client() as client:
        async for event, data in services.validate(client, fields):
            if as_json:
                events.append({"event": event, **data})
            elif event == "log":
                console.print(escape(str(data.get("line", ""))), highlight=False, soft_wrap=True)
            elif event == "step":
                st = str(data.get("status") or "")
                mark = {"done": "[green]✓[/green]", "ok": "[green]✓[/green]", "failed": "[red]✗[/red]",
                        "running": "[cyan]…[/cyan]"}.get(st, "·")
                err_console.print(f"{mark} {escape(str(data.get('step')))} [dim]{escape(st)}[/dim]", highlight=False)
            if event == "verdict":
                verdict = data
    if as_json:
        print_json({"events": events, "verdict": verdict})
    elif verdict.get("ok"):
        console.print(f"[green]✓ Healthy[/green]: {escape(str(verdict.get('message') or 'the replica passed its health check'))}")
    elif verdict:
        step = f" at {escape(str(verdict['step']))}" if verdict.get("step") else ""
        console.print(f"[red]✗ Failed{step}[/red]: {escape(str(verdict.get('message') or '-'))}")
    else:
        console.print("[red]✗ The dry run ended without a verdict.[/red]")
    if not verdict.get("ok"):
        sys.exit(1)

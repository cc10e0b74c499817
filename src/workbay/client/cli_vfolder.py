"""`workbay vfolder …`: storage folders — create, ls, info, rename, rm (trash), restore, purge, files,
mkdir, mv, upload, download, share/invite, unshare, invitations, accept, decline, clone.

Uploads are tus 1.0.0 in 16 MiB chunks straight to the storage-proxy and resume after an
interruption: rerun the same command (the upload sessions are remembered in
``$XDG_CACHE_HOME/workbay/uploads.json``).  Downloads resume partial files (``*.part``) with
``Range``; directories download as a zip archive.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from workbay.common.domain import FOLDER_TRASH_STATUSES

from . import folders as sdk
from . import transfer
from .commands import json_option, parse_size, run
from .credentials import make_client
from .formatting import fmt_bytes, fmt_time
from .output import Markup, console, err_console, new_table, print_fields, print_json
from .sdk import APIError
from .sessions import sse_events

STATUS_STYLE = {"ready": "green", "delete-pending": "yellow", "cloning": "cyan", "performing": "cyan",
                "deleting": "magenta", "mounted": "green", "error": "red"}
TYPE_NAMES = {"user": "user", "group": "project", "project": "project"}


@click.group()
def vfolder() -> None:
    """Storage folders: create and share folders, move files in and out."""


def _status(value: str | None) -> str:
    value = value or "-"
    style = STATUS_STYLE.get(value)
    return f"[{style}]{escape(value)}[/{style}]" if style else escape(value)


def _owner(f: dict[str, Any]) -> str:
    if f.get("ownership_type") in ("group", "project") or f.get("type") in ("group", "project"):
        return f.get("group_name") or f.get("group") or "-"
    return f.get("user_email") or f.get("user") or "-"


def _bad_path(e: ValueError, hint: str) -> click.BadParameter:
    return click.BadParameter(str(e), param_hint=hint)


# -- folders ---------------------------------------------------------------------------------------
@vfolder.command("create")
@click.argument("name")
@click.option("--host", help="Storage host (default: the server's default, e.g. local:volume1).")
@click.option("-g", "--project", "--group", "project", metavar="PROJECT",
              help="Create a project folder of this project (name or id); default: your own folder.")
@click.option("--usage-mode", type=click.Choice(["general", "model", "data"]), default="general", show_default=True)
@click.option("--permission", type=click.Choice(["rw", "ro"]), default="rw", show_default=True,
              help="Project folders: what members may do.")
@click.option("--cloneable", is_flag=True, help="Others who can read it may clone it.")
@json_option
@run
async def create(name, host, project, usage_mode, permission, cloneable, as_json):
    """Create a storage folder."""
    async with make_client() as client:
        data = await sdk.create_folder(client, name, host=host, project=project, usage_mode=usage_mode,
                                       permission=permission, cloneable=cloneable)
    if as_json:
        print_json(data)
        return
    console.print(f"Folder [bold]{escape(data.get('name') or name)}[/bold] created "
                  f"(id {escape(str(data.get('id')))}, host {escape(str(data.get('host')))}).")


@vfolder.command("ls")
@click.option("--trash", is_flag=True, help="Only folders in the trash.")
@click.option("-a", "--all", "include_trash", is_flag=True, help="Folders in the trash too.")
@click.option("-g", "--project", "group_id", metavar="PROJECT_ID", help="Only this project's folders.")
@json_option
@run
async def ls(trash, include_trash, group_id, as_json):
    """List the folders you can use (yours, your projects', shared with you)."""
    async with make_client() as client:
        items = await sdk.list_folders(client, group_id=group_id)
    if trash:
        items = [f for f in items if f.get("status") in FOLDER_TRASH_STATUSES]
    elif not include_trash:
        items = [f for f in items if f.get("status") not in FOLDER_TRASH_STATUSES]
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("No folders in the trash." if trash else "No folders.")
        return
    table = new_table("name", "id", "host", "status", "type", "usage", "permission", "owner", "size",
                      title="Trash" if trash else "Folders")
    for f in items:
        shared = "" if f.get("is_owner", True) or f.get("ownership_type") == "group" else " [dim](shared)[/dim]"
        table.add_row(escape(str(f.get("name"))), str(f.get("id") or "")[:8], escape(str(f.get("host") or "-")),
                      _status(f.get("status")),
                      TYPE_NAMES.get(str(f.get("ownership_type") or f.get("type")), "-") + shared,
                      escape(str(f.get("usage_mode") or "-")), escape(str(f.get("permission") or "-")),
                      escape(_owner(f)), fmt_bytes(f["cur_size"]) if f.get("cur_size") is not None else "-")
    console.print(table)
    console.print(f"[dim]{len(items)} folder{'s' if len(items) != 1 else ''}[/dim]")


vfolder.add_command(ls, "list")


@vfolder.command("info")
@click.argument("name")
@json_option
@run
async def info(name, as_json):
    """Details of a folder."""
    async with make_client() as client:
        data = await sdk.get_folder(client, name)
    if as_json:
        print_json(data)
        return
    used = data.get("used_bytes", data.get("cur_size"))
    rows: list[tuple[str, Any]] = [
        ("Name", data.get("name")), ("ID", data.get("id")), ("Host", data.get("host")),
        ("Status", Markup(_status(data.get("status")))), ("Usage mode", data.get("usage_mode")),
        ("Type", TYPE_NAMES.get(str(data.get("ownership_type") or data.get("type")), data.get("type"))),
        ("Owner", _owner(data) if _owner(data) != "-" else None),
        ("Your permission", data.get("permission")), ("Mount permission", data.get("mount_permission")),
        ("Owned by you", data.get("is_owner")), ("Cloneable", data.get("cloneable")),
        ("Quota scope", data.get("quota_scope_id")),
        ("Files", data.get("num_files", data.get("numFiles"))),
        ("Used", fmt_bytes(used) if used is not None else None),
        ("Max size", fmt_bytes(data["max_size"]) if data.get("max_size") else None),
        ("Created", fmt_time(data.get("created_at") or data.get("created"))),
        ("Last used", fmt_time(data["last_used"]) if data.get("last_used") else None),
    ]
    print_fields([(k, v) for k, v in rows if v not in (None, "", [], {})], title=f"Folder {data.get('name')}")


@vfolder.command("rename")
@click.argument("name")
@click.argument("new_name")
@run
async def rename(name, new_name):
    """Rename a folder."""
    async with make_client() as client:
        await sdk.rename_folder(client, name, new_name)
    console.print(f"Folder {escape(name)} is now [bold]{escape(new_name)}[/bold].")


@vfolder.command("rm")
@click.argument("names", nargs=-1, required=True)
@run
async def rm(names):
    """Move folders to the trash (restore brings them back; purge deletes them forever)."""
    failed = False
    async with make_client() as client:
        for name in dict.fromkeys(names):
            try:
                await sdk.trash_folder(client, name)
            except APIError as e:
                err_console.print(f"[red]✗[/red] {escape(name)}: {escape(e.message)}")
                failed = True
                continue
            console.print(f"[green]✓[/green] {escape(name)} moved to the trash.")
    if failed:
        sys.exit(1)


@vfolder.command("restore")
@click.argument("name")
@run
async def restore(name):
    """Bring a folder back from the trash."""
    async with make_client() as client:
        await sdk.restore_folder(client, name)
    console.print(f"Folder {escape(name)} restored.")


@vfolder.command("purge")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask to type the name.")
@run
async def purge(name, yes):
    """Delete a folder in the trash forever, with its files."""
    if not yes:
        typed = click.prompt(f"This deletes {name} and its files forever. Type the folder name to confirm",
                             default="", show_default=False, err=True)
        if typed != name:
            err_console.print("[red]Error:[/red] the name does not match; nothing was deleted.")
            sys.exit(1)
    async with make_client() as client:
        await sdk.purge_folder(client, name)
    console.print(f"Folder {escape(name)} deleted forever.")


@vfolder.command("clone")
@click.argument("name")
@click.argument("target")
@click.option("--host", "target_host", help="Storage host of the clone (default: the same).")
@click.option("--usage-mode", type=click.Choice(["general", "model", "data"]))
@click.option("--permission", type=click.Choice(["rw", "ro"]))
@click.option("--cloneable", is_flag=True, default=None, help="The clone may be cloned too.")
@click.option("--no-wait", is_flag=True, help="Return once the copy has started.")
@json_option
@run
async def clone(name, target, target_host, usage_mode, permission, cloneable, no_wait, as_json):
    """Copy a (cloneable) folder into a new folder TARGET of yours."""
    async with make_client() as client:
        data = await sdk.clone_folder(client, name, target, target_host=target_host, usage_mode=usage_mode,
                                      permission=permission, cloneable=cloneable)
        task_id = data.get("bgtask_id")
        outcome = None
        if task_id and not no_wait:
            outcome = await _follow_task(client, str(task_id))
    if as_json:
        print_json({**data, **({"result": outcome[0], "message": outcome[1]} if outcome else {})})
    if outcome and outcome[0] != "done":
        err_console.print(f"[red]Error:[/red] cloning {escape(name)} {outcome[0]}"
                          + (f": {escape(outcome[1])}" if outcome[1] else ""))
        sys.exit(1)
    if not as_json:
        state = "cloned" if outcome else "is being cloned"
        console.print(f"Folder {escape(name)} {state} into [bold]{escape(data.get('name') or target)}[/bold].")


async def _follow_task(client, task_id: str) -> tuple[str, str]:
    """Wait for a background task: ``(done|failed|cancelled, message)``."""
    result = ("done", "")
    try:
        async for event, data, _ in sse_events(client, "/events/background-task", {"task_id": task_id},
                                               reconnect=False):
            try:
                payload = json.loads(data) if data else {}
            except ValueError:
                payload = {}
            if event in ("bgtask_done", "bgtask_failed", "bgtask_cancelled"):
                result = (event.removeprefix("bgtask_"), str(payload.get("message") or ""))
    except APIError as e:
        if e.status != 404:
            raise
        # the task is unknown (long finished and forgotten): the folder itself tells
    return result


@vfolder.command("status")
@click.option("-g", "--project", "group_id", metavar="PROJECT_ID")
@json_option
@run
async def status(group_id, as_json):
    """How many folders you have and how much of your quota they use."""
    async with make_client() as client:
        data = await sdk.folder_status(client, group_id)
    if as_json:
        print_json(data)
        return
    limit = data.get("user_limit") or 0
    print_fields([("Your folders", f"{data.get('user_count')}" + (f" of {limit}" if limit else "")),
                  ("Project folders", data.get("project_count")), ("Shared with you", data.get("invited_count"))],
                 title="Folders")
    table = new_table("host", "scope", "used", "limit", title="Quotas")
    for host, scopes in (data.get("hosts") or {}).items():
        for scope in ("user", "project"):
            s = scopes.get(scope)
            if s:
                table.add_row(escape(host), scope, fmt_bytes(s.get("used_bytes") or 0),
                              fmt_bytes(s["limit_bytes"]) if s.get("limit_bytes") is not None else "unlimited")
    if table.row_count:
        console.print(table)


@vfolder.command("volumes")
@json_option
@run
async def volumes(as_json):
    """Superadmins: the storage volumes, their backends and usage."""
    async with make_client() as client:
        items = await sdk.volumes(client)
    if as_json:
        print_json(items)
        return
    table = new_table("host", "backend", "capabilities", "quotas", "used", "total", "use %", title="Volumes")
    for v in items:
        u = v.get("usage") or {}
        table.add_row(escape(str(v.get("host"))), escape(str(v.get("backend") or "-")),
                      escape(", ".join(v.get("capabilities") or []) or "-"),
                      "yes" if v.get("quota_supported") else "no", fmt_bytes(u.get("used") or 0),
                      fmt_bytes(u.get("total") or 0), f"{u.get('percentage', 0)}")
    console.print(table)


async def _scope_id(client, user: str | None, project: str | None, scope: str | None) -> str:
    if sum(x is not None for x in (user, project, scope)) != 1:
        raise click.UsageError("Give one of --user, --project or --scope.")
    if scope:
        return scope
    if user:
        return f"user:{(await client.get(f'/admin/users/{user}'))['uuid']}"
    try:
        return f"project:{uuid.UUID(project)}"
    except ValueError:
        pass
    found = [p for p in (await client.get("/admin/projects", params={"q": project})).get("items") or []
             if p.get("name") == project]
    if not found:
        raise LookupError(f"No such project: {project}")
    return f"project:{found[0]['id']}"


@vfolder.command("quota")
@click.option("--user", metavar="EMAIL", help="The quota of this user's folders.")
@click.option("--project", metavar="PROJECT", help="The quota of this project's folders (name or id).")
@click.option("--scope", metavar="SCOPE_ID", help="A quota scope id: user:<uuid> or project:<uuid>.")
@click.option("--host", help="Storage host (default: the default host).")
@click.option("--set", "set_to", metavar="SIZE", help="Set the limit in bytes (e.g. 10g, 500m).")
@click.option("--unset", is_flag=True, help="Back to the resource policy's default.")
@json_option
@run
async def quota(user, project, scope, host, set_to, unset, as_json):
    """Admins: show or set the storage quota of a user or a project on a host."""
    if set_to is not None and unset:
        raise click.UsageError("--set and --unset exclude each other.")
    limit = parse_size(set_to, "--set")
    async with make_client() as client:
        qsid = await _scope_id(client, user, project, scope)
        host = host or (await sdk.hosts(client)).get("default")
        if limit is not None:
            data = await sdk.set_quota(client, host, qsid, limit)
        elif unset:
            data = await sdk.unset_quota(client, host, qsid)
        else:
            data = await sdk.get_quota(client, host, qsid)
    if as_json:
        print_json(data)
        return
    lim = data.get("limit_bytes")
    where = "set explicitly" if data.get("explicit") else "resource policy default"
    print_fields([("Host", data.get("host")), ("Quota scope", data.get("quota_scope_id")),
                  ("Supported", data.get("supported")),
                  ("Limit", f"{fmt_bytes(lim)} ({where})" if lim is not None else f"unlimited ({where})"),
                  ("Policy default", fmt_bytes(data["default_limit_bytes"])
                   if data.get("default_limit_bytes") is not None else "unlimited"),
                  ("Used", fmt_bytes(data.get("used_bytes") or 0))], title="Quota")


# -- files -----------------------------------------------------------------------------------------
def _remote(path: str, hint: str, allow_root: bool = False) -> str:
    try:
        return transfer.normalize_remote(path, allow_root=allow_root)
    except ValueError as e:
        raise _bad_path(e, hint) from None


@vfolder.command("files")
@click.argument("name")
@click.argument("path", default="")
@json_option
@run
async def files(name, path, as_json):
    """List the files in a folder (or in PATH inside it)."""
    path = _remote(path, "PATH", allow_root=True)
    async with make_client() as client:
        items = await sdk.list_files(client, name, path)
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("No files.")
        return
    table = new_table("name", "type", "size", "modified", "mode", title=f"{name}:/{path}")
    for f in sorted(items, key=lambda f: (f.get("type") != "DIRECTORY", str(f.get("name")))):
        is_dir = f.get("type") == "DIRECTORY"
        table.add_row(("[bold blue]" if is_dir else "") + escape(str(f.get("name"))) + ("/[/bold blue]" if is_dir else ""),
                      str(f.get("type", "-")).lower(), "-" if is_dir else fmt_bytes(f.get("size") or 0),
                      fmt_time(f.get("modified")), escape(str(f.get("mode") or "-")))
    console.print(table)


vfolder.add_command(files, "ls-files")


@vfolder.command("mkdir")
@click.argument("name")
@click.argument("path")
@click.option("-p", "--parents", is_flag=True, help="Create missing parents; no error if it exists.")
@run
async def mkdir(name, path, parents):
    """Create a directory inside a folder."""
    path = _remote(path, "PATH")
    async with make_client() as client:
        await sdk.mkdir(client, name, path, parents=parents, exist_ok=parents)
    console.print(f"Created {escape(name)}:/{escape(path)}")


@vfolder.command("mv")
@click.argument("name")
@click.argument("src")
@click.argument("dst")
@run
async def mv(name, src, dst):
    """Move or rename a file or directory inside a folder (into DST when it is a directory)."""
    src, dst = _remote(src, "SRC"), _remote(dst, "DST", allow_root=True)
    async with make_client() as client:
        await sdk.move_file(client, name, src, dst)
    console.print(f"Moved {escape(name)}:/{escape(src)} → /{escape(dst)}")


@vfolder.command("rm-files")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Delete directories with their contents.")
@run
async def rm_files(name, paths, recursive):
    """Delete files (or directories, with -r) inside a folder."""
    remote = [_remote(p, "PATHS") for p in paths]
    async with make_client() as client:
        await sdk.delete_files(client, name, remote, recursive=recursive)
    console.print(f"Deleted {len(remote)} path{'s' if len(remote) != 1 else ''} from {escape(name)}.")


# -- transfers -------------------------------------------------------------------------------------
class RichReporter(transfer.Reporter):
    """Progress bars on stderr: one per file in flight, plus a total when there are several."""

    def __init__(self, progress: Progress, total_bytes: int | None = None, nfiles: int = 1) -> None:
        self.progress = progress
        self.overall: TaskID | None = (progress.add_task(f"[bold]total ({nfiles} files)", total=total_bytes)
                                       if nfiles > 1 else None)
        self.tasks: dict[str, TaskID] = {}

    def file_started(self, name: str, total: int | None, offset: int) -> None:
        self.tasks[name] = self.progress.add_task(escape(name), total=total, completed=offset)
        if self.overall is not None and offset:
            self.progress.advance(self.overall, offset)

    def advance(self, name: str, nbytes: int) -> None:
        if name in self.tasks:
            self.progress.advance(self.tasks[name], nbytes)
        if self.overall is not None:
            self.progress.advance(self.overall, nbytes)

    def file_done(self, name: str, size: int) -> None:
        task = self.tasks.pop(name, None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.console.print(f"[green]✓[/green] {escape(name)} ({fmt_bytes(size)})")

    def note(self, text: str) -> None:
        self.progress.console.print(escape(text))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", justify="left"), BarColumn(), DownloadColumn(binary_units=True),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err_console, transient=True)


@vfolder.command("upload")
@click.argument("name")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-b", "--base-dir", default="", metavar="REMOTE_DIR", help="Upload into this directory of the folder.")
@click.option("--chunk-size", default="16m", show_default=True, help="Bytes per request (e.g. 4m, 16m).")
@click.option("-j", "--jobs", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Files uploaded at the same time.")
@click.option("--stop-after", hidden=True, help="Testing: stop each file's upload after this many bytes.")
@run
async def upload(name, sources, base_dir, chunk_size, jobs, stop_after):
    """Upload files and directories (their structure kept) into folder NAME.

    An interrupted upload resumes where it stopped when the same command runs again."""
    try:
        plan = transfer.plan_upload(sources, base_dir)
    except FileNotFoundError as e:
        raise click.BadParameter(str(e), param_hint="SOURCES") from None
    except ValueError as e:
        raise _bad_path(e, "--base-dir/SOURCES") from None
    chunk = parse_size(chunk_size, "--chunk-size")
    if not chunk:
        raise click.BadParameter("must be at least 1 byte", param_hint="--chunk-size")
    stop = parse_size(stop_after, "--stop-after")
    state = transfer.upload_state()
    try:
        async with make_client() as client, transfer.new_http() as http:
            with _progress() as progress:
                reporter = RichReporter(progress, plan.total_bytes, len(plan.files))
                for d in plan.empty_dirs:
                    await sdk.mkdir(client, name, d, parents=True, exist_ok=True)

                async def grant(path: str, size: int, session: str | None) -> dict[str, Any]:
                    return await sdk.request_upload(client, name, path, size, session)

                def job(item: transfer.UploadItem):
                    return lambda: transfer.upload_item(http, grant, name, item, state=state, reporter=reporter,
                                                        chunk_size=chunk, stop_after=stop)

                await transfer.run_limited(jobs, [job(item) for item in plan.files])
    except asyncio.CancelledError:  # Ctrl+C: what arrived stays on the storage-proxy
        err_console.print("[yellow]Upload interrupted; run the same command again to resume.[/yellow]")
        raise
    except transfer.UploadInterrupted as e:
        err_console.print(f"[yellow]Upload of {escape(e.remote)} stopped at {e.offset} bytes; "
                          "run the same command again to resume.[/yellow]")
        sys.exit(3)
    except transfer.TransferError as e:
        refused = isinstance(e, transfer.StorageError) and e.status < 500  # rerunning will not help
        err_console.print(f"[red]Error:[/red] {escape(str(e))}"
                          + ("" if refused else ". Run the same command again to resume."))
        sys.exit(1)
    n = len(plan.files)
    dirs = f" and {len(plan.empty_dirs)} empty director{'ies' if len(plan.empty_dirs) != 1 else 'y'}" \
        if plan.empty_dirs else ""
    console.print(f"Uploaded {n} file{'s' if n != 1 else ''}{dirs} ({fmt_bytes(plan.total_bytes)}) "
                  f"to {escape(name)}:/{escape(transfer.normalize_remote(base_dir, allow_root=True))}")


@vfolder.command("download")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Directory to save into.")
@click.option("-x", "--extract", is_flag=True, help="Unpack downloaded directories (zip) into the output directory.")
@click.option("--stop-after", hidden=True, help="Testing: stop each file's download after this many bytes.")
@run
async def download(name, paths, out_dir, extract, stop_after):
    """Download files or directories (directories arrive as DIR.zip) from folder NAME.

    A partially downloaded file (FILE.part) resumes where it stopped."""
    remote = [_remote(p, "PATHS", allow_root=True) for p in paths]
    stop = parse_size(stop_after, "--stop-after")
    state = transfer.download_state()
    try:
        async with make_client() as client, transfer.new_http() as http:
            with _progress() as progress:
                reporter = RichReporter(progress)
                saved_all = []
                for path in remote:
                    saved, archive, _ = await sdk.download(client, name, path, out_dir, reporter=reporter,
                                                           state=state, http=http, stop_after=stop)
                    saved_all.append((saved, archive, path))
    except asyncio.CancelledError:  # Ctrl+C: FILE.part stays for the next run
        err_console.print("[yellow]Download interrupted; run the same command again to resume.[/yellow]")
        raise
    except transfer.DownloadInterrupted as e:
        err_console.print(f"[yellow]Download of {escape(e.name)} stopped at {e.offset} bytes; "
                          "run the same command again to resume.[/yellow]")
        sys.exit(3)
    except transfer.TransferError as e:
        err_console.print(f"[red]Error:[/red] {escape(str(e))}")
        sys.exit(1)
    for saved, archive, path in saved_all:
        if archive and extract:
            try:  # a directory's zip holds the directory; the whole folder's holds its contents
                tops = transfer.safe_extract(saved, out_dir if path else out_dir / name)
            except transfer.TransferError as e:
                err_console.print(f"[red]Error:[/red] {escape(str(e))}")
                sys.exit(1)
            saved.unlink()
            console.print(f"Extracted {escape(', '.join(str(t) for t in tops) or str(out_dir))}")
        else:
            console.print(f"Saved {escape(str(saved))}")


# -- sharing ---------------------------------------------------------------------------------------
perm_option = click.option("--perm", "--permission", "perm", type=click.Choice(["ro", "rw"]), default="ro",
                           show_default=True, help="What the invitees may do.")


async def _invite(name: str, emails: tuple[str, ...], perm: str, as_json: bool) -> None:
    async with make_client() as client:
        folder = await sdk.get_folder(client, name)
        if folder.get("ownership_type") == "group" or folder.get("type") in ("group", "project"):
            data = await sdk.share(client, name, list(emails), perm)  # project folder: shared directly
            done = data.get("shared_emails") or []
            verb = "Shared with"
        else:
            data = await sdk.invite(client, name, list(emails), perm)
            done = data.get("invited_ids") or []
            verb = "Invited"
    if as_json:
        print_json(data)
        return
    console.print(f"{verb} {escape(', '.join(done) or 'nobody')} ({perm}) to {escape(name)}.")
    missing = [e for e in emails if e not in done]
    if missing:
        err_console.print(f"[yellow]Not invited: {escape(', '.join(missing))}[/yellow]")


@vfolder.command("share")
@click.argument("name")
@click.argument("email")
@perm_option
@json_option
@run
async def share(name, email, perm, as_json):
    """Share a folder with a user (an invitation they accept; project folders are shared at once)."""
    await _invite(name, (email,), perm, as_json)


@vfolder.command("invite")
@click.argument("name")
@click.argument("emails", nargs=-1, required=True)
@perm_option
@json_option
@run
async def invite(name, emails, perm, as_json):
    """Invite users (by e-mail) to a folder."""
    await _invite(name, emails, perm, as_json)


@vfolder.command("unshare")
@click.argument("name")
@click.argument("emails", nargs=-1, required=True)
@json_option
@run
async def unshare(name, emails, as_json):
    """Stop sharing a folder with users (their pending invitations to it are cancelled too)."""
    async with make_client() as client:
        folder = await sdk.get_folder(client, name)
        data = await sdk.unshare(client, name, list(emails))
        cancelled = []
        for inv in await sdk.sent_invitations(client):
            if inv.get("vfolder_id") in (folder.get("id"), str(folder.get("id"))) and inv.get("invitee") in emails:
                await sdk.delete_invitation(client, str(inv["id"]))
                cancelled.append(inv["invitee"])
    data = {**data, "cancelled_invitations": cancelled}
    if as_json:
        print_json(data)
        return
    done = data.get("unshared_emails") or []
    if done:
        console.print(f"{escape(name)} is no longer shared with {escape(', '.join(done))}.")
    if cancelled:
        console.print(f"Cancelled the invitation{'s' if len(cancelled) != 1 else ''} of "
                      f"{escape(', '.join(cancelled))} to {escape(name)}.")
    rest = [e for e in emails if e not in done and e not in cancelled]
    if rest:
        err_console.print(f"[yellow]{escape(name)} was not shared with {escape(', '.join(rest))}.[/yellow]")


@vfolder.command("leave")
@click.argument("name")
@run
async def leave(name):
    """Leave a folder shared with you."""
    async with make_client() as client:
        await sdk.leave(client, name)
    console.print(f"You left {escape(name)}.")


@vfolder.command("invitations")
@click.option("--sent", is_flag=True, help="Invitations you sent that are still pending.")
@json_option
@run
async def invitations(sent, as_json):
    """Pending invitations to folders (sent to you, or --sent by you)."""
    async with make_client() as client:
        items = await (sdk.sent_invitations(client) if sent else sdk.invitations(client))
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("No pending invitations.")
        return
    table = new_table("id", "folder", "from", "to", "permission", "sent", title="Invitations")
    for i in items:
        table.add_row(escape(str(i.get("id"))), escape(str(i.get("vfolder_name") or i.get("vfolder_id"))),
                      escape(str(i.get("inviter") or "-")), escape(str(i.get("invitee") or "-")),
                      escape(str(i.get("perm") or "-")), fmt_time(i.get("created_at")))
    console.print(table)


@vfolder.command("accept")
@click.argument("inv_id")
@run
async def accept(inv_id):
    """Accept an invitation (see `workbay vfolder invitations`)."""
    async with make_client() as client:
        await sdk.accept_invitation(client, inv_id)
    console.print(f"Invitation {escape(inv_id)} accepted.")


@vfolder.command("decline")
@click.argument("inv_id")
@run
async def decline(inv_id):
    """Decline an invitation sent to you (or cancel one you sent)."""
    async with make_client() as client:
        await sdk.delete_invitation(client, inv_id)
    console.print(f"Invitation {escape(inv_id)} declined.")

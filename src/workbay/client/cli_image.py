"""`workbay image`: build kernel images from the recipes in images/ and list the local ones."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .output import print_json


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:d}:{secs:02d}"


class _BuildView:
    """A live line under the scrolling step list: spinner, image, step, elapsed, latest output."""

    def __init__(self, console: Console, verbose: bool) -> None:
        self.console = console
        self.verbose = verbose or not console.is_terminal
        self.t0 = time.monotonic()
        self.image = ""
        self.step = "starting"
        self.line = ""
        self.spinner = Spinner("dots")

    def __rich__(self) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_row(self.spinner, Text(f"{_clock(time.monotonic() - self.t0)} {self.image} · {self.step}",
                                        style="bold", overflow="ellipsis", no_wrap=True))
        grid.add_row("", Text(self.line, style="dim", overflow="ellipsis", no_wrap=True))
        return grid

    def event(self, ev: Any) -> None:
        stamp = f"[dim]{_clock(ev.elapsed)}[/dim]"
        self.image = ev.image
        if ev.kind == "log":
            self.line = ev.message
            if self.verbose:
                self.console.print(Text(f"  {ev.message}", style="dim"), highlight=False)
        elif ev.kind in ("start", "step"):
            self.step = ev.message
            self.line = ""
            self.console.print(f"{stamp} [bold]{ev.image}[/bold] {_escape(ev.message)}", highlight=False)
        elif ev.kind == "skip":
            self.console.print(f"{stamp} [green]✓[/green] [bold]{ev.image}[/bold] {_escape(ev.message)}",
                               highlight=False)
        elif ev.kind == "done":
            self.console.print(f"{stamp} [green]✓ {ev.image}[/green] {_escape(ev.message)}", highlight=False)


async def _cancel_on_signals(coro: Any) -> Any:
    """Run ``coro``; SIGTERM and SIGHUP cancel it so its cleanup runs (mmdebstrap stopped,
    temporary folder removed), as Ctrl+C does."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@click.group()
def image() -> None:
    """Kernel images: build them from the recipes in images/ (no registry needed), list them."""


@image.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Rebuild even when the image matches its recipe (rootfs included).")
@click.option("-v", "--verbose", is_flag=True, help="Print every line of apt/pip output (always on without a terminal).")
def build(name: str, force: bool, verbose: bool) -> None:
    """Build image NAME (python:3.11, pytorch:1.13-cpu, python:3.9, ... or `all`) and its bases.

    Skips images whose recipe-hash label matches their recipe; images are tagged
    localhost/workbay/NAME.
    """
    from workbay.images import BuildError, RecipeError, build_image

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    view = _BuildView(console, verbose)
    try:
        work = _cancel_on_signals(build_image(name, view.event, force=force))
        if console.is_terminal:
            with Live(view, console=console, refresh_per_second=8, transient=True):
                results = asyncio.run(work)
        else:
            results = asyncio.run(work)
    except (BuildError, RecipeError) as e:
        console.print(f"[red]Error:[/red] {_escape(str(e))}", highlight=False)
        sys.exit(1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("[red]Interrupted: nothing was tagged; temporary files removed.[/red]")
        sys.exit(130)
    built = [r for r in results if r.built]
    total = sum(r.seconds for r in built)
    summary = (f"{len(built)} built in {_clock(total)}, {len(results) - len(built)} up to date"
               if built else "everything up to date")
    console.print(f"[green]Done:[/green] {summary}.")
    for r in results:
        click.echo(r.image)


@image.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--labels", "show_labels", is_flag=True, help="Show every label in the table.")
def list_(as_json: bool, show_labels: bool) -> None:
    """List local kernel images (those with an ai.backend.kernelspec label)."""
    from workbay.images import REGISTRY_PREFIX, BuildError, list_images

    try:
        items = asyncio.run(list_images())
    except BuildError as e:
        Console(stderr=True).print(f"[red]Error:[/red] {_escape(str(e))}", highlight=False)
        sys.exit(1)
    if as_json:
        print_json(items)
        return
    console = Console()
    table = Table(header_style="bold")
    table.add_column("name", no_wrap=True)
    for col in ("display name", "size", "status", "apps", "min resources"):
        table.add_column(col)
    if show_labels:
        table.add_column("labels")
    for item in items:
        labels = item["labels"]
        row = [
            item["name"],
            item["display_name"] or "-",
            f"{item['size'] / 1e6:.0f} MB",
            item["status"] or "-",
            " ".join(p.split(":", 1)[0] for p in labels.get("ai.backend.service-ports", "").split(",") if p) or "-",
            " ".join(f"{k.rsplit('.', 1)[1]}={v}" for k, v in labels.items()
                      if k.startswith("ai.backend.resource.min.")) or "-",
        ]
        if show_labels:
            row.append("\n".join(f"{k}={v}" for k, v in labels.items()))
        table.add_row(*row)
    console.print(table)
    console.print(f"Total {len(items)} images (names without a registry are under {REGISTRY_PREFIX}/)")

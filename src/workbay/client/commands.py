"""What the ``cli_*`` modules share to define commands: running async commands (API errors, Ctrl+C
and unreachable managers end them with a message, not a traceback), one-shot requests, common
options, and parsers of option values."""

from __future__ import annotations

import asyncio
import functools
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import click
import httpx

from workbay.common.domain import parse_bytes

from .credentials import make_client
from .output import err_console
from .sdk import APIError

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
owner_option = click.option("--owner", "owner_access_key", metavar="ACCESS_KEY",
                            help="The owner's access key (admins acting on another user's session).")


# -- running commands ------------------------------------------------------------------------------
def run_async(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async click command; API errors end it with their title and message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return asyncio.run(fn(*args, **kwargs))
        except APIError as e:
            err_console.print(f"[red]Error:[/red] {e.title or 'request failed'}"
                              + (f": {e.msg}" if e.msg and e.msg != e.title else ""))
            sys.exit(1)
        except LookupError as e:
            err_console.print(f"[red]Error:[/red] {e}")
            sys.exit(1)

    return wrapper


def run(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """:func:`run_async`, plus Ctrl+C → exit 130 and an unreachable manager → exit 1, both without
    a traceback."""
    wrapped = run_async(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return wrapped(*args, **kwargs)
        except KeyboardInterrupt:
            err_console.print("[yellow]Interrupted.[/yellow]")
            sys.exit(130)
        except httpx.TransportError as e:
            err_console.print(f"[red]Error:[/red] cannot reach the manager ({e.__class__.__name__}: {e})",
                              soft_wrap=True)
            sys.exit(1)

    return wrapper


async def call(method: str, path: str, **kw: Any) -> Any:
    """One request with the saved credentials."""
    async with make_client() as client:
        return await client.request(method, path, **kw)


# -- parsing options -------------------------------------------------------------------------------
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str, hint: str) -> int:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d`` → seconds."""
    m = _DURATION_RE.match(value)
    if not m:
        raise click.BadParameter(f"{value!r} is not a duration (examples: 90, 10m, 2h)", param_hint=hint)
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_pairs(values: tuple[str, ...], hint: str, split_commas: bool = True) -> dict[str, str]:
    """``KEY=VALUE`` items (repeatable; ``cpu=2,mem=4g`` is split at commas when allowed)."""
    out: dict[str, str] = {}
    for value in values:
        for item in (value.split(",") if split_commas else [value]):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=hint)
            out[key.strip()] = val.strip() if split_commas else val
    return out


def parse_size(value: str | None, hint: str) -> int | None:
    """A byte size in binary units (``1048576``, ``512k``, ``16m``, ``16MiB``, ``1.5g``) by the
    domain's rule; None when the option is absent."""
    if value is None:
        return None
    try:
        return int(parse_bytes(value))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=hint) from None

"""CLI output: rich tables for people, JSON for scripts.  The consoles every ``cli_*`` module
prints to; how single values look is ``formatting``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Tables go to stdout; when it is not a terminal (pipes, logs, tests) they get room instead of
# being squeezed to 80 columns with cells cut short.
console = Console() if sys.stdout.isatty() else Console(width=int(os.environ.get("COLUMNS") or 200))
err_console = Console(stderr=True)


class Markup(str):
    """A string that holds rich markup on purpose (other values are escaped)."""


def cell(value: Any) -> str:
    """A value for a table cell, markup escaped: ``-`` when empty, yes/no, JSON for lists and dicts."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return escape(json.dumps(value))
    return escape(str(value))


def new_table(*columns: str, title: str | None = None) -> Table:
    """A table with these column headers, its title on the left."""
    made = Table(title=title, header_style="bold", title_justify="left")
    for col in columns:
        made.add_column(col)
    return made


def print_fields(rows: list[tuple[str, Any]], title: str | None = None) -> None:
    """Field/value rows (values escaped unless :class:`Markup`)."""
    made = Table(show_header=False, title=title, title_justify="left")
    made.add_column("field", style="bold")
    made.add_column("value", overflow="fold")
    for key, value in rows:
        made.add_row(key, str(value) if isinstance(value, Markup) else cell(value))
    console.print(made)


def warn_stream_interrupted(error: BaseException, retry: float) -> None:
    """What the CLI says when an event stream drops and is about to reconnect."""
    err_console.print(f"[yellow]Event stream interrupted ({error.__class__.__name__}); "
                      f"reconnecting in {retry:g}s…[/yellow]")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _raw_cell(value: Any) -> str:  # print_table's cells: not escaped
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value) if value else "-"
    return str(value)


def print_table(items: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None,
                total: int | None = None) -> None:
    table = Table(title=title, header_style="bold")
    for col in columns:
        table.add_column(col.replace("_", " "))
    for item in items:
        table.add_row(*(_raw_cell(item.get(col)) for col in columns))
    console.print(table)
    if total is not None:
        console.print(f"Total {total} items")


def print_object(obj: dict[str, Any]) -> None:
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in obj.items():
        table.add_row(key, _raw_cell(value))
    console.print(table)


def emit(data: Any, as_json: bool, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """A list answer ({"items", "total_count"}) as a table, an object as key/value rows."""
    if as_json:
        print_json(data)
    elif isinstance(data, dict) and "items" in data and columns:
        print_table(data["items"], columns, title, data.get("total_count"))
    elif isinstance(data, dict):
        print_object(data)
    else:
        print_json(data)

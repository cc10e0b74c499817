"""CLI output: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _cell(value: Any) -> str:
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
        table.add_row(*(_cell(item.get(col)) for col in columns))
    console.print(table)
    if total is not None:
        console.print(f"Total {total} items")


def print_object(obj: dict[str, Any]) -> None:
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in obj.items():
        table.add_row(key, _cell(value))
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

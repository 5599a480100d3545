"""Shared output helpers: rich tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from cyclopts import Parameter

Output = Literal["table", "json"]
# The ``--output/-o`` option every listing command takes.
OutputOption = Annotated[Output, Parameter(name=["--output", "-o"])]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN/inf are not JSON: keep them readable
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_json_safe(data), indent=2, default=str) + "\n")


def format_ms(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def emit(
    output: Output,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    records: Any,
) -> None:
    """Print ``rows`` as a table, or ``records`` as JSON when ``output == "json"``."""
    if output == "json":
        print_json(records)
    else:
        print_table(title, columns, rows)

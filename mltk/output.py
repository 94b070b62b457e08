"""The output contract: results on stdout, everything else on stderr.

`--json` prints exactly one JSON object with `"schema_version": 1` on stdout. Logs, warnings and
progress bars go to stderr, on rank 0 only; progress bars only when stderr is a terminal.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass
class Table:
    """A result table: printed with rich for people, as a list of dicts in JSON."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    in_json: bool = True  # False: a people-only view of data the JSON result already holds

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def _jsonable(value: Any) -> Any:
    """Turn numpy/torch scalars, paths and non-finite floats into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _jsonable(value.item())
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return str(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


class _NullBar:
    def advance(self, n: float = 1, **postfix: Any) -> None:
        pass


class _RichBar:
    def __init__(self, progress, task) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1, **postfix: Any) -> None:
        info = "  ".join(f"{k}={_fmt(v)}" for k, v in postfix.items())
        self._progress.update(self._task, advance=n, info=info)


class Output:
    """Where a command writes: `log`/`warn` to stderr, `result` to stdout, `progress` bars."""

    def __init__(self, *, json: bool = False, quiet: bool = False, is_main: bool = True) -> None:
        self.json = json
        self.quiet = quiet
        self.is_main = is_main
        self._result_written = False

    def log(self, message: str) -> None:
        if self.is_main and not self.quiet and not self.json:
            print(message, file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        if self.is_main:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def result(
        self,
        data: dict[str, Any] | None = None,
        *,
        table: Table | None = None,
        tables: Sequence[Table] = (),
        text: str | None = None,
    ) -> None:
        """Write the command's result once: one JSON object with --json, else text and tables."""
        if not self.is_main:
            return
        if self._result_written:
            raise RuntimeError("Output.result() may be called once per command")
        self._result_written = True
        all_tables = ([table] if table is not None else []) + list(tables)
        if self.json:
            all_tables = [t for t in all_tables if t.in_json]
            payload: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
            payload.update(_jsonable(data or {}))
            if len(all_tables) == 1 and "rows" not in payload:
                payload["rows"] = _jsonable(all_tables[0].records())
            elif all_tables and "tables" not in payload:
                payload["tables"] = {t.title: _jsonable(t.records()) for t in all_tables}
            sys.stdout.write(json.dumps(payload, allow_nan=False) + "\n")
            sys.stdout.flush()
            return
        if text:
            sys.stdout.write(text.rstrip("\n") + "\n")
        if all_tables:
            from rich.console import Console
            from rich.table import Table as RichTable

            # A pipe or file gets wide, unwrapped lines; a terminal gets its own width.
            width = None if sys.stdout.isatty() else 200
            console = Console(file=sys.stdout, width=width)
            for t in all_tables:
                rt = RichTable(title=t.title)
                for col in t.columns:
                    rt.add_column(str(col))
                for row in t.rows:
                    rt.add_row(*(_fmt(v) for v in row))
                console.print(rt)
        if not text and not all_tables and data:
            for key, value in data.items():
                sys.stdout.write(f"{key}: {_fmt(value)}\n")
        sys.stdout.flush()

    @contextmanager
    def progress(self, total: float | None, description: str) -> Iterator[_NullBar | _RichBar]:
        """A progress bar on stderr; a silent stand-in when nobody is watching."""
        if not (self.is_main and not self.quiet and not self.json and sys.stderr.isatty()):
            yield _NullBar()
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(file=sys.stderr),
            transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total, info="")
            yield _RichBar(progress, task)

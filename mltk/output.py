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
    """One value for people: integers whole, floats to 4 significant digits, no `None`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if 1e4 <= abs(value) < 1e15:
            return str(round(value))
        return f"{value:.4g}"
    if isinstance(value, dict):
        if list(value)[:1] == ["label"]:  # {"label": "2", "probability": 0.98} -> "2: 0.98"
            return ": ".join(_fmt(v) for v in value.values())
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())  # "yes 0.9, no 0.1"
    if isinstance(value, (list, tuple)):
        if value and all(_is_pair(v) for v in value):  # [["not", 0.9], ...] -> "not 0.9, ..."
            return ", ".join(f"{v[0]} {_fmt(v[1])}" for v in value)
        return ", ".join(_fmt(v) for v in value)
    return str(value)


jsonable = _jsonable


def _is_pair(v: Any) -> bool:
    return (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and isinstance(v[0], str)
        and isinstance(v[1], (int, float))
        and not isinstance(v[1], bool)
    )


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not _is_columns(value):
            items += _flatten(value, name + ".")
        else:
            items.append((name, value))
    return items


def _is_records(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _is_columns(value: Any) -> bool:
    """A dict of equal-length lists (a forecast per channel, say): printed as a table."""
    if not isinstance(value, dict) or not value:
        return False
    lengths = {len(v) if isinstance(v, (list, tuple)) else -1 for v in value.values()}
    return len(lengths) == 1 and lengths.pop() > 1


def render(data: dict[str, Any], width: int | None = None) -> str:
    """A result for people: scalars as a key/value list, rows as tables, nothing cut short.

    A value too long for its line goes whole on the next one; table cells wrap (fold) instead of
    being cut with an ellipsis.
    """
    import io
    import textwrap

    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width or _width(), no_color=True, highlight=False,
                      soft_wrap=False)  # fmt: skip
    pairs: list[tuple[str, str]] = []

    def flush() -> None:
        if not pairs:
            return
        keys = min(max(len(k) for k, _ in pairs), 28)
        for k, v in pairs:
            if len(k) <= keys and keys + 2 + len(v) <= console.width and "\n" not in v:
                buf.write(f"{k.ljust(keys)}  {v}\n")
            else:
                buf.write(f"{k}:\n")
                pad = " " * (len(k) - len(k.lstrip()) + 2)  # under a block's key, deeper
                for line in v.splitlines() or [""]:
                    # a list breaks between its items (at spaces), never inside a word or path
                    for part in textwrap.wrap(line, console.width - len(pad),
                                              break_long_words=False,
                                              break_on_hyphens=False) or [""]:  # fmt: skip
                        buf.write(f"{pad}{part}\n")
        pairs.clear()

    for key, value in _flatten(data):
        if _is_records(value) or _is_columns(value):
            flush()
            rows = (
                value if _is_records(value) else [dict(zip(value, r)) for r in zip(*value.values())]
            )
            columns = list(dict.fromkeys(k for r in rows for k in r))
            if _table_fits(columns, rows, console.width):
                console.print(
                    _rich_table(key, columns, [[r.get(c) for c in columns] for r in rows])
                )
                continue
            for i, r in enumerate(rows):  # one key/value block per row
                buf.write(f"{key} {i + 1} of {len(rows)}\n")
                pairs.extend((f"  {c}", _fmt(r[c])) for c in columns if c in r)
                flush()
        else:
            pairs.append((key, _fmt(value)))
    flush()
    return buf.getvalue()


def _table_fits(columns: list, rows: list[dict], width: int) -> bool:
    """Whether a table shows each header and number unbroken: else its columns would fold into
    slivers, and each row reads better as a block."""
    need = 1
    for c in columns:
        cells = [r.get(c) for r in rows]
        numbers = [len(_fmt(v)) for v in cells if isinstance(v, (int, float))]
        need += 3 + max(len(str(c)), *numbers, 1)
    return need <= width


def _width() -> int:
    import os
    import shutil

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return 80


def _rich_table(title: str, columns: Sequence[Any], rows: list[Sequence[Any]]):
    from rich import box
    from rich.table import Table as RichTable

    table = RichTable(title=title, box=box.SQUARE, title_justify="left")
    for j, col in enumerate(columns):
        values = [row[j] for row in rows if row[j] is not None]
        numeric = values and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 for v in values)  # fmt: skip
        table.add_column(str(col), overflow="fold", justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    return table


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
        """A line on stderr (also with --json: a heartbeat for long CI jobs), unless --quiet."""
        if self.is_main and not self.quiet:
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

            console = Console(file=sys.stdout, width=_width(), highlight=False)
            for t in all_tables:
                console.print(_rich_table(t.title, t.columns, t.rows))
        if not text and not all_tables and data:
            sys.stdout.write(render(data))
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

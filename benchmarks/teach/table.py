"""Print a teach benchmark's table exactly as the docs show it (docs/tables.py renders both)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def show(name: str) -> None:
    spec = importlib.util.spec_from_file_location("mltk_docs_tables", ROOT / "docs" / "tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    print(tables.generate(name))

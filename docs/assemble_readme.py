"""Copy each plugin's section (docs/<plugin>.md) and the start-up table into README.md.

Run after editing a plugin's docs or re-running a benchmark: `python docs/assemble_readme.py`.
It first rewrites the generated blocks (`<!-- table: NAME -->`) of each plugin's docs from the
benchmarks' JSON (docs/tables.py), then copies the docs. tests/test_readme.py checks that
README.md holds every section verbatim, tests/test_docs_tables.py that the blocks match the JSON.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from mltk.plugins import BUILTIN

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = list(BUILTIN)
START, END = "<!-- PLUGIN SECTIONS -->", "<!-- END PLUGIN SECTIONS -->"
T_START, T_END = "<!-- STARTUP TABLE -->", "<!-- END STARTUP TABLE -->"


def _between(text: str, start: str, end: str, body: str) -> str:
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1] if end in rest else rest
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def load_tables():
    """docs/tables.py, loaded by path (a plain `import tables` could find PyTables instead)."""
    spec = importlib.util.spec_from_file_location("mltk_docs_tables", ROOT / "docs" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def startup_table() -> str:
    data = json.loads((ROOT / "benchmarks/startup/bench_startup.json").read_text())
    lines = [
        "| command | median (s) | min (s) | over bare python (s) |",
        "| --- | --- | --- | --- |",
    ]
    for r in data["rows"]:
        lines.append(
            f"| `{r['command']}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['over_python_s']:+.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    tables = load_tables()
    for p in PLUGINS:
        if tables.refresh(ROOT / "docs" / f"{p}.md"):
            print(f"docs/{p}.md: generated tables updated from the benchmarks' JSON")
    readme = (ROOT / "README.md").read_text()
    sections = "\n\n".join((ROOT / "docs" / f"{p}.md").read_text().strip() for p in PLUGINS)
    readme = _between(readme, START, END, sections)
    readme = _between(readme, T_START, T_END, startup_table())
    (ROOT / "README.md").write_text(readme)


if __name__ == "__main__":
    main()

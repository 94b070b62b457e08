"""Start-up time of `mltk --help` against a bare `python -c pass`, measured in the same run.

Prints a markdown table and writes bench_startup.json beside this file.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mltk.plugins import BUILTIN

REPEATS = 21


def _time(cmd: list[str]) -> list[float]:
    out = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    mltk = shutil.which("mltk", path=str(Path(sys.executable).parent)) or "mltk"
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "mltk --help": [mltk, "--help"],
        **{f"mltk {p} --help": [mltk, p, "--help"] for p in BUILTIN},
        "mltk plugins": [mltk, "plugins"],
    }
    _time(cases["mltk --help"][:])  # warm the file cache
    rows = []
    for name, cmd in cases.items():
        t = _time(cmd)
        rows.append({"command": name, "median_s": statistics.median(t), "min_s": min(t)})
    base = rows[0]["median_s"]
    print("| command | median (s) | min (s) | over bare python (s) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        r["over_python_s"] = r["median_s"] - base
        print(
            f"| `{r['command']}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['over_python_s']:+.3f} |"
        )
    Path(__file__).with_name("bench_startup.json").write_text(
        json.dumps({"repeats": REPEATS, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()

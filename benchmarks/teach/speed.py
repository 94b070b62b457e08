"""Iterations per second of GFT-1 against the pool size: the dense update (every pixel's kernel
value each step, as the authors' notebooks do) against the truncated stencil with the row-maximum
argmax (mltk's CPU path for images).

    OMP_NUM_THREADS=1 python benchmarks/teach/speed.py

camera, standardised, at 64^2 ... 512^2 pixels, RBF h = 1 px, eta 0.25, one thread, fp64; both
paths run the same steps from f0 = 0 (the truncated one 5,000, the dense one about 2 s worth)
and agree to 1e-9 (tested). mltk's dense path also logs the greedy ratio each step; the plain
numpy loop of the notebooks' update (no ratio) is timed beside it for reference. Prints a
markdown table and writes speed.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from mltk_plugins.teach.config import TeachConfig
from mltk_plugins.teach.resolve import plan, pool_factory
from mltk_plugins.teach.teachers import Teacher
from mltk_plugins.teach.teaching import teach

HERE = Path(__file__).parent
SIZES = (64, 128, 256, 512)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="reprint the table of speed.json")
    args = ap.parse_args()
    if args.table:
        print_table({})
        return
    torch.set_num_threads(1)
    rows = []
    for size in SIZES:
        row = {"size": size, "pixels": size * size}
        for support, steps in (("truncated", 5000), ("dense", max(20, 2_000_000 // size**2 * 4))):
            p = plan(
                TeachConfig(data="camera", size=size, support=support, eps=1e-300, max_iter=steps)
            )
            tr = teach(pool_factory(p), p.problem.target, Teacher("gft", 1), p.settings)
            row[support] = {
                "steps": tr.steps,
                "seconds": tr.seconds,
                "it_per_s": tr.iterations_per_second,
            }
        row["notebook"] = notebook_loop(p.problem, steps=max(20, 2_000_000 // size**2 * 4))
        row["speedup"] = row["truncated"]["it_per_s"] / row["dense"]["it_per_s"]
        rows.append(row)
        fast, dense = row["truncated"]["it_per_s"], row["dense"]["it_per_s"]
        print(f"{size}^2: {fast:,.0f} vs {dense:,.0f} it/s", flush=True)
    out = {
        "rows": rows,
        "threads": 1,
        "cpu": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }
    (HERE / "speed.json").write_text(json.dumps(out, indent=2) + "\n")
    print_table(out)


def notebook_loop(problem, steps: int) -> dict:
    """The authors' update written in plain numpy: argmax of |f - f*|, the kernel row over every
    pixel, f += 2 eta r K, the loss; no greedy ratio. A reference for the dense path's cost."""
    x, y = problem.x, problem.target
    f = problem.f0.copy()
    t0 = time.perf_counter()
    for _ in range(steps):
        r = y - f
        i = int(np.argmax(np.abs(r)))
        k = np.exp(-((x - x[i]) ** 2).sum(1))  # h = 1
        f += 2 * 0.25 * r[i] * k
        float(np.linalg.norm(y - f)) / len(y)
    seconds = time.perf_counter() - t0
    return {"steps": steps, "seconds": seconds, "it_per_s": steps / seconds}


def print_table(out: dict) -> None:
    """The docs' table (docs/tables.py, from the JSON just written)."""
    from table import show

    show("teach-speed")


if __name__ == "__main__":
    main()

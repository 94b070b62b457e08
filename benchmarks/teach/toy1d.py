"""The paper's 1-D toy: every teacher's iterative teaching dimension (ITD) to eps = 1e-4.

    OMP_NUM_THREADS=1 python benchmarks/teach/toy1d.py [--seeds 10]

The seven curves of the paper's figure (GFT-1, GFT-0.05, GFT-0.5, RFT-0.05, Whole, Pool GFT-1 with
p = 0.8, Alt GFT-1 with q = 0.2) plus RFT-1, GFT-14 and RFT-14; each random teacher over --seeds
seeds (mean and standard deviation of its ITD; runs that do not reach eps in T = 20,000 steps
are counted apart). Also the theory's prediction of the RFT/GFT ratio, 1 / mean(gamma) over the
GFT-1 run. Prints a markdown table and writes toy1d.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from mltk_plugins.teach.config import TeachConfig
from mltk_plugins.teach.resolve import plan, pool_factory
from mltk_plugins.teach.teachers import parse
from mltk_plugins.teach.teaching import teach

HERE = Path(__file__).parent
TEACHERS = [
    "gft-1",
    "gft-0.05",
    "gft-0.5",
    "rft-0.05",
    "whole",
    "pool-gft-1",
    "alt-gft-1",
    "rft-1",
    "gft-14",
    "rft-14",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--max-iter", type=int, default=20_000)
    ap.add_argument("--table", action="store_true", help="reprint the table of toy1d.json")
    args = ap.parse_args()
    if args.table:
        print_table({})
        return
    torch.set_num_threads(1)
    p = plan(TeachConfig(max_iter=args.max_iter))
    build = pool_factory(p)
    results, t0 = [], time.time()
    for teacher in parse(TEACHERS, 1):
        runs = []
        for seed in range(args.seeds if teacher.random else 1):
            tr = teach(
                build,
                p.problem.target,
                teacher,
                p.settings,
                seed=seed,
                alternative=p.problem.alternative,
            )
            runs.append(
                {
                    "seed": seed,
                    "itd": tr.itd,
                    "final_loss": float(tr.losses[-1]),
                    "theory_ratio": 1 / float(tr.gammas.mean()),
                    "examples": tr.examples,
                }
            )
        itds = [r["itd"] for r in runs if r["itd"] is not None]
        results.append(
            {
                "teacher": teacher.label,
                "name": teacher.name,
                "seeds": len(runs),
                "reached": len(itds),
                "itd_mean": statistics.mean(itds) if itds else None,
                "itd_std": statistics.stdev(itds) if len(itds) > 1 else 0.0 if itds else None,
                "runs": runs,
            }
        )
        print(f"{teacher.label}: {results[-1]['itd_mean']}", flush=True)
    by = {r["name"]: r for r in results}
    out = {
        "problem": "toy1d",
        "eps": p.settings.eps,
        "eta": p.settings.eta,
        "bandwidth": p.kernel.h,
        "max_iter": args.max_iter,
        "seeds": args.seeds,
        "results": results,
        "rft1_over_gft1": by["rft-1"]["itd_mean"] / by["gft-1"]["itd_mean"],
        "theory_ratio_gft1": by["gft-1"]["runs"][0]["theory_ratio"],
        "seconds": round(time.time() - t0, 1),
        "torch": torch.__version__,
    }
    (HERE / "toy1d.json").write_text(json.dumps(out, indent=2) + "\n")
    print_table(out)


def print_table(out: dict) -> None:
    """The docs' table (docs/tables.py, from the JSON just written)."""
    from table import show

    show("teach-toy1d")


if __name__ == "__main__":
    main()

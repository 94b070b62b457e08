"""GFT against RFT on images: the iterative teaching dimension and the loss at fixed budgets.

    OMP_NUM_THREADS=1 python benchmarks/teach/images.py [--seeds 3]

RBF kernel with h = 1 pixel, eta = 0.25 (the theory's bound for the square loss), f(row, col) on
standardised grey pixels: chelsea at 64x64 from f0 = 0 to eps = 1e-3; face 0 taught from face 1
of `faces`, the digits' mean "0" from the first "8", and camera at 128x128 from f0 = 0, each to
5% of its initial loss. RFT-1 over --seeds seeds. Beside each measured RFT/GFT ratio, the
theory's 1 / mean(gamma) over the GFT run. The losses at fixed budgets come from runs of the
same teachers and seeds that do not stop at eps. Prints a markdown table
and writes images.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from mltk_plugins.teach.config import TeachConfig
from mltk_plugins.teach.resolve import plan, pool_factory
from mltk_plugins.teach.teachers import Teacher
from mltk_plugins.teach.teaching import teach

HERE = Path(__file__).parent
PROBLEMS = {
    "chelsea 64x64": TeachConfig(data="chelsea", size=64, eps=1e-3),
    "faces": TeachConfig(data="faces", eps_rel=0.05),
    "digits": TeachConfig(data="digits", eps_rel=0.05),
    "camera 128x128": TeachConfig(data="camera", size=128, eps_rel=0.05),
}
BUDGETS = (1000, 5000, 20000)
GOALS = {"chelsea 64x64": 3.0, "faces": 3.0, "digits": 2.4, "camera 128x128": 3.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=400_000)
    ap.add_argument("--table", action="store_true", help="reprint the table of images.json")
    args = ap.parse_args()
    if args.table:
        print_table({})
        return
    torch.set_num_threads(1)
    rows, t0 = [], time.time()
    for label, cfg in PROBLEMS.items():
        cfg = TeachConfig(**{**cfg.__dict__, "max_iter": args.max_iter})
        p = plan(cfg)
        build = pool_factory(p)
        runs = {}
        for teacher in (Teacher("gft", 1), Teacher("rft", 1)):
            runs[teacher.label] = []
            for seed in range(args.seeds if teacher.random else 1):
                tr = teach(build, p.problem.target, teacher, p.settings, seed=seed)
                # the loss at fixed budgets: the same teacher and seed, not stopped at eps
                budget = replace(p.settings, eps=1e-300, max_iter=max(BUDGETS))
                long = teach(build, p.problem.target, teacher, budget, seed=seed)
                runs[teacher.label].append(
                    {
                        "seed": seed,
                        "itd": tr.itd,
                        "loss_at": {str(b): float(long.losses[b]) for b in BUDGETS},
                        "theory_ratio": 1 / float(tr.gammas.mean()),
                        "it_per_s": tr.iterations_per_second,
                    }
                )
        gft, rft = runs["GFT-1"], runs["RFT-1"]
        rft_itds = [r["itd"] for r in rft]
        rows.append(
            {
                "problem": label,
                "pixels": p.problem.n,
                "eps": p.settings.eps,
                "initial_loss": p.initial_loss,
                "gft_itd": gft[0]["itd"],
                "rft_itd_mean": statistics.mean(rft_itds) if None not in rft_itds else None,
                "rft_itd_std": statistics.stdev(rft_itds)
                if None not in rft_itds and len(rft_itds) > 1
                else None,
                "ratio": (statistics.mean(rft_itds) / gft[0]["itd"])
                if None not in rft_itds
                else None,
                "theory_ratio": gft[0]["theory_ratio"],
                "goal": GOALS[label],
                "runs": runs,
            }
        )
        print(f"{label}: GFT {rows[-1]['gft_itd']}, RFT {rows[-1]['rft_itd_mean']}", flush=True)
    out = {
        "bandwidth": 1.0,
        "eta": 0.25,
        "seeds": args.seeds,
        "budgets": list(BUDGETS),
        "results": rows,
        "seconds": round(time.time() - t0, 1),
    }
    (HERE / "images.json").write_text(json.dumps(out, indent=2) + "\n")
    print_table(out)


def print_table(out: dict) -> None:
    """The docs' table (docs/tables.py, from the JSON just written)."""
    from table import show

    show("teach-images")


if __name__ == "__main__":
    main()

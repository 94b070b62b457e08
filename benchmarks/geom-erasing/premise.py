"""The premise: does plain fine-tuning on the contaminated world make the model paint the concept?

    OMP_NUM_THREADS=1 python benchmarks/geom-erasing/premise.py [--concept qr] [--table]

Plain fine-tunes of the shipped tiny model (lr 1e-3, batch 32, seed 0) on the world with the
concept drawn anywhere or in a corner, in 50% or 75% of the images, for 400 or 1600 steps; ICR
by the shipped detector on 200 held-out prompts (20 DPM-Solver++ steps, guidance 4.5), with
alignment and Fréchet distance. A removal benchmark needs a plain fine-tune whose ICR is at
least 0.3. The 75% corner row is removal.py's plain run of seed 0 where that exists (the same
command). Prints a markdown table and writes premise.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mltk

HERE = Path(__file__).parent
RUNS = Path("runs/bench-geom-erasing")
GRID = [("anywhere", 0.5, 400), ("corner", 0.5, 400), ("corner", 0.5, 1600), ("corner", 0.75, 400)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concept", default="qr")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    out = HERE / "premise.json"
    if not args.table:
        import torch

        torch.set_num_threads(1)
        rows = []
        for placement, ratio, steps in GRID:
            run = RUNS / f"premise-{args.concept}-{placement}-{ratio}-{steps}"
            same = RUNS / f"data-{args.concept}-plain-0"  # removal.py's plain run, seed 0
            if (placement, ratio, steps) == ("corner", 0.75, 400) and (same / "pipeline").is_dir():
                run = same
            t0 = time.perf_counter()
            if not (run / "pipeline").is_dir():
                mltk.run(
                    "geom-erasing",
                    "erase",
                    concept=args.concept,
                    method="plain",
                    placement=placement,
                    ratio=ratio,
                    steps=steps,
                    lr=1e-3,
                    seed=0,
                    out=str(run),
                    quiet=True,
                    threads=1,
                )
            seconds = time.perf_counter() - t0
            ev = mltk.run(
                "geom-erasing", "eval", runs=[str(run)], prompts=200, quiet=True, threads=1
            )["runs"][0]
            rows.append(
                {
                    "concept": args.concept,
                    "placement": placement,
                    "ratio": ratio,
                    "steps": steps,
                    "icr": ev[f"icr_{args.concept}"],
                    "alignment": ev["alignment"],
                    "frechet": ev["frechet"],
                    "train_seconds": round(seconds, 1),
                }
            )
            print(rows[-1], flush=True)
        out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    rows = json.loads(out.read_text())["rows"]
    print("| concept | placement | share with it | steps | ICR | alignment | Fréchet |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['concept']} | {r['placement']} | {r['ratio']} | {r['steps']} | "
            f"{r['icr']:.3f} | {r['alignment']:.3f} | {r['frechet']:.0f} |"
        )


if __name__ == "__main__":
    main()

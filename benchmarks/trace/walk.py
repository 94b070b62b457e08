"""The two layouts of the rule walk: seconds per training step, dense against sparse.

    OMP_NUM_THREADS=1 python benchmarks/trace/walk.py [--steps 5]

One step = forward and backward of a batch of 64 train triples (128 queries), length 3, with
the batch's own triples left out, for independent and TT-4 distributions; the median over
--steps steps, and the epoch it implies (steps per epoch x step). `auto` is the layout the
command picks. Prints a markdown table and writes walk.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from mltk_plugins.trace import kg as K
from mltk_plugins.trace import rules as R

HERE = Path(__file__).parent


def step_seconds(kg, walker, decomp: str, steps: int) -> float:
    s = R.Settings(decomp=decomp)
    dist = R.make_distribution(kg, s)
    times = []
    for i in range(steps):
        batch = kg.splits["train"][i * 64 : (i + 1) * 64]
        q, a = K.queries(batch, kg.n_relations)
        t0 = time.perf_counter()
        cores = [c.float() for c in dist.cores()]
        scores = walker(cores, torch.as_tensor(q[:, 0]), torch.as_tensor(q[:, 1]), batch)
        R.nll(scores, torch.as_tensor(a)).mean().backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--table", action="store_true", help="reprint the table of walk.json")
    args = ap.parse_args()
    out = HERE / "walk.json"
    if args.table:
        print_table(json.loads(out.read_text()))
        return
    torch.set_num_threads(1)
    rows = []
    for data in ("kinship", "umls", "family"):
        kg = K.load(data)
        per_epoch = math.ceil(len(kg.splits["train"]) / 64)
        auto = R.Walker(kg, kg.graph()).mode
        for decomp in ("independent", "tt"):
            row = {"data": data, "decomp": decomp, "auto": auto, "steps_per_epoch": per_epoch}
            for mode in ("dense", "sparse"):
                walker = R.Walker(kg, kg.graph(), torch.float32, mode)
                row[mode] = step_seconds(kg, walker, decomp, args.steps)
            print(
                f"{data} {decomp}: dense {row['dense']:.3f} s, sparse {row['sparse']:.3f} s",
                flush=True,
            )
            rows.append(row)
    res = {"rows": rows, "threads": 1, "torch": torch.__version__}
    out.write_text(json.dumps(res, indent=1) + "\n")
    print_table(res)


def print_table(res: dict) -> None:
    print("| data | distribution | dense: s/step | sparse: s/step | epoch (auto) |")
    print("| --- | --- | --- | --- | --- |")
    for r in res["rows"]:
        epoch = r[r["auto"]] * r["steps_per_epoch"]
        print(
            f"| {r['data']} | {r['decomp']} | {r['dense']:.3f} | {r['sparse']:.3f} | "
            f"{epoch:.1f} s ({r['auto']}) |"
        )


if __name__ == "__main__":
    main()

"""Scale benchmark (b): NORT on synthetic rank-5 cubes of side 200 ... 1600, paper protocol.

Each size runs in its own process (so peak memory is per size): a CP rank-5 cube (factors
uniform and centred, weights normal and centred), |Omega| = (n/5) * 3n * log(n^3) observed
entries with noise std 0.01, a test set of 10% that size, capped-l1 at the reference threshold
0.4 (lambda_d = 0.4/3, theta = 0.8), rank caps 5, a fixed iteration budget per size. The dense
proximal-average solver runs where the dense cube fits comfortably. Only coordinates and values
are ever stored for NORT -- never the cube.

    OMP_NUM_THREADS=1 nice python benchmarks/tensor/scale.py            # all sizes (about 15 min)
    python benchmarks/tensor/scale.py --sizes 200,400 --iters 30,20     # a subset

Prints a markdown table and writes scale.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(n: int, iters: int, solver: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from mltk_plugins.tensor.continuation import rmse
    from mltk_plugins.tensor.data import synthetic_cp
    from mltk_plugins.tensor.nort import NORT, NortOptions
    from mltk_plugins.tensor.structured import Observed

    t0 = time.perf_counter()
    idx, vals, tidx, tvals = synthetic_cp(n, rank=5, seed=1)
    gen_s = time.perf_counter() - t0
    cpu0 = time.process_time()
    shape = (n, n, n)
    lam = [0.4 / 3] * 3
    if solver == "nort":
        obs = Observed.from_indices(idx, shape)
        tobs = Observed.from_indices(tidx, shape)
        o = NortOptions(penalty="capped-l1", theta=0.8, max_rank=(5, 5, 5), max_iter=iters, tol=0.0)
        X, h = NORT(obs, vals, lam, o).run()
        test = rmse(X.low().at(tobs), tvals)
    else:
        from mltk_plugins.tensor.dense import dense_proximal_average

        X, h = dense_proximal_average(
            shape, idx, vals, lam, "capped-l1", 0.8, max_iter=iters, tol=0.0
        )
        test = rmse(X[tuple(tidx[:, d] for d in range(3))], tvals)
    cpu = time.process_time() - cpu0  # CPU time: robust to the shared machine's contention
    return {
        "cpu_seconds_per_iter": cpu / len(h.objective),
        "n": n,
        "solver": solver,
        "observed": int(len(vals)),
        "iterations": len(h.objective),
        "seconds": h.time[-1],
        "seconds_per_iter": h.time[-1] / len(h.objective),
        "test_rmse": test,
        "objective": h.objective[-1],
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "data_seconds": gen_s,
        "dense_cube_gb": n**3 * 8 / 1e9,
        "signal_std": float(tvals.std()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="200,400,800,1600")
    ap.add_argument("--iters", default="50,50,50,40")
    ap.add_argument("--dense-sizes", default="200")
    ap.add_argument("--dense-iters", type=int, default=30)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--table-only", action="store_true", help="Print the table from the JSON.")
    a = ap.parse_args()
    if a.one:
        n, iters, solver = a.one.split(":")
        print(json.dumps(one(int(n), int(iters), solver)))
        return
    sizes = [int(x) for x in a.sizes.split(",")]
    iters = [int(x) for x in a.iters.split(",")]
    dense = {int(x) for x in a.dense_sizes.split(",") if x}
    out_path = HERE / "scale.json"
    rows = json.loads(out_path.read_text()) if out_path.exists() else []
    if a.table_only:
        sizes, iters = [], []
    for n, it in zip(sizes, iters, strict=True):
        for solver in ["nort"] + (["dense"] if n in dense else []):
            its = it if solver == "nort" else min(it, a.dense_iters)
            cmd = [sys.executable, __file__, "--one", f"{n}:{its}:{solver}"]
            print(f"running n={n} {solver} ({it} iterations)...", file=sys.stderr, flush=True)
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                row = {
                    "n": n,
                    "solver": solver,
                    "error": p.stderr.strip().splitlines()[-1]
                    if p.stderr
                    else f"exit {p.returncode}",
                }
            else:
                row = json.loads(p.stdout.strip().splitlines()[-1])
            rows = [r for r in rows if not (r["n"] == n and r["solver"] == solver)] + [row]
            out_path.write_text(json.dumps(rows, indent=2))
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(
        "Synthetic CP rank-5 cubes, capped-l1, rank caps 5, fixed iteration budget, 1 thread, float64\n"
    )
    print(
        "| side n | solver | observed entries | dense cube (float64) | iterations | CPU s / iteration "
        "| wall s / iteration | test RMSE (signal std) | peak memory |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["n"], r["solver"])):
        if "error" in r:
            print(f"| {r['n']} | {r['solver']} | | | | failed: {r['error']} | | | |")
            continue
        cpu = r.get("cpu_seconds_per_iter", float("nan"))
        print(
            f"| {r['n']} | {r['solver']} | {r['observed']:,} | {r['dense_cube_gb']:.2f} GB | {r['iterations']} | "
            f"{cpu:.2f} | {r['seconds_per_iter']:.2f} | {r['test_rmse']:.4f} ({r['signal_std']:.4f}) "
            f"| {r['peak_memory_mb'] / 1024:.2f} GB |"
        )


if __name__ == "__main__":
    main()

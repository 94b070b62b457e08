"""Cost of one iteration against the rank: where NORT's advantage over the dense solver goes.

NORT's products with Z_<d> cost about (n_1 n_2 n_3) * r per power-iteration pass, the dense
solver's full SVD about n_d^2 * (n_1 n_2 n_3 / n_d) whatever the rank. So the ratio of the two
falls as the rank grows. This measures it on the photograph of benchmark (a): the full-size
retina (1411 x 1411 x 3) at 20% observed, float32, one thread.

For each target rank r the LSP threshold is set (theta by the solver's rule) so that its proximal
step keeps r singular values of the photograph's mode-1 unfolding. Both solvers then run a few
iterations at that same lambda from the same point, the photograph itself (so the ranks start
where that lambda puts them), momentum on (their default); the first iteration is left out of
the timing. NORT's rank caps are 2r (so they do not bind) and it runs
with one power iteration per step (the path stages) and with two (the final stage). The table
gives the ranks the dense solver reached, so the comparison is at a known rank.

    OMP_NUM_THREADS=1 nice python benchmarks/tensor/rank_cost.py [--ranks 25,50,100,200,400]
        [--iters 4] [--image retina] [--size 0]

Prints a markdown table and writes rank_cost.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def threshold_for_rank(svals, rank: int, lam_max: float) -> float:
    """The LSP threshold (theta by the solver's rule) whose prox keeps ``rank`` of ``svals``."""
    import math

    from mltk_plugins.tensor import penalties
    from mltk_plugins.tensor.continuation import theta_for

    def kept(thr: float) -> int:
        theta = theta_for("lsp", thr, lam_max, None)
        return int((penalties.prox(svals, thr, theta, "lsp") > 0).sum())

    lo, hi = math.log(float(svals[-1]) + 1e-12), math.log(lam_max)
    for _ in range(60):  # kept() falls as the threshold grows
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if kept(math.exp(mid)) > rank else (lo, mid)
    return math.exp(hi)


def as_factors(X):
    """X itself as a NORT iterate: all of it in the mode-3 term (weight 1/3), modes 1, 2 empty."""
    import torch
    from mltk_plugins.tensor.nort import Factors
    from mltk_plugins.tensor.structured import other_size, unfold

    shape = tuple(X.shape)
    U3, s3, Vh3 = torch.linalg.svd(unfold(X, 2), full_matrices=False)
    U = [X.new_zeros(shape[d], 0) for d in range(2)] + [U3]
    s = [X.new_zeros(0), X.new_zeros(0), 3 * s3]
    V = [X.new_zeros(other_size(shape, d), 0) for d in range(2)] + [Vh3.T.contiguous()]
    return Factors(shape, U, s, V, [1 / 3] * 3)


def per_iteration(hist) -> float:
    """Seconds per iteration, the first (from zero) left out."""
    t = hist.time
    return (t[-1] - t[0]) / (len(t) - 1)


def measure(image: str, size: int, observed: float, ranks: list[int], iters: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from mltk_plugins.tensor.continuation import theta_for
    from mltk_plugins.tensor.data import make_problem
    from mltk_plugins.tensor.dense import dense_proximal_average
    from mltk_plugins.tensor.nort import NORT, NortOptions
    from mltk_plugins.tensor.structured import Observed, unfold

    prob = make_problem(image, size=size or None, observed=observed, seed=0)
    shape = tuple(prob.shape)
    idx = torch.from_numpy(prob.train_idx)
    vals = torch.from_numpy(prob.train_val).float()
    obs = Observed.from_indices(idx, shape)
    Z0 = torch.zeros(shape)
    Z0[tuple(idx.T)] = vals
    lam_max = max(float(torch.linalg.matrix_norm(unfold(Z0, d), 2)) for d in range(3))
    del Z0
    truth = torch.from_numpy(prob.truth).float()
    svals = torch.linalg.svdvals(unfold(truth, 0))
    init = as_factors(truth)
    rows = []
    for r in ranks:
        thr = threshold_for_rank(svals, r, lam_max)
        theta = theta_for("lsp", thr, lam_max, None)
        lam = [thr / 3] * 3
        row = {"target_rank": r, "threshold": thr, "theta": theta}
        _, h = dense_proximal_average(
            shape, idx, vals, lam, "lsp", theta, max_iter=iters, tol=0.0, init=truth
        )
        row["dense_s"], row["dense_ranks"] = per_iteration(h), h.ranks[-1]
        for passes in (1, 2):
            o = NortOptions(
                penalty="lsp",
                theta=theta,
                max_rank=(2 * r, 2 * r, shape[2]),
                max_iter=iters,
                tol=0.0,
                power_iters=passes,
            )
            gen = torch.Generator().manual_seed(0)
            _, h = NORT(obs, vals, lam, o, generator=gen).run(init=init)
            row[f"nort_{passes}_s"], row[f"nort_{passes}_ranks"] = per_iteration(h), h.ranks[-1]
            row[f"ratio_{passes}"] = row["dense_s"] / row[f"nort_{passes}_s"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return {
        "image": image,
        "size": size,
        "shape": list(shape),
        "observed": observed,
        "training_entries": int(len(vals)),
        "iterations": iters,
        "dtype": "float32",
        "threads": 1,
        "rows": rows,
    }


def table(res: dict) -> str:
    n1, n2, n3 = res["shape"]
    lines = [
        f"{res['image']} {n1}x{n2}x{n3}, {res['observed']:.0%} observed, float32, one thread: "
        f"seconds per iteration (iterations 2-{res['iterations']}, same lambda and start for both)",
        "",
        "| target rank | threshold | ranks reached: dense / NORT (1) / NORT (2) | dense PA "
        "| NORT, 1 power iteration | NORT, 2 power iterations | dense / NORT (1) | dense / NORT (2) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["rows"]:
        ranks = " / ".join(
            ", ".join(str(x) for x in r[k][:2])
            for k in ("dense_ranks", "nort_1_ranks", "nort_2_ranks")
        )
        lines.append(
            f"| {r['target_rank']} | {r['threshold']:.3g} | {ranks} | {r['dense_s']:.2f} | "
            f"{r['nort_1_s']:.2f} | {r['nort_2_s']:.2f} | {r['ratio_1']:.1f}x | {r['ratio_2']:.1f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="retina")
    ap.add_argument("--size", type=int, default=0, help="0: the photograph's own size.")
    ap.add_argument("--observed", type=float, default=0.2)
    ap.add_argument("--ranks", default="40,80,160,320,640")
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--table-only", action="store_true", help="Print the table from the JSON.")
    a = ap.parse_args()
    out = HERE / "rank_cost.json"
    if a.table_only:
        print(table(json.loads(out.read_text())))
        return
    ranks = [int(x) for x in a.ranks.split(",")]
    res = measure(a.image, a.size, a.observed, ranks, a.iters)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2))
    tmp.replace(out)
    print(table(res))


if __name__ == "__main__":
    main()

"""Benchmark (a): a shipped photograph at 20% and 10% observed, NORT against the alternatives.

Same image, same mask (same seed), same run. Every method runs in its own process so that its
peak memory (max RSS, its high-water mark reset after loading the photograph) is its own; wall time covers the whole fit including hyper-parameter choice.

- NORT (LSP, capped-l1): the plugin's default -- lambda walked along the continuation path and
  chosen on the validation entries (10% of the observed ones), float32.
- dense (LSP, capped-l1): the same proximal-average algorithm on the same objective, written
  densely (folds, unfolds, full SVDs), with its own validation walk by the same rule and the same
  refit on every observed entry (`--solver dense`).
- dense PA (LSP): the dense algorithm walking exactly the lambda/theta path NORT walked, with the
  same number of iterations per stage -- so the difference is the structured computation alone.
- convex: overlapped nuclear norm by ADMM, lambda chosen on the same validation entries.
- tensorly: masked parafac (CP ranks), masked tucker (multilinear ranks), masked robust_pca;
  the rank / regularisation chosen on the same validation entries.

    OMP_NUM_THREADS=1 nice python benchmarks/tensor/images.py [--image retina] [--size 0]
        [--methods nort-lsp,dense-pa-lsp] [--path-steps 15 --path-ratio 0.7 --stage-iters 20]
        [--max-iter 300]

``--size 0`` keeps the photograph's own size. The path options are passed to NORT and to the
convex solver's validation walk (the dense PA run follows NORT's path). Prints a markdown table
and writes images.json next to this file (rows keyed by image, size, method and fraction).
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
METHODS = [
    "nort-lsp",
    "nort-capped-l1",
    "dense-lsp",
    "dense-capped-l1",
    "dense-pa-lsp",
    "convex",
    "tl-parafac",
    "tl-tucker",
    "tl-robust_pca",
]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> float:
    """Forget the peak so far (loading the photograph) and return the current RSS in MB.

    Linux: writing 5 to /proc/self/clear_refs resets the high-water mark that max RSS reports,
    so the peak measured afterwards is the method's own. Elsewhere the peak keeps the loading.
    """
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_mb()


def warm_up(dev) -> None:
    """Create the CUDA libraries' handles and load their kernels before the clock starts."""
    import torch

    a = torch.randn(64, 32, device=dev)
    torch.linalg.qr(a)
    torch.linalg.svd(a, full_matrices=False)
    torch.linalg.svdvals(a)
    torch.linalg.eigh(a.T @ a)
    csr = (a * (a > 1)).to_sparse_csr()
    csr @ a.T
    torch.sparse.sampled_addmm(csr, a, a[:32].T, beta=0.0)
    torch.cuda.synchronize(dev)


def rmse(a, b) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(a, dtype=np.float64) - b) ** 2)))


DEFAULT_CAP = 100  # TensorConfig.max_rank; rows from before --max-rank existed used it


def path_file(image: str, size: int, observed: float, max_rank: int) -> Path:
    """Where NORT-LSP leaves its lambda path for the dense PA run (per rank cap)."""
    cap = "" if max_rank == DEFAULT_CAP else f"-r{max_rank}"
    return HERE / f".path-{image}-{size}-{observed}{cap}.json"


def cap_of(r: dict) -> int:
    return r.get("path", {}).get("max_rank", DEFAULT_CAP)


def device_of(r: dict) -> str:
    return r.get("device", "cpu")


def key(r: dict) -> tuple:
    """Rows with the same key replace each other in images.json."""
    return (
        r["method"],
        r["observed"],
        r.get("size"),
        r.get("image", "astronaut"),
        cap_of(r),
        device_of(r),
    )


def label(r: dict) -> str:
    if cap_of(r) == DEFAULT_CAP:
        return r["method"]
    if r["method"].startswith("nort"):
        return f"{r['method']}, rank cap {cap_of(r)}"
    return f"{r['method']}, on that path"


def phase_ends(hist) -> list[dict]:
    """Each phase of a solver's history: its name, iterations, and ranks and time at its end."""
    return [
        {
            "phase": name,
            "iterations": b - a,
            "ranks": hist.ranks[b - 1],
            "seconds": hist.time[b - 1],
        }
        for name, a, b in hist.spans()
        if b > a
    ]


def run_method(
    method: str, image: str, size: int, observed: float, seed: int, path: dict, device: str = "cpu"
) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from mltk_plugins.tensor import solve as c
    from mltk_plugins.tensor.config import TensorConfig
    from mltk_plugins.tensor.data import make_problem

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    prob = make_problem(image, size=size or None, observed=observed, seed=seed)
    if cuda:
        warm_up(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        # the solvers move the data to the GPU themselves: count it as the data, not the method
        arrays = [prob.train_idx, prob.train_val]
        if not method.startswith("dense"):
            arrays += [prob.val_idx, prob.val_val, prob.test_idx, prob.test_val]
        data_mb = sum(a.size * (8 if a.dtype.kind in "iu" else 4) for a in arrays) / 2**20
        base = torch.cuda.memory_allocated(dev) / 2**20 + data_mb
    else:
        base = reset_peak()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    info: dict = {}
    if method.startswith("nort") or method == "convex":
        pen = {"nort-lsp": "lsp", "nort-capped-l1": "capped-l1", "convex": "nuclear"}[method]
        cfg = TensorConfig(
            data=image,
            size=size,
            observed=observed,
            penalty=pen,
            solver="convex" if method == "convex" else "nort",
            **path,
        )
        res = c.fit(cfg, prob, dev, lambda m: None, seed=seed, monitor=False)
        test = res["test"]["rmse"]
        info = {"lambda": res["lam"], "iterations": res["iterations"], "ranks": res["ranks"]}
        info["phases"] = phase_ends(res["history"])
        if method == "nort-lsp":  # hand the path to the dense PA run
            stages = res["stages"] if res["refined"] else res["stages"][:-1]
            info["path"] = [(s["threshold"], s["theta"], s["iters"]) for s in stages]
    elif method in ("dense-lsp", "dense-capped-l1"):
        cfg = TensorConfig(
            data=image, size=size, observed=observed, penalty=method[6:], solver="dense", **path
        )
        res = c.fit(cfg, prob, dev, lambda m: None, seed=seed, monitor=False)
        test = res["test"]["rmse"]
        info = {"lambda": res["lam"], "iterations": res["iterations"], "ranks": res["ranks"]}
        info["phases"] = phase_ends(res["history"])
    elif method == "dense-pa-lsp":
        from mltk_plugins.tensor.dense import dense_proximal_average

        path = json.loads(path_file(image, size, observed, path["max_rank"]).read_text())
        idx = torch.from_numpy(prob.train_idx).to(dev)
        vals = torch.from_numpy(prob.train_val).to(dev, torch.float32)
        X, iters = None, 0
        for thr, th, it in path:
            X, h = dense_proximal_average(
                prob.shape,
                idx,
                vals,
                [thr / 3] * 3,
                "lsp",
                th,
                max_iter=max(it, 1),
                tol=0.0,
                init=X,
            )
            iters += len(h.objective)
        test = rmse(X.cpu().numpy()[tuple(prob.test_idx.T)], prob.test_val)
        info = {"iterations": iters, "ranks": h.ranks[-1]}
    else:
        import tensorly as tl
        from tensorly.decomposition import parafac, robust_pca, tucker

        # masked methods see the training entries only; validation picks the hyper-parameter
        mask = np.zeros(prob.shape, dtype=bool)
        mask[tuple(prob.train_idx.T)] = True
        T = np.zeros(prob.shape)
        T[tuple(prob.train_idx.T)] = prob.train_val
        mean = prob.train_val.mean()
        T = np.where(mask, T, mean)
        T = tl.tensor(T)
        M = tl.tensor(mask.astype(float))
        grid = {
            "tl-parafac": [5, 10, 20, 40],
            "tl-tucker": [8, 16, 32, 64, 128],
            "tl-robust_pca": [0.02, 0.05, 0.1, 0.3],
        }[method]
        best = (np.inf, None, None)
        for g in grid:
            if method == "tl-parafac":
                cp = parafac(
                    T, rank=g, mask=M, init="random", random_state=seed, n_iter_max=100, tol=1e-6
                )
                Xh = tl.cp_to_tensor(cp)
            elif method == "tl-tucker":
                # tensorly's masked tucker diverges here with a random init; the standard EM
                # imputation (refit on the tensor filled with the current estimate) is stable
                Xf = T
                for _ in range(30):
                    tk = tucker(Xf, rank=[g, g, prob.shape[2]], init="svd", n_iter_max=5)
                    Xh = tl.tucker_to_tensor(tk)
                    Xf = tl.where(M > 0, T, Xh)
            else:
                Xh, _ = robust_pca(T, mask=M, reg_E=1.0, reg_J=g, n_iter_max=100, verbose=0)
            v = rmse(Xh[tuple(prob.val_idx.T)], prob.val_val)
            if v < best[0]:
                best = (v, g, Xh)
        test = rmse(best[2][tuple(prob.test_idx.T)], prob.test_val)
        info = {"chosen": best[1]}
    if cuda:
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["host_peak_memory_mb"] = peak_mb()
    else:
        peak = peak_mb()
    return {
        "method": method,
        "observed": observed,
        "test_rmse": test,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": None if cuda else time.process_time() - cpu0,  # spin-waits on a GPU
        "peak_memory_mb": peak,
        "baseline_memory_mb": base,
        "device": device,
        **info,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="astronaut")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--observed", default="0.2,0.1")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--path-steps", type=int, default=15)
    ap.add_argument("--path-ratio", type=float, default=0.7)
    ap.add_argument("--stage-iters", type=int, default=20)
    ap.add_argument("--max-iter", type=int, default=300, help="Iterations of the final stage.")
    ap.add_argument("--max-rank", type=int, default=DEFAULT_CAP, help="NORT's rank cap per mode.")
    ap.add_argument(
        "--device",
        default="cpu",
        help="cpu or cuda[:i]: NORT, dense PA and convex run there (tensorly's methods: cpu only).",
    )
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--table-only", action="store_true", help="Print the table from the JSON.")
    ap.add_argument("--out", default="images.json", help="JSON file beside this script.")
    a = ap.parse_args()
    path = {
        "path_steps": a.path_steps,
        "path_ratio": a.path_ratio,
        "stage_iters": a.stage_iters,
        "max_iter": a.max_iter,
        "max_rank": a.max_rank,
    }
    if a.one:
        method, obs = a.one.split(":")
        print(json.dumps(run_method(method, a.image, a.size, float(obs), a.seed, path, a.device)))
        return
    methods = a.methods.split(",")
    if a.device != "cpu":
        skipped = [m for m in methods if m.startswith("tl-")]
        methods = [m for m in methods if not m.startswith("tl-")]
        if skipped:
            print(f"skipping {', '.join(skipped)}: tensorly runs on numpy (cpu)", file=sys.stderr)
    out_path = HERE / a.out
    rows = json.loads(out_path.read_text()) if out_path.exists() else []
    observed_runs = [] if a.table_only else [float(x) for x in a.observed.split(",")]
    for obs in observed_runs:
        for method in methods:
            print(f"running {method} at {obs:.0%} observed...", file=sys.stderr, flush=True)
            cmd = [
                sys.executable,
                __file__,
                "--one",
                f"{method}:{obs}",
                "--image",
                a.image,
                "--size",
                str(a.size),
                "--seed",
                str(a.seed),
                "--path-steps",
                str(a.path_steps),
                "--path-ratio",
                str(a.path_ratio),
                "--stage-iters",
                str(a.stage_iters),
                "--max-iter",
                str(a.max_iter),
                "--max-rank",
                str(a.max_rank),
                "--device",
                a.device,
            ]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                row = {
                    "method": method,
                    "observed": obs,
                    "error": (p.stderr.strip().splitlines() or ["?"])[-1],
                }
            else:
                row = json.loads(p.stdout.strip().splitlines()[-1])
            if "path" in row:
                path_file(a.image, a.size, obs, a.max_rank).write_text(json.dumps(row.pop("path")))
            row.update(image=a.image, size=a.size, path=path, device=a.device)
            # read again: another run of this script may have added rows meanwhile
            rows = json.loads(out_path.read_text()) if out_path.exists() else []
            rows = [r for r in rows if key(r) != key(row)] + [row]
            out_path.write_text(json.dumps(rows, indent=2))
            print(json.dumps(row), file=sys.stderr, flush=True)
    side = f"{a.size} px longest side" if a.size else "original size"
    gpu = [r["gpu"] for r in rows if device_of(r) == a.device and "gpu" in r]
    where = f"{gpu[-1]} ({a.device})" if gpu else "2 shared CPU cores, 1 thread per method"
    print(f"{a.image}, {side}, {where}\n")
    memory = (
        "peak GPU memory above data (MB)" if a.device != "cpu" else "peak memory above data (MB)"
    )
    print(
        "| observed | method | test RMSE | PSNR (dB) | CPU time (s) | wall time (s) "
        f"| {memory} | chosen |"
    )
    print("|---|---|---|---|---|---|---|---|")
    import math

    for r in sorted(
        rows,
        key=lambda r: (
            -r["observed"],
            cap_of(r),
            METHODS.index(r["method"]) if r["method"] in METHODS else 99,
        ),
    ):
        if r.get("size") != a.size or r.get("image", "astronaut") != a.image:
            continue
        if device_of(r) != a.device:
            continue
        if "error" in r:
            print(f"| {r['observed']:.0%} | {label(r)} | failed: {r['error']} | | | | | |")
            continue
        chosen = r.get("lambda", r.get("chosen", ""))
        chosen = f"{chosen:.3g}" if isinstance(chosen, float) else chosen
        print(
            f"| {r['observed']:.0%} | {label(r)} | {r['test_rmse']:.4f} | {20 * math.log10(1 / r['test_rmse']):.2f} | "
            f"{r.get('cpu_seconds') or float('nan'):.1f} | {r['seconds']:.1f} | {r['peak_memory_mb'] - r['baseline_memory_mb']:.0f} | {chosen} |"
        )


if __name__ == "__main__":
    main()

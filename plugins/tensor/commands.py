"""The work behind `mltk tensor train|complete|eval|predict` (imported inside the commands)."""

from __future__ import annotations

import csv
import io
import math
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mltk.errors import DataError, UsageError

from . import penalties
from .config import TensorConfig
from .continuation import ValidationWalk, fit_path, rmse
from .data import Completion, make_problem
from .nort import Factors, NortOptions
from .structured import Observed, other_size

DENSE_LIMIT = 1 << 27  # entries: the largest tensor written densely (1 GiB in float64)


def validate(cfg: TensorConfig) -> None:
    if cfg.penalty not in penalties.PENALTIES:
        raise UsageError(
            f"--penalty {cfg.penalty!r} is not one of {', '.join(penalties.PENALTIES)}"
        )
    if cfg.solver not in ("nort", "dense", "convex"):
        raise UsageError(f"--solver {cfg.solver!r} is not one of nort, dense, convex")
    if cfg.momentum not in ("adaptive", "restart", "none"):
        raise UsageError(f"--momentum {cfg.momentum!r} is not one of adaptive, restart, none")
    if cfg.dtype not in ("float32", "float64"):
        raise UsageError(f"--dtype {cfg.dtype!r} must be float32 or float64")
    if cfg.lam < 0:
        raise UsageError(f"--lambda {cfg.lam} must be positive (or 0 to search on validation)")
    if cfg.theta < 0:
        raise UsageError(f"--theta {cfg.theta} must be positive (or 0 for the default rule)")
    if cfg.theta > 0:
        try:
            penalties.check_theta(cfg.penalty, cfg.theta)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    for name, v in (
        ("--max-rank", cfg.max_rank),
        ("--max-iter", cfg.max_iter),
        ("--power-iters", cfg.power_iters),
        ("--final-power-iters", cfg.final_power_iters),
        ("--path-steps", cfg.path_steps),
        ("--stage-iters", cfg.stage_iters),
    ):
        if v < 1:
            raise UsageError(f"{name} {v} must be at least 1")
    if not 0 < cfg.path_ratio < 1:
        raise UsageError(f"--path-ratio {cfg.path_ratio} must be in (0, 1)")
    if cfg.tol < 0:
        raise UsageError(f"--tol {cfg.tol} must be non-negative")
    if cfg.size < 0:
        raise UsageError(
            f"--size {cfg.size} must be a positive pixel count (or 0 for the original)"
        )


def _shape(text: str):
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.replace("x", ",").split(","))
    except ValueError as exc:
        raise UsageError(
            f"--shape {text!r} must be comma-separated integers like 100,200,50"
        ) from exc


def with_absolute_paths(cfg: TensorConfig) -> TensorConfig:
    """The config with its data and mask files as absolute paths (eval runs from anywhere)."""
    fix = {k: str(Path(v).resolve()) for k in ("data", "mask") if (v := getattr(cfg, k))}
    return replace(cfg, **{k: v for k, v in fix.items() if Path(v).is_file()})


def data_fingerprints(cfg: TensorConfig) -> dict:
    """sha256 of the data and mask files (embedded images have none), kept in config.json."""
    from mltk.cache import file_fingerprint

    return {
        f"{k}_sha256": file_fingerprint(v)
        for k in ("data", "mask")
        if (v := getattr(cfg, k)) and Path(v).is_file()
    }


def check_fingerprints(cfg: TensorConfig, saved: dict) -> None:
    """The run's data and mask files must be the ones it was trained on."""
    now = data_fingerprints(cfg)
    for key, digest in now.items():
        if key in saved and saved[key] != digest:
            name = getattr(cfg, key.removesuffix("_sha256"))
            raise DataError(
                f"{name} has changed since this run was trained, so its held-out entries "
                "cannot be rebuilt; restore the file or train again"
            )


def load_problem(cfg: TensorConfig, seed: int) -> Completion:
    return make_problem(
        cfg.data,
        mask=cfg.mask or None,
        shape=_shape(cfg.shape),
        observed=cfg.observed or None,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        size=cfg.size or None,
        seed=seed,
    )


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _obs(idx: np.ndarray, shape, device) -> Observed:
    return Observed.from_indices(torch.from_numpy(idx).to(device), shape)


def fit(
    cfg: TensorConfig, prob: Completion, device, log, seed: int = 0, monitor: bool = True
) -> dict:
    """Fit on the training entries; returns factors (or a dense tensor), metrics and history.

    ``monitor`` records the test RMSE along the way (for the convergence curve; not free).
    """
    dtype = getattr(torch, cfg.dtype)
    obs = _obs(prob.train_idx, prob.shape, device)
    vals = torch.from_numpy(prob.train_val).to(device, dtype)
    val = (_obs(prob.val_idx, prob.shape, device), torch.from_numpy(prob.val_val).to(device, dtype))
    test = (
        _obs(prob.test_idx, prob.shape, device),
        torch.from_numpy(prob.test_val).to(device, dtype),
    )
    caps = tuple(min(cfg.max_rank, n) for n in prob.shape)
    opts = NortOptions(
        penalty=cfg.penalty,
        theta=1.0,
        max_rank=caps,
        max_iter=cfg.max_iter,
        tol=cfg.tol,
        momentum=cfg.momentum,
        power_iters=cfg.power_iters,
    )
    track = (lambda X: rmse(X.low().at(test[0]), test[1])) if monitor and test[1].numel() else None
    lam = cfg.lam or None
    if lam is None and val[1].numel() == 0:
        raise UsageError(
            "no validation entries for the lambda search: give --lambda or a --val-fraction above 0"
        )
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    if cfg.solver == "nort":
        # capped-l1's theta rule (a multiple of the threshold) matters: when lambda is searched,
        # the multiples 1, 2 and 4 each walk the path and the best on validation is kept
        scales = (
            (1.0, 2.0, 4.0)
            if cfg.penalty == "capped-l1" and not cfg.theta and lam is None
            else (2.0,)
        )
        res, walked = None, []
        for scale in scales:
            if len(scales) > 1:
                log(f"capped-l1 with theta = {scale:g} x threshold:")
            r = fit_path(
                obs,
                vals,
                opts,
                lam=lam,
                val=val,
                theta=cfg.theta or None,
                steps=cfg.path_steps,
                ratio=cfg.path_ratio,
                stage_iters=cfg.stage_iters,
                monitor=track,
                log=log,
                seed=seed,
                theta_scale=scale,
                final_power_iters=cfg.final_power_iters,
            )
            walked.append((scale, r.val_rmse, len(r.history.objective)))
            if res is None or r.val_rmse < res.val_rmse:
                res = r
        X = res.factors
        out = {
            "factors": X,
            "lam": res.lam,
            "theta": res.theta,
            "history": res.history,
            "ranks": X.ranks,
            "stages": [s.__dict__ for s in res.stages],
            "refined": res.refined,
            "val_rmse": res.val_rmse,
        }
        if len(walked) > 1:
            out["theta_search"] = [
                {"scale": sc, "val_rmse": v, "iterations": n} for sc, v, n in walked
            ]
        test_pred = X.low().at(test[0]) if test[1].numel() else None
    else:
        out = _fit_dense(cfg, prob, obs, vals, val, test, lam, log, device, dtype)
        test_pred = out.pop("test_pred")
    if cuda:
        torch.cuda.synchronize(device)
        out["gpu_peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    out["seconds"] = time.perf_counter() - start
    out["iterations"] = sum(
        t["iterations"]
        for t in out.get("theta_search", [{"iterations": len(out["history"].objective)}])
    )
    out["test"] = metrics(test_pred, test[1]) if test_pred is not None else {}
    return out


def _fit_dense(cfg, prob, obs, vals, val, test, lam, log, device, dtype):
    """The dense reference solvers; lambda by the same validation walk when not given."""
    from .dense import convex_admm, dense_proximal_average
    from .nort import sparse_spectral_norms

    n = math.prod(prob.shape)
    if n > DENSE_LIMIT:
        raise UsageError(
            f"--solver {cfg.solver} needs the dense tensor ({n:,} entries); use --solver nort"
        )
    D = len(prob.shape)
    lam_max = max(sparse_spectral_norms(obs, vals, seed=0))
    from .continuation import theta_for

    def run(lam_d, max_iter, init=None):
        if cfg.solver == "convex":
            return convex_admm(
                prob.shape, obs.idx, vals, [lam_d] * D, max_iter=max_iter, tol=cfg.tol, init=init
            )
        th = theta_for(cfg.penalty, D * lam_d, lam_max, cfg.theta or None)
        return dense_proximal_average(
            prob.shape,
            obs.idx,
            vals,
            [lam_d] * D,
            cfg.penalty,
            th,
            max_iter=max_iter,
            tol=cfg.tol,
            momentum=cfg.momentum,
            init=init,
        )

    def at(X, o):
        return X[tuple(o.idx[:, d] for d in range(D))]

    X = None
    if lam is None:  # the same warm-started validation walk as NORT's, on the dense solver
        walk = ValidationWalk(lam_max, cfg.path_ratio, cfg.path_steps)
        for k, thr in enumerate(walk.thresholds):
            X, _ = run(thr / D, 2 * cfg.stage_iters, init=X)
            v = rmse(at(X, val[0]), val[1])
            log(f"{cfg.solver}: lambda {thr / D:.4g}, validation RMSE {v:.4g}")
            if walk.record(k, v, X):
                break
        _, thr, X = walk.best
        lam = thr / D
    X, hist = run(lam, cfg.max_iter, init=X)
    th = (
        0.0
        if cfg.solver == "convex"
        else theta_for(cfg.penalty, D * lam, lam_max, cfg.theta or None)
    )
    test_pred = at(X, test[0]) if test[1].numel() else None
    return {
        "dense": X,
        "lam": lam,
        "theta": th,
        "history": hist,
        "ranks": hist.ranks[-1] if hist.ranks else [],
        "stages": [],
        "test_pred": test_pred,
    }


def metrics(pred: torch.Tensor, truth: torch.Tensor) -> dict:
    err = (pred - truth).double()
    out = {
        "rmse": float(err.pow(2).mean().sqrt()),
        "mae": float(err.abs().mean()),
        "n": int(truth.numel()),
    }
    peak = float(truth.abs().max()) if truth.numel() else 1.0
    peak = 1.0 if peak <= 1.0 else peak
    out["psnr"] = 20 * math.log10(peak / out["rmse"]) if out["rmse"] > 0 else float("inf")
    return out


def dense_result(res: dict, shape) -> torch.Tensor | None:
    if "dense" in res:
        return res["dense"]
    if math.prod(shape) > DENSE_LIMIT:
        return None
    return res["factors"].dense()


# -- checkpoints --------------------------------------------------------------------------
def save_factors(run, res: dict, prob: Completion, cfg: TensorConfig, seed: int) -> None:
    from mltk.checkpoint import save_checkpoint

    meta = {
        "shape": list(prob.shape),
        "lam": res["lam"],
        "theta": res["theta"],
        "penalty": cfg.penalty,
        "seed": seed,
        "solver": cfg.solver,
    }
    if "factors" in res:
        X: Factors = res["factors"]
        tensors = {}
        for d in range(len(prob.shape)):
            tensors[f"U{d}"], tensors[f"s{d}"], tensors[f"V{d}"] = X.U[d], X.s[d], X.V[d]
        meta["alpha"] = X.alpha
        meta["form"] = "factors"
    else:
        tensors = {"X": res["dense"]}
        meta["form"] = "dense"
    save_checkpoint(run.checkpoint_dir, tensors, meta)


def load_model(run, device):
    """(Factors or dense tensor, meta) from a run folder."""
    from mltk.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(run.checkpoint_dir)
    try:
        shape = tuple(int(x) for x in meta["shape"])
        if meta.get("form") == "dense":
            dense = tensors["X"].to(device)
            _check_model(dense, shape, run.path)
            return dense, meta
        D = len(shape)
        X = Factors(
            shape,
            [tensors[f"U{d}"].to(device) for d in range(D)],
            [tensors[f"s{d}"].to(device) for d in range(D)],
            [tensors[f"V{d}"].to(device) for d in range(D)],
            [float(a) for a in meta["alpha"]],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"checkpoint in {run.path} is incomplete ({exc})") from exc
    _check_model(X, shape, run.path)
    return X, meta


def _check_model(X, shape: tuple[int, ...], where) -> None:
    """Shapes that fit together and finite numbers, or one sentence (exit 5)."""
    bad = f"the checkpoint in {where} is damaged"
    if not isinstance(X, Factors):
        if tuple(X.shape) != shape:
            raise DataError(f"{bad}: its tensor is {tuple(X.shape)}, not {shape}")
        if not bool(torch.isfinite(X).all()):
            raise DataError(f"{bad}: it holds non-finite values")
        return
    if len(X.alpha) != len(shape):
        raise DataError(f"{bad}: {len(X.alpha)} mode weights for {len(shape)} modes")
    for d, (U, s, V) in enumerate(zip(X.U, X.s, X.V, strict=True)):
        r = s.shape[0] if s.dim() == 1 else -1
        fits = tuple(U.shape) == (shape[d], r) and tuple(V.shape) == (other_size(shape, d), r)
        if r < 0 or not fits:
            raise DataError(
                f"{bad}: mode {d} has factors {tuple(U.shape)}, {tuple(s.shape)}, "
                f"{tuple(V.shape)}, which do not fit the shape {shape}"
            )
        if not all(bool(torch.isfinite(t).all()) for t in (U, s, V)):
            raise DataError(f"{bad}: mode {d} holds non-finite values")
    if not all(math.isfinite(a) for a in X.alpha):
        raise DataError(f"{bad}: its mode weights are not finite")


def values_at(model, idx: torch.Tensor, shape) -> torch.Tensor:
    if isinstance(model, Factors):
        return model.low().at(Observed.from_indices(idx, shape))
    return model[tuple(idx[:, d] for d in range(len(shape)))]


# -- artefacts ----------------------------------------------------------------------------
def write_history(run, hist, prefix="convergence") -> None:
    from mltk.atomic import write_text

    rmse_at = dict(zip(hist.rmse_time, hist.rmse, strict=False))
    rows = ["iteration,time_s,objective,test_rmse,ranks"]
    for i, (t, f) in enumerate(zip(hist.time, hist.objective, strict=False)):
        r = rmse_at.get(t, "")
        ranks = "x".join(map(str, hist.ranks[i])) if i < len(hist.ranks) else ""
        rows.append(f"{i + 1},{t:.6f},{f:.10g},{r},{ranks}")
    write_text(run.artifact(f"{prefix}.csv"), "\n".join(rows) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].semilogy(hist.time, hist.objective)
    ax[0].set_xlabel("time (s)")
    ax[0].set_ylabel("objective")
    if hist.rmse:
        ax[1].plot(hist.rmse_time, hist.rmse, marker=".")
    ax[1].set_xlabel("time (s)")
    ax[1].set_ylabel("test RMSE")
    fig.tight_layout()
    _save_fig(fig, run.artifact(f"{prefix}.png"))
    plt.close(fig)


def _save_fig(fig, path: Path) -> None:
    from mltk.atomic import write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    write_bytes(path, buf.getvalue())


def check_output(path: Path, suffixes: tuple[str, ...]) -> None:
    """--output must name a file of a format we write, in a folder that exists and is writable."""
    import os

    if path.suffix.lower() not in suffixes:
        raise UsageError(f"--output {path}: name a {' or '.join(suffixes)} file")
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder; name a file")
    if not folder.is_dir():
        raise UsageError(f"--output {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--output {path}: the folder {folder} is not writable")


def save_npy(path: Path, arr: np.ndarray) -> None:
    """Write an array atomically (never pickled)."""
    from mltk.atomic import write_bytes

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def write_tensor(run, X: torch.Tensor, prob: Completion) -> list[str]:
    arr = X.detach().cpu().double().numpy()
    save_npy(run.artifact("completed.npy"), arr)
    files = ["completed.npy"]
    if prob.is_image:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from mltk.atomic import write_bytes

        buf = io.BytesIO()
        plt.imsave(buf, np.clip(arr, 0, 1), format="png")
        write_bytes(run.artifact("completed.png"), buf.getvalue())
        files.append("completed.png")
        files.append(write_before_after(run, arr, prob))
    return files


def write_before_after(run, arr: np.ndarray, prob: Completion) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    observed = np.where(prob.observed_mask, prob.truth, 0.0) if prob.truth is not None else arr
    panels = [(f"observed ({prob.observed_mask.mean():.0%})", observed), ("completed", arr)]
    if prob.truth is not None:
        panels.append(("truth", prob.truth))
    fig, ax = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.9))
    for a, (title, img) in zip(ax, panels, strict=True):
        a.imshow(np.clip(img, 0, 1))
        a.set_title(title)
        a.axis("off")
    fig.tight_layout()
    _save_fig(fig, run.artifact("before_after.png"))
    plt.close(fig)
    return "before_after.png"


def read_coords(path: str, shape) -> torch.Tensor:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"coordinate file {path} does not exist")
    try:
        with open(p, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"could not read {path}: {exc}") from exc
    if rows and not all(c.strip().lstrip("-").isdigit() for c in rows[0]):
        rows = rows[1:]  # header
    try:
        idx = np.array([[int(c) for c in r[: len(shape)]] for r in rows], dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"{path}: coordinates must be integers ({exc})") from exc
    if idx.size == 0 or idx.shape[1] != len(shape):
        raise DataError(f"{path} must hold rows of {len(shape)} integer coordinates")
    if (idx < 0).any() or (idx >= np.array(shape)).any():
        raise DataError(f"{path} has coordinates outside the tensor's shape {tuple(shape)}")
    return torch.from_numpy(idx)


def config_for_run(cfg: TensorConfig, res: dict) -> TensorConfig:
    return replace(cfg, lam=float(res["lam"]), theta=float(res["theta"]))

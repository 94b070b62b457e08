"""The verbs of `mltk tensor` behind plugin.py: fit and record a run, evaluate it, predict."""

from __future__ import annotations

import csv
import io
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mltk.errors import DataError, UsageError

from .config import PredictConfig, TensorConfig
from .data import Completion, make_problem
from .nort import Factors
from .solve import DENSE_LIMIT, dense_result, fit, metrics, peak_memory_mb
from .structured import Observed, other_size


def load_problem(cfg: TensorConfig, seed: int) -> Completion:
    return make_problem(
        cfg.data,
        mask=str(cfg.mask) if cfg.mask else None,
        shape=cfg.shape,
        observed=cfg.observed,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        size=cfg.size or None,
        seed=seed,
    )


def data_fingerprints(cfg: TensorConfig) -> dict:
    """sha256 of the data and mask files (embedded images have none), kept in config.json."""
    from mltk.cache import file_fingerprint

    return {
        f"{k}_sha256": file_fingerprint(v)
        for k in ("data", "mask")
        if (v := getattr(cfg, k)) and Path(v).is_file()
    }


def run_fit(cfg: TensorConfig, rt, write_dense: bool) -> dict:
    """`complete` and `train`: fit on the observed entries, record the run, write its files."""
    if Path(cfg.data).is_file():  # the run records where its data is, for eval from anywhere
        cfg = replace(cfg, data=str(Path(cfg.data).resolve()))
    prob = load_problem(cfg, rt.seed)
    log = rt.out.log
    log(
        f"{prob.name}: shape {prob.shape}, {len(prob.train_val):,} training / "
        f"{len(prob.val_val):,} validation / {len(prob.test_val):,} test entries; "
        f"solver {cfg.solver}, penalty {cfg.penalty}"
    )
    resized = None
    if prob.resized_from is not None:
        own = "x".join(map(str, prob.resized_from[:2]))
        now = "x".join(map(str, prob.shape[:2]))
        resized = f"from {own} to {now} pixels (--size {cfg.size}; --size 0 keeps {own})"
        log(f"{prob.name} was downscaled {resized}")
    res = fit(cfg, prob, rt.device, log, seed=rt.seed, dtype=rt.dtype, warn=rt.out.warn)
    # the values the run resolved: the sampled fraction, the chosen lambda and theta
    cfg = replace(cfg, observed=prob.sampled or cfg.observed, lam=float(res["lam"]),
                  theta=float(res["theta"]), lambda_search=False)  # fmt: skip
    rt.config = cfg
    run = rt.run
    run.update_config(cfg, **data_fingerprints(cfg))
    save_factors(run, res, prob, cfg, rt.seed)
    hist = res["history"]
    for i, f in enumerate(hist.objective):
        run.log_metrics(i + 1, objective=f, time_s=hist.time[i])
    write_history(run, hist)
    files = ["config.json", "metrics.jsonl", "checkpoint/", "convergence.csv", "convergence.png"]
    if write_dense:
        X = dense_result(res, prob.shape)
        if X is None:
            rt.out.warn(f"the completed tensor {prob.shape} is too large to write densely; "
                        "use `mltk tensor predict`")  # fmt: skip
        else:
            files += write_tensor(run, X, prob)
    test = res["test"]
    return {
        "data": prob.name,
        "shape": list(prob.shape),
        **({"downscaled": resized} if resized else {}),
        "solver": cfg.solver,
        "penalty": "nuclear" if cfg.solver == "convex" else cfg.penalty,
        "lambda": res["lam"],
        "theta": res["theta"],
        "test_rmse": test.get("rmse"),
        "test_mae": test.get("mae"),
        "test_psnr": test.get("psnr"),
        "test_entries": test.get("n", 0),
        "iterations": res["iterations"],
        "seconds": round(res["seconds"], 3),
        "ranks": res["ranks"],
        **{k: res[k] for k in ("val_rmse", "refined", "refit") if k in res},
        "peak_memory_mb": round(peak_memory_mb(), 1),
        **{k: round(res[k], 1) for k in ("gpu_peak_memory_mb",) if k in res},
        "run": str(run.path),
        "files": files,
    }


def run_eval(rt) -> dict:
    run = rt.source
    cfg = run.saved_config(TensorConfig)
    saved = run.read_config()
    for key, digest in data_fingerprints(cfg).items():
        if key in saved and saved[key] != digest:
            raise DataError(
                f"{getattr(cfg, key.removesuffix('_sha256'))} has changed since this run was "
                "trained, so its held-out entries cannot be rebuilt; restore the file or train again"
            )
    prob = load_problem(cfg, int(saved.get("seed", 0)))
    model, meta = load_model(run, rt.device)
    if tuple(meta["shape"]) != tuple(prob.shape):
        raise DataError(
            f"the checkpoint's shape {tuple(meta['shape'])} differs from the data's {prob.shape}"
        )
    pred = values_at(model, torch.from_numpy(prob.test_idx).to(rt.device), prob.shape)
    m = metrics(pred, torch.from_numpy(prob.test_val).to(pred))
    return {"run": str(run.path), **m}


def run_predict(cfg: PredictConfig, rt) -> dict | None:
    to_stdout = str(cfg.output) == "-"
    if to_stdout and rt.out.json:
        raise UsageError("--output - writes the values to stdout, where --json writes too; "
                         "drop one of them")  # fmt: skip
    if cfg.coords is None and cfg.output is not None and Path(cfg.output).suffix == ".csv":
        raise UsageError(f"--output {cfg.output}: the dense tensor is written as a .npy file")
    run = rt.source
    model, meta = load_model(run, rt.device)
    shape = tuple(int(x) for x in meta["shape"])
    if cfg.coords is not None:
        idx = read_coords(str(cfg.coords), shape).to(rt.device)
        vals = values_at(model, idx, shape).cpu().double().numpy()
        rows = idx.cpu().tolist()
        if cfg.output is not None and Path(cfg.output).suffix.lower() == ".npy":
            save_npy(cfg.output, vals)
        elif cfg.output is not None:
            lines = [",".join([*(f"i{d}" for d in range(len(shape))), "value"])]
            lines += [",".join([*map(str, r), repr(float(v))]) for r, v in zip(rows, vals)]
            text = "\n".join(lines) + "\n"
            if to_stdout:
                sys.stdout.write(text)
                return None
            from mltk.atomic import write_text

            write_text(cfg.output, text)
        return {
            "n": int(len(vals)),
            "values": vals.tolist(),
            "output": str(cfg.output) if cfg.output else None,
        }
    if math.prod(shape) > DENSE_LIMIT:
        raise UsageError(f"the tensor {shape} is too large to predict densely; pass --coords")
    if cfg.output is None:
        raise UsageError("predicting the dense tensor needs --output FILE.npy (or pass --coords)")
    X = model.dense() if hasattr(model, "dense") else model
    save_npy(cfg.output, X.detach().cpu().double().numpy())
    return None if to_stdout else {"shape": list(shape), "output": str(cfg.output)}


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
    tensors, meta = run.load()
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
    phase = hist.phase_of()
    rows = ["iteration,time_s,objective,test_rmse,ranks,phase"]
    for i, (t, f) in enumerate(zip(hist.time, hist.objective, strict=False)):
        r = rmse_at.get(t, "")
        ranks = "x".join(map(str, hist.ranks[i])) if i < len(hist.ranks) else ""
        rows.append(f"{i + 1},{t:.6f},{f:.10g},{r},{ranks},{phase[i]}")
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
        ax[1].plot(hist.rmse_time, hist.rmse, marker="." if len(hist.rmse) <= 100 else None)
    ax[1].set_xlabel("time (s)")
    ax[1].set_ylabel("test RMSE")
    _mark_phases(ax, hist)
    fig.tight_layout()
    _save_fig(fig, run.artifact(f"{prefix}.png"))
    plt.close(fig)


def _mark_phases(ax, hist) -> None:
    """A dotted line where each phase after the first starts (the objective jumps there: another
    lambda, more entries), named on the objective's panel."""
    for start, name in hist.phases[1:]:
        if start >= len(hist.time):
            continue
        t = hist.time[start - 1] if start else hist.time[0]
        for a in ax:
            a.axvline(t, color="0.6", linestyle=":", linewidth=1)
        ax[0].annotate(
            name,
            (t, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color="0.35",
        )


def _save_fig(fig, path: Path) -> None:
    from mltk.atomic import write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    write_bytes(path, buf.getvalue())


def save_npy(path, arr: np.ndarray) -> None:
    """Write an array atomically (never pickled); `-` writes its bytes to stdout."""
    from mltk.atomic import write_bytes

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    if str(path) == "-":
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.flush()
        return
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

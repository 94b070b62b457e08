"""Fitting a completion problem with the chosen solver: NORT's lambda path, or a dense reference.

`fit` walks NORT's warm-started validation path (`continuation.fit_path`; capped-l1 without a
theta walks it once per theta multiple) or runs the dense proximal-average / convex ADMM solvers
on the same validation walk, and returns the factors (or the dense tensor), the chosen lambda
and theta, the history and the test metrics.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import replace

import numpy as np
import torch

from mltk.errors import UsageError

from .config import TensorConfig
from .continuation import ValidationWalk, fit_path, natural_caps, rmse
from .data import Completion
from .nort import History, NortOptions
from .structured import Observed

DENSE_LIMIT = 1 << 27  # entries: the largest tensor written densely (1 GiB in float64)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _obs(idx: np.ndarray, shape, device) -> Observed:
    return Observed.from_indices(torch.from_numpy(idx).to(device), shape)


def fit(
    cfg: TensorConfig,
    prob: Completion,
    device,
    log,
    seed: int = 0,
    monitor: bool = True,
    dtype=torch.float32,
    warn=None,
) -> dict:
    """Fit on the training entries; returns factors (or a dense tensor), metrics and history.

    ``monitor`` records the test RMSE along the way (for the convergence curve; not free).
    """
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
        power_iters=path_power_iters(cfg),
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
        # the multiples 1, 2 and 4 are tried at the chosen lambda of one path (one-path), or each
        # walks the whole path (paths); the best on validation is kept
        multiples = cfg.penalty == "capped-l1" and not cfg.theta and lam is None
        scales = (1.0, 2.0, 4.0) if multiples and cfg.theta_search == "paths" else (2.0,)
        at_chosen = (1.0, 4.0) if multiples and cfg.theta_search == "one-path" else ()
        limits = natural_caps(prob.shape) if cfg.grow_rank else None
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
                fine=cfg.fine_search,
                early_stop=cfg.early_stop,
                theta_scales=at_chosen,
                grow_limits=limits,
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
        opts = replace(opts, max_rank=tuple(res.extra["max_rank"]))
        at_cap = res.extra["at_cap"]
        if cfg.refit and lam is None:
            X, at_cap, refit = _refit_nort(
                prob, obs, vals, val, opts, res, cfg, limits, track, log, seed
            )
            out.update(factors=X, ranks=X.ranks, refit=refit)
        _warn_at_cap(at_cap, opts.max_rank, cfg, warn or log)
        if len(walked) > 1:
            out["theta_search"] = [
                {"scale": sc, "val_rmse": v, "iterations": n} for sc, v, n in walked
            ]
        test_pred = X.low().at(test[0]) if test[1].numel() else None
    else:
        out = _fit_dense(cfg, prob, obs, vals, val, test, lam, log, device, dtype, monitor)
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


def path_power_iters(cfg) -> int:
    """The path stages' power iterations: the user's, else 2 (with one, LSP's validation RMSE is
    flat along the path and the search misses the dense solver's minimum), or 1 for capped-l1
    (as accurate on the photographs, and twice as fast)."""
    return cfg.power_iters or (1 if cfg.penalty == "capped-l1" else 2)


def _all_observed(prob, obs, vals, val):
    """The training and validation entries together, in C order (as the training ones are)."""
    idx = torch.cat([obs.idx, val[0].idx])
    values = torch.cat([vals, val[1]])
    order = torch.from_numpy(np.lexsort(idx.cpu().numpy().T[::-1]).copy()).to(idx.device)
    return Observed.from_indices(idx[order], prob.shape), values[order]


def refit_lambda(prob, lam: float) -> float:
    """The chosen per-mode lambda scaled to every observed entry: the objective sums the squared
    errors, so the penalty keeps its weight per entry (as glmnet's mean loss does)."""
    n_train = len(prob.train_val)
    return lam * (n_train + len(prob.val_val)) / n_train


def _refit_nort(prob, obs, vals, val, opts, res, cfg, limits, track, log, seed):
    from .continuation import solve_growing

    obs_all, vals_all = _all_observed(prob, obs, vals, val)
    D = len(prob.shape)
    lam = refit_lambda(prob, res.lam)
    if res.refined:  # the chosen setting ran to convergence: so does the refit
        o = replace(opts, theta=res.theta, power_iters=cfg.final_power_iters or opts.power_iters)
    else:  # converging did worse on validation (capped-l1 can): refit with the stage's budget
        o = replace(opts, theta=res.theta, max_iter=cfg.stage_iters, tol=10 * opts.tol)
    log(
        f"refit on all {len(vals_all):,} observed entries at lambda {lam:.4g} "
        f"(the chosen {res.lam:.4g} per entry), theta {res.theta:.4g}"
    )
    gen = torch.Generator().manual_seed(seed)
    res.history.phase("refit")
    X, hist, _, at_cap = solve_growing(
        obs_all,
        vals_all,
        D * lam,
        o,
        res.factors,
        limits=limits,
        gen=gen,
        monitor=track,
        history=res.history,
        t0=res.history.time[-1] if res.history.time else 0.0,
        log=log,
    )
    return X, at_cap, _refit_record(lam, X.low().at(obs_all), vals_all)


def _refit_record(lam: float, fitted: torch.Tensor, values: torch.Tensor) -> dict:
    """What a refit reports: its lambda, the entries it saw and its fit to them."""
    return {"lambda": lam, "entries": int(values.numel()), "train_rmse": rmse(fitted, values)}


def _warn_at_cap(at_cap, caps, cfg, warn) -> None:
    if at_cap:
        modes = ", ".join(f"mode {d + 1} at {caps[d]}" for d in at_cap)
        how = "raise --max-rank" if cfg.grow_rank else "drop --fixed-rank-cap or raise --max-rank"
        warn(f"the ranks ended at their cap ({modes}); the fit may be better with more: {how}")


def _fit_dense(cfg, prob, obs, vals, val, test, lam, log, device, dtype, monitor=True):
    """The dense reference solvers; lambda by the same validation walk when not given.
    ``monitor`` records the test RMSE at every iteration (NORT: every fifth)."""
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

    def at(X, o):
        return X[tuple(o.idx[:, d] for d in range(D))]

    track = (lambda X: rmse(at(X, test[0]), test[1])) if monitor and test[1].numel() else None

    def run(lam_d, max_iter, init=None, theta=None):
        if cfg.solver == "convex":
            return convex_admm(
                prob.shape,
                obs.idx,
                vals,
                [lam_d] * D,
                max_iter=max_iter,
                tol=cfg.tol,
                init=init,
                monitor=track,
            )
        th = theta_for(cfg.penalty, D * lam_d, lam_max, theta or cfg.theta or None)
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
            monitor=track,
        )

    X = None
    hist = History()  # every run's iterations, in phases as NORT's history has them
    if lam is None:  # the same warm-started validation walk as NORT's, on the dense solver
        walk = ValidationWalk(lam_max, cfg.path_ratio, cfg.path_steps)
        for k, thr in enumerate(walk.thresholds):
            X, h = run(thr / D, 2 * cfg.stage_iters, init=X)
            hist.extend(h, "lambda path")
            v = rmse(at(X, val[0]), val[1])
            log(f"{cfg.solver}: lambda {thr / D:.4g}, validation RMSE {v:.4g}")
            if walk.record(k, v, X):
                break
        _, thr, X = walk.best
        lam = thr / D
    searched = X is not None
    X, h = run(lam, cfg.max_iter, init=X)
    hist.extend(h, "chosen lambda" if searched else "given lambda")
    th = (
        0.0
        if cfg.solver == "convex"
        else theta_for(cfg.penalty, D * lam, lam_max, cfg.theta or None)
    )
    refit = None
    if cfg.refit and searched:  # NORT's refit: every observed entry, the penalty per entry
        obs_all, vals_all = _all_observed(prob, obs, vals, val)
        lam_all = refit_lambda(prob, lam)
        log(
            f"{cfg.solver}: refit on all {len(vals_all):,} observed entries at lambda {lam_all:.4g}"
        )
        obs, vals = obs_all, vals_all  # what run() reads
        X, h = run(lam_all, cfg.max_iter, init=X, theta=th or None)
        hist.extend(h, "refit")
        refit = _refit_record(lam_all, at(X, obs_all), vals_all)
    test_pred = at(X, test[0]) if test[1].numel() else None
    return {
        "dense": X,
        "lam": lam,
        "theta": th,
        "history": hist,
        "ranks": hist.ranks[-1] if hist.ranks else [],
        "stages": [],
        "test_pred": test_pred,
        **({"refit": refit} if refit else {}),
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

"""Warm-started lambda continuation, and the validation search that walks the same path.

Started from zero, a nonconvex penalty such as capped-l1 can stall at once: with a small lambda the
first proximal step keeps every large singular value of the zero-filled data unshrunk (a poor
fixed point). Walking lambda from large to small, each stage warm-started from the previous
solution, avoids that. The path starts just below Lambda_max = max_d sigma_1(P_Omega(O)_<d>),
the threshold above which the solution is zero, and shrinks geometrically.

- With a fixed ``lam``, the path stops at it and the last stage runs to convergence.
- Without one (``--lambda-search``), every stage is scored by RMSE on the validation entries;
  the walk stops once the validation RMSE has stayed more than ``rise_tol`` (1%) above the best
  for ``patience`` stages in a row (a plateau while the ranks have not yet grown does not count),
  and the best stage's solution is then run to convergence. While the last stage of the path is
  the best so far, the path goes on (by the same ratio, up to twice its length). When converging
  does worse on the validation entries than the stage it started from (capped-l1 can), the
  stage's solution is returned: the search keeps whatever is best on validation. The refinement
  is scored on validation every few iterations and stops once the score has risen for
  ``patience`` checks in a row, by the walk's rule: on the photographs every such run ended
  worse than where it started, and converging only cost time (on rocket at 20%, capped-l1
  spent half its time there).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from . import penalties
from .nort import NORT, Factors, History, NortOptions, sparse_spectral_norms
from .structured import Observed, other_size


def theta_for(
    penalty: str, threshold: float, lam_max: float, theta: float | None, scale: float = 2.0
) -> float:
    """theta for one stage: the user's value, else a rule that scales with the data.

    capped-l1: ``scale`` x the stage threshold (2 by default, the paper's protocol; the lambda
    search also tries 1 and 4 and keeps the best on validation); lsp: sqrt(threshold x lam_max) / 10
    (the paper's sqrt(threshold) made scale-free by the data's own Lambda_max); scad 3.7,
    mcp 3, tnn 1 kept singular value.
    """
    if theta is not None:
        return float(theta)
    if penalty == "capped-l1":
        return scale * threshold
    if penalty == "lsp":
        return math.sqrt(threshold * lam_max) / 10.0
    return penalties.default_theta(penalty, threshold)


RISE_TOL = 0.01  # a validation RMSE within 1% of the best is a plateau, not a rise


def count_rises(v: float, best: float, rises: int, tol: float = RISE_TOL) -> int:
    """Consecutive stages whose validation RMSE ``v`` is more than ``tol`` above the best so far
    (``best`` already includes ``v``): a plateau while the ranks have not grown yet resets it."""
    return 0 if v <= best * (1 + tol) else rises + 1


@dataclass
class ValidationWalk:
    """The lambda search's rule, shared by NORT and the dense solvers.

    ``thresholds`` is the geometric path (lam_max * ratio^k, k = 1..steps); ``record`` scores a
    stage and says whether to stop: after ``patience`` consecutive rises past the first half of
    the path. While the last stage is the best so far, the path is extended by the same ratio, up
    to twice its length. ``best`` is (validation RMSE, threshold, whatever the caller keeps).
    """

    lam_max: float
    ratio: float
    steps: int
    patience: int = 3
    rise_tol: float = RISE_TOL
    thresholds: list[float] = field(default_factory=list)
    best: tuple = (math.inf, None, None)
    rises: int = 0

    def __post_init__(self):
        self.thresholds = [self.lam_max * self.ratio ** (k + 1) for k in range(self.steps)]

    def record(self, i: int, v: float, keep) -> bool:
        thr = self.thresholds[i]
        if v < self.best[0]:
            self.best = (v, thr, keep)
        self.rises = count_rises(v, self.best[0], self.rises, self.rise_tol)
        if self.rises >= self.patience and i + 1 >= self.steps // 2:  # early stages: too coarse
            return True
        last = i + 1 == len(self.thresholds)
        if last and self.best[1] == thr and len(self.thresholds) < 2 * self.steps:
            # the best lambda so far is the grid's last: the path goes on past its end
            self.thresholds.append(thr * self.ratio)
        return False


@dataclass
class EarlyStop:
    """Validation during the refinement, called once per iteration: every ``every`` iterations
    the iterate is scored; once the score has stayed more than ``rise_tol`` above the best so
    far (``best_v`` starts as the path stage's) for ``patience`` checks in a row, it says stop."""

    val: tuple[Observed, torch.Tensor]
    best_v: float
    every: int = 5
    patience: int = 3
    rise_tol: float = RISE_TOL
    calls: int = 0
    rises: int = 0
    stopped: bool = False

    def __call__(self, X: Factors) -> bool:
        self.calls += 1
        if self.calls % self.every:
            return False
        v = rmse(X.low().at(self.val[0]), self.val[1])
        self.best_v = min(self.best_v, v)
        self.rises = count_rises(v, self.best_v, self.rises, self.rise_tol)
        self.stopped = self.rises >= self.patience
        return self.stopped


@dataclass
class Stage:
    threshold: float
    lam: float  # per-mode objective weight = threshold / D
    theta: float
    iters: int
    seconds: float
    val_rmse: float | None
    ranks: list[int]
    power_iters: int = 1


@dataclass
class FitResult:
    factors: Factors
    lam: float
    theta: float
    stages: list[Stage]
    history: History
    lam_max: float
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    val_rmse: float | None = None  # of the returned factors
    refined: bool = True  # False: the refinement did worse on validation and was discarded


def rmse(pred: torch.Tensor, truth: torch.Tensor) -> float:
    if truth.numel() == 0:
        return float("nan")
    return float(((pred - truth) ** 2).mean().sqrt())


def natural_caps(shape) -> tuple[int, ...]:
    """The largest rank each unfolding can have: min(n_d, prod of the other sides)."""
    return tuple(min(n, other_size(shape, d)) for d, n in enumerate(shape))


def solve_growing(
    obs,
    values,
    thr,
    opts,
    init,
    *,
    limits=None,
    gen=None,
    monitor=None,
    history=None,
    t0=0.0,
    log=None,
    stop=None,
):
    """NORT at one threshold; a mode whose rank reaches its cap gets the cap doubled (up to
    ``limits``, None: never) and the stage runs on from where it stopped (unless ``stop``, an
    EarlyStop, has stopped it).

    Returns (factors, history, options with the caps reached, modes still at a cap below their
    natural limit)."""
    D = len(obs.shape)
    natural = natural_caps(obs.shape)
    while True:
        solver = NORT(obs, values, [thr / D] * D, opts, generator=gen)
        X, history = solver.run(init=init, monitor=monitor, history=history, t0=t0, stop=stop)
        t0 = history.time[-1] if history.time else t0
        full = [d for d, r in enumerate(X.ranks) if r >= opts.max_rank[d] < natural[d]]
        grow = [d for d in full if limits is not None and opts.max_rank[d] < limits[d]]
        if not grow or (stop is not None and stop.stopped):
            return X, history, opts, full
        caps = list(opts.max_rank)
        for d in grow:
            caps[d] = min(2 * caps[d], limits[d])
        if log:
            named = ", ".join(f"mode {d + 1} to {caps[d]}" for d in grow)
            log(f"ranks {X.ranks} reached the rank cap: raised {named} (--fixed-rank-cap keeps it)")
        opts, init = replace(opts, max_rank=tuple(caps)), X


def fit_path(
    obs: Observed,
    values: torch.Tensor,
    opts: NortOptions,
    *,
    lam: float | None = None,
    val: tuple[Observed, torch.Tensor] | None = None,
    theta: float | None = None,
    steps: int = 12,
    ratio: float = 0.7,
    stage_iters: int = 40,
    patience: int = 3,
    rise_tol: float = RISE_TOL,
    monitor: Callable[[Factors], float] | None = None,
    log: Callable[[str], None] | None = None,
    seed: int = 0,
    theta_scale: float = 2.0,
    final_power_iters: int | None = None,
    fine: bool = False,
    early_stop: bool = True,
    theta_scales: tuple[float, ...] = (),
    grow_limits: tuple[int, ...] | None = None,
) -> FitResult:
    """Solve along the lambda path; ``lam`` is the per-mode weight (threshold = D * lam).

    The path stages take ``opts.power_iters`` power iterations per mode and step; the final stage
    (run to convergence) takes ``final_power_iters`` when given. One warm-started iteration
    underestimates the smaller singular values, so the penalty drops directions that an exact SVD
    keeps: on the full-size retina at 20% observed NORT then ends at ranks 75 instead of 98.

    After the search, ``fine`` tries the two thresholds half a path step on either side of the
    best, and ``theta_scales`` the other theta multiples at the chosen one (capped-l1), each for
    one stage from the best solution; the best on validation is then refined, stopped early
    (``early_stop``) once validation has risen for ``patience`` checks in a row. ``grow_limits``
    lets a rank that reaches its cap grow (solve_growing).
    """
    D = len(obs.shape)
    started = time.perf_counter()
    norms = sparse_spectral_norms(obs, values, seed=seed)
    lam_max = max(norms)
    if lam_max <= 0:
        raise ValueError("every observed value is zero; there is nothing to complete")
    search = lam is None
    if search and (val is None or val[1].numel() == 0):
        raise ValueError(
            "the lambda search needs validation entries (--val-fraction > 0) or a fixed --lambda"
        )
    walk = ValidationWalk(lam_max, ratio, steps, patience, rise_tol) if search else None
    if search:
        thresholds = walk.thresholds
    else:
        target = D * lam
        if target >= lam_max * ratio or opts.penalty == "nuclear":
            thresholds = [
                target
            ]  # convex, or already at the top of the path: no continuation needed
        else:
            k = max(1, math.ceil(math.log(target / lam_max) / math.log(ratio)))
            thresholds = [lam_max * (target / lam_max) ** (i / k) for i in range(1, k + 1)]
            thresholds[-1] = target
    gen = torch.Generator().manual_seed(seed)
    hist = History()
    hist.phase("lambda path" if search else "path to lambda")
    X: Factors | None = None
    stages: list[Stage] = []
    clock = 0.0

    def solve(thr, o, init, stop=None):
        """One stage (solve_growing), recorded with its validation RMSE; the history, the clock
        and grown caps carry on. Returns (factors, validation RMSE or None, modes at a cap)."""
        nonlocal hist, clock, opts
        n_before = len(hist.objective)
        X_s, hist, o, full = solve_growing(
            obs,
            values,
            thr,
            o,
            init,
            limits=grow_limits,
            gen=gen,
            monitor=monitor,
            history=hist,
            t0=clock,
            log=log,
            stop=stop,
        )
        opts = replace(opts, max_rank=o.max_rank)  # grown caps stay grown
        clock = hist.time[-1] if hist.time else clock
        v = rmse(X_s.low().at(val[0]), val[1]) if val is not None and val[1].numel() else None
        iters = len(hist.objective) - n_before
        stages.append(Stage(thr, thr / D, o.theta, iters, clock, v, X_s.ranks, o.power_iters))
        return X_s, v, full

    for i, thr in enumerate(thresholds):
        th = theta_for(opts.penalty, thr, lam_max, theta, theta_scale)
        last = (not search) and i == len(thresholds) - 1
        o = replace(
            opts,
            theta=th,
            max_iter=opts.max_iter if last else stage_iters,
            tol=opts.tol if last else 10 * opts.tol,
            power_iters=(final_power_iters or opts.power_iters) if last else opts.power_iters,
        )
        X, v, at_cap = solve(thr, o, X)
        if log:
            vtxt = f", validation RMSE {v:.4g}" if v is not None else ""
            log(
                f"lambda {thr / D:.4g} (threshold {thr:.4g}): {stages[-1].iters} iterations, "
                f"ranks {X.ranks}{vtxt}"
            )
        if search and walk.record(i, v, (X, th)):
            break
    if search:
        best_v, thr, (X_best, th) = walk.best
        near = [(thr * ratio**0.5, theta_scale), (thr / ratio**0.5, theta_scale)] if fine else []
        tries = near + [(None, sc) for sc in theta_scales if sc != theta_scale]
        if tries:
            hist.phase("near the best")
        for t_c, scale in tries:
            t_c = thr if t_c is None else t_c  # the theta multiples: at the chosen threshold
            th_c = theta_for(opts.penalty, t_c, lam_max, theta, scale)
            o = replace(opts, theta=th_c, max_iter=stage_iters, tol=10 * opts.tol)
            X_c, v_c, _ = solve(t_c, o, X_best)
            if log:
                log(
                    f"near the best: lambda {t_c / D:.4g}, theta {th_c:.4g}: validation RMSE "
                    f"{v_c:.4g}"
                )
            if v_c < best_v:
                best_v, thr, X_best, th = v_c, t_c, X_c, th_c
        X = X_best
        hist.phase("chosen lambda")
        o = replace(opts, theta=th, power_iters=final_power_iters or opts.power_iters)
        stop = (
            EarlyStop(val, best_v, opts.monitor_every, patience, rise_tol) if early_stop else None
        )
        X, v, at_cap = solve(thr, o, X, stop)
        if log:
            how = "stopped early, rising" if stop and stop.stopped else "after refinement"
            n = stages[-1].iters
            log(f"chosen lambda {thr / D:.4g}: validation RMSE {v:.4g} {how} ({n} iterations)")
        refined = v <= best_v
        if not refined:
            # converging at this lambda fitted the training entries at the cost of the held-out
            # ones (capped-l1 can drop directions while keeping the large singular values
            # unshrunk), so the path's solution, the best on validation, is returned
            X, v = X_best, best_v
            if log:
                log(f"kept the path's solution (validation RMSE {v:.4g}): the refinement did worse")
    else:
        thr, th, v, refined = thresholds[-1], stages[-1].theta, stages[-1].val_rmse, True
    return FitResult(
        X,
        thr / D,
        th,
        stages,
        hist,
        lam_max,
        time.perf_counter() - started,
        extra={"max_rank": list(opts.max_rank), "at_cap": at_cap},
        val_rmse=v,
        refined=refined,
    )

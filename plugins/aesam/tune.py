"""`mltk aesam tune`: each optimizer's radius chosen on a validation split, the same number of
trials for every optimizer, the test split never read.

The validation split is carved out of the training split (20% by default) and keeps its label
noise: a user with noisy data has nothing cleaner to select on. The adaptive optimizers' threshold
schedule is set by the cost cap: the paper's schedule (c_t from +1 to -1) shifted so that, if
||g||^2 were normal about its running mean, the expected share of SAM steps would be the cap
(`schedule_for`); a candidate whose measured share is above the cap is not eligible. SS-SAM
takes a SAM step with the cap's probability: the same budget.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from typing import Any

import numpy as np

RADIUS_FREE = ("erm",)  # nothing to tune: one trial
ADAPTIVE = ("aesam", "aelooksam")
FRACTION_SLACK = 0.02  # a measured SAM fraction this far above the cap is still within it


def _q(c: float) -> float:
    """1 - Phi(c), the normal upper tail."""
    return 0.5 * math.erfc(c / math.sqrt(2))


def expected_fraction(lambda2: float, lambda1: float) -> float:
    """The share of steps with ||g||^2 >= mu + c_t sigma when ||g||^2 is normal and c_t moves
    linearly from lambda2 to lambda1: the mean of 1 - Phi(c) over [lambda1, lambda2]."""
    if lambda1 == lambda2:
        return _q(lambda1)

    def antiderivative(c: float) -> float:  # d/dc [phi(c) - c Q(c)] = -Q(c)
        return math.exp(-c * c / 2) / math.sqrt(2 * math.pi) - c * _q(c)

    lo, hi = sorted((lambda1, lambda2))
    return (antiderivative(lo) - antiderivative(hi)) / (hi - lo)


def schedule_for(fraction: float, width: float = 2.0) -> tuple[float, float]:
    """(lambda2, lambda1): a schedule of the paper's width whose expected SAM fraction is
    ``fraction`` (the paper's own, +1 -> -1, expects 0.5)."""
    lo, hi = -10.0, 10.0  # the expected fraction falls as the schedule shifts up
    for _ in range(100):
        mid = (lo + hi) / 2
        if expected_fraction(mid + width / 2, mid - width / 2) > fraction:
            lo = mid
        else:
            hi = mid
    mid = (lo + hi) / 2
    return mid + width / 2, mid - width / 2


def radius_grid(trials: int, low: float, high: float) -> list[float]:
    """``trials`` radii spaced evenly in log scale from ``low`` to ``high``."""
    if trials == 1:
        return [math.sqrt(low * high)]
    return [low * (high / low) ** (i / (trials - 1)) for i in range(trials)]


def candidates(name: str, cfg) -> list[dict[str, Any]]:
    """The settings tried for one optimizer: ``cfg.trials`` radii (ERM: none), with the cost
    cap's schedule (adaptive) or probability (SS-SAM)."""
    if name in RADIUS_FREE:
        return [{}]
    fixed: dict[str, Any] = {}
    if name in ADAPTIVE:
        lambda2, lambda1 = schedule_for(cfg.max_sam_fraction)
        fixed = {"lambda2": round(lambda2, 4), "lambda1": round(lambda1, 4)}
    elif name == "sssam":
        fixed = {"p": cfg.max_sam_fraction}
    radii = radius_grid(cfg.trials, cfg.rho_min, cfg.rho_max)
    return [{"rho": round(r, 6), **fixed} for r in radii]


def carve_validation(data, seed: int, fraction: float):
    """Split the training part into training and validation (the validation set in the test
    slots, with its noisy labels); the test split is dropped."""
    rng = np.random.default_rng(50_000 + seed)
    order = rng.permutation(len(data.y_train))
    n_val = max(1, int(round(fraction * len(order))))
    val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    clean = data.y_train_clean
    return replace(
        data,
        x_train=data.x_train[tr],
        y_train=data.y_train[tr],
        x_test=data.x_train[val],
        y_test=data.y_train[val],
        y_train_clean=None if clean is None else clean[tr],
    )


def choose(trials: list[dict[str, Any]], cap: float) -> tuple[dict[str, Any], bool]:
    """The candidate with the best mean validation accuracy among those within the cost cap
    (adaptive optimizers); when none is, the cheapest. Returns (row, within the cap)."""
    within = [t for t in trials if t["sam_fraction"] <= cap + FRACTION_SLACK]
    adaptive = trials[0]["optimizer"] in ADAPTIVE
    if adaptive and not within:
        return min(trials, key=lambda t: t["sam_fraction"]), False
    pool = within if adaptive else trials
    return max(pool, key=lambda t: t["val_acc"]), True


def tune(cfg, load, run_one, log) -> dict[str, Any]:
    """Every optimizer's candidates on the same validation splits; ``load(seed)`` gives the data
    (its test split is never looked at), ``run_one(config, data, seed)`` trains once and scores
    on the data's test slots (the validation split here)."""
    seeds = [cfg.tune_seed + i for i in range(cfg.tune_seeds)]
    splits = {s: carve_validation(load(s), s, cfg.val_fraction) for s in seeds}
    chosen, table = {}, []
    for name in dict.fromkeys(cfg.optimizers):
        rows = []
        for settings in candidates(name, cfg):
            runs = []
            for s in seeds:
                run_cfg = replace(cfg, optimizer=name, **settings)
                runs.append(run_one(run_cfg, splits[s], s))
            row = {
                "optimizer": name,
                **settings,
                "val_acc": statistics.fmean(r["test_acc"] for r in runs),
                "sam_fraction": statistics.fmean(r["sam_fraction"] for r in runs),
                "grad_evals": statistics.fmean(r["grad_evals"] for r in runs),
            }
            log(
                f"{name:>9} {settings_text(settings):28s} validation acc {row['val_acc']:.4f}  "
                f"SAM fraction {row['sam_fraction']:.3f}"
            )
            rows.append(row)
        best, ok = choose(rows, cfg.max_sam_fraction)
        for r in rows:
            r["chosen"] = r is best
        chosen[name] = {k: v for k, v in best.items() if k != "chosen"}
        chosen[name]["within_cap"] = ok
        table.extend(rows)
    return {"chosen": chosen, "trials": table, "seeds": seeds}


def settings_text(settings: dict[str, Any]) -> str:
    parts = [f"rho {settings['rho']:.3g}"] if "rho" in settings else []
    if "lambda2" in settings:
        parts.append(f"c_t {settings['lambda2']:.2f} -> {settings['lambda1']:.2f}")
    if "p" in settings:
        parts.append(f"p {settings['p']:g}")
    return ", ".join(parts) or "(nothing to tune)"

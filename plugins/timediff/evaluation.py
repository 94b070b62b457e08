"""TimeDiff against the forecasters a user would otherwise pick, on the same test windows.

Every row holds MSE and MAE of its point forecast, CRPS, the weighted quantile loss and the
coverage and width of the 50/80/90% central intervals, on the normalised scale (predictive.py).
A point forecast is a one-atom distribution: its CRPS is its MAE and its intervals are empty.

The probabilistic baselines take their spread from residuals on the validation split only:

- AR-init + Gaussian: TimeDiff's own linear forecast with N(0, s^2) errors, s^2 the mean squared
  validation residual per horizon step and channel;
- AR-init + conformal: the same point forecast plus the empirical distribution of its
  validation residuals per horizon step and channel (split conformal);
- seasonal naive + empirical residuals: the same on the seasonal-naive forecast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import baselines, data, training
from .predictive import Empirical, Gaussian, Predictive, residual_grid, score


@dataclass
class Point(Predictive):
    """A point forecast as a distribution: one atom."""

    point: np.ndarray

    def quantiles(self, levels) -> np.ndarray:
        return np.stack([self.point for _ in levels])

    def crps(self, y) -> np.ndarray:
        return np.abs(np.asarray(y, np.float64) - self.point)


def result_row(name: str, pred: Predictive, y: np.ndarray, note: str = "", **extra) -> dict:
    return {"model": name, **score(pred, y), **extra, "note": note}


def mean_row(name: str, rows: list[dict], note: str) -> dict:
    """Several seeds of one model: the mean of every number, with the MSE's standard deviation."""
    out = {"model": name}
    for key, value in rows[0].items():
        if isinstance(value, float):
            out[key] = float(np.mean([r[key] for r in rows]))
        elif key in ("crps_by_channel",):
            out[key] = np.mean([r[key] for r in rows], axis=0).tolist()
        elif key == "by_step":
            out[key] = {k: np.mean([r[key][k] for r in rows], axis=0).tolist() for k in value}
    out["mse_std"] = float(np.std([r["mse"] for r in rows]))
    out["crps_std"] = float(np.std([r["crps"] for r in rows]))
    out["runs"] = len(rows)
    out["note"] = f"{note}, MSE std {out['mse_std']:.4f}"
    return out


def probabilistic_baselines(prepared, cfg, x, y) -> list[dict]:
    """AR-init + Gaussian, AR-init + conformal, seasonal naive + empirical residuals."""
    xv, yv = prepared.windows("val", cfg.lookback, cfg.horizon)
    ar = training.ar_predictor(prepared, cfg)
    point, resid = ar(x), yv - ar(xv)
    layout = f"{cfg.ar_channels} map, lookback {cfg.lookback}"
    rows = [
        result_row("AR-init + Gaussian", Gaussian(point, np.sqrt(np.mean(resid**2, axis=0))), y,
                   note=f"{layout}; variance per step and channel on validation"),
        result_row("AR-init + conformal", Empirical(point, residual_grid(resid)), y,
                   note=f"{layout}; validation residual quantiles per step and channel"),
    ]  # fmt: skip
    period = data.season_length(prepared.series)
    naive = baselines.seasonal_naive(x, cfg.horizon, period)
    naive_resid = yv - baselines.seasonal_naive(xv, cfg.horizon, period)
    rows.append(
        result_row(
            "seasonal naive + residuals",
            Empirical(naive, residual_grid(naive_resid)),
            y,
            note=f"period {period}; validation residual quantiles",
        )
    )
    return rows


def point_baselines(prepared, cfg, x, y, *, dlinear_seeds=3, device="cpu", log=None) -> list[dict]:
    """Closed-form linear maps and DLinear, shared and per channel (point forecasts)."""
    log = log or (lambda m: None)
    rows = []
    starts = prepared.splits.forecast_starts("test", cfg.lookback, cfg.horizon)
    for individual, label in ((False, "linear (closed form)"), (True, "linear individual")):
        lb, _ = baselines.choose_lookback(
            prepared,
            cfg.horizon,
            cfg.lookback_candidates,
            lambda lb, ind=individual: (
                baselines.ClosedFormLinear(lb, cfg.horizon, individual=ind).fit(prepared).predict
            ),
        )
        lin = baselines.ClosedFormLinear(lb, cfg.horizon, individual=individual).fit(prepared)
        xl, _ = data.gather(prepared.z, starts, lb, cfg.horizon)
        rows.append(
            result_row(label, Point(lin.predict(xl)), y, note=f"lookback {lb} (validation)")
        )
    for individual, label in ((False, "DLinear"), (True, "DLinear individual")):
        if dlinear_seeds < 1:
            break
        runs = []
        for seed in range(dlinear_seeds):
            log(f"training {label}, seed {seed}")
            model = baselines.train_dlinear(prepared, cfg.lookback, cfg.horizon, seed=seed,
                                            device=device, individual=individual)  # fmt: skip
            runs.append(result_row(label, Point(baselines.predict_torch(model, x, device)), y))
        note = f"{dlinear_seeds} seeds, lookback {cfg.lookback}"
        rows.append(mean_row(label, runs, note) if len(runs) > 1 else {**runs[0], "note": note})
    return rows


def baseline_rows(prepared, cfg, x, y, *, dlinear_seeds=3, device="cpu", log=None) -> list[dict]:
    """Every baseline on TimeDiff's test windows: probabilistic first, then point forecasts."""
    return probabilistic_baselines(prepared, cfg, x, y) + point_baselines(
        prepared, cfg, x, y, dlinear_seeds=dlinear_seeds, device=device, log=log
    )

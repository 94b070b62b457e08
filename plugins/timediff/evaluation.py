"""TimeDiff against the forecasters a user would otherwise pick, on the same test windows.

Each row holds MSE, MAE and CRPS on the normalised scale (a point forecast is a one-sample
distribution, so its CRPS is its MAE); see baselines.py for the models.
"""

from __future__ import annotations

import numpy as np

from . import baselines, data, metrics, training


def result_row(name, point, y, *, samples=None, note="", spread=None):
    row = {"model": name, **metrics.point_metrics(point, y)}
    # a point forecast is a one-sample distribution: its CRPS is its MAE
    row["crps"] = metrics.crps_samples(samples, y) if samples is not None else row["mae"]
    if spread is not None:
        row["mse_std"] = spread
    row["note"] = note
    return row


def baseline_rows(prepared, cfg, x, y, *, dlinear_seeds=3, device="cpu", log=None) -> list[dict]:
    """Seasonal naive, closed-form linear, DLinear and AR-init on TimeDiff's test windows."""
    log = log or (lambda m: None)
    rows = []
    period = data.season_length(prepared.series)
    rows.append(
        result_row(
            "seasonal naive",
            baselines.seasonal_naive(x, cfg.horizon, period),
            y,
            note=f"period {period}",
        )
    )
    starts = prepared.splits.forecast_starts("test", cfg.lookback, cfg.horizon)
    lb, _ = baselines.choose_lookback(
        prepared,
        cfg.horizon,
        cfg.lookback_candidates,
        lambda lb: baselines.ClosedFormLinear(lb, cfg.horizon).fit(prepared).predict,
    )
    lin = baselines.ClosedFormLinear(lb, cfg.horizon).fit(prepared)
    xl, _ = data.gather(prepared.z, starts, lb, cfg.horizon)
    rows.append(
        result_row("linear (closed form)", lin.predict(xl), y, note=f"lookback {lb} (validation)")
    )
    if dlinear_seeds > 0:
        preds, mses = [], []
        for seed in range(dlinear_seeds):
            log(f"training DLinear, seed {seed}")
            model = baselines.train_dlinear(
                prepared, cfg.lookback, cfg.horizon, seed=seed, device=device
            )
            p = baselines.predict_torch(model, x, device=device)
            preds.append(p)
            mses.append(metrics.mse(p, y))
        r = result_row(
            "DLinear",
            np.mean(preds, axis=0),
            y,
            note=f"{dlinear_seeds} seeds, lookback {cfg.lookback}",
        )
        r["mse"], r["mae"] = (
            float(np.mean(mses)),
            float(np.mean([metrics.mae(p, y) for p in preds])),
        )
        r["crps"] = r["mae"]
        r["mse_std"] = float(np.std(mses))
        r["note"] += f", MSE std {r['mse_std']:.4f}"
        rows.append(r)
    rows.append(
        result_row(
            "AR-init alone",
            training.ar_predictor(prepared, cfg)(x),
            y,
            note=f"lookback {cfg.lookback}",
        )
    )
    return rows

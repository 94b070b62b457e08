"""Writing a forecast: quantile columns, the dates after the series' end, the CSV and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mltk.errors import UsageError

from . import data


def parse_quantiles(text) -> list[float]:
    """Sorted, repeats merged: "0.95,0.05,0.5" (or a sequence of numbers) -> [0.05, 0.5, 0.95]."""
    if text is None:
        return [0.05, 0.5, 0.95]
    try:
        qs = [
            float(q) for q in (text.split(",") if isinstance(text, str) else text) if str(q).strip()
        ]
    except ValueError as exc:
        raise UsageError(f"--quantiles {text!r} must be numbers separated by commas") from exc
    if not qs:
        raise UsageError(
            "--quantiles names no quantile; give numbers between 0 and 1, e.g. 0.1,0.9"
        )
    if any(not 0 < q < 1 for q in qs):
        raise UsageError(f"--quantiles {text!r} must lie strictly between 0 and 1")
    return sorted(set(qs))


def quantile_name(q: float) -> str:
    """q05, q50, q95; q2.5 and q97.5 where the percentage is not whole."""
    pct = round(q * 100, 6)
    return f"q{pct:02.0f}" if pct == round(pct) else f"q{pct:g}"


def write_forecast(folder: Path, prepared, cfg, samples: np.ndarray, quantiles) -> dict:
    """forecast.csv (mean and quantiles per channel, in original units) and forecast.png from
    samples (S, H, C) on the normalised scale; returns what the verb reports."""
    from mltk import atomic

    series = prepared.series
    samples = prepared.scaler.inverse(samples.astype(np.float64))
    point = samples.mean(axis=0)
    quantiles = parse_quantiles(quantiles)
    qvals = np.quantile(samples, quantiles, axis=0)  # (Q, H, C)
    dates = _future_dates(series, cfg.horizon)
    header, table = _forecast_table(series.columns, dates, point, qvals, quantiles)
    csv_path, png = folder / "forecast.csv", folder / "forecast.png"
    atomic.write_text(
        csv_path, ",".join(header) + "\n" + "\n".join(",".join(r) for r in table) + "\n"
    )
    _plot_forecast(series, prepared, cfg, dates, point, qvals, quantiles, png)
    return {
        "dataset": series.name,
        "horizon": cfg.horizon,
        "samples": len(samples),
        "point_forecast": "mean of samples",
        "quantiles": quantiles,
        "columns": series.columns,
        "first_date": None if dates is None else _stamp(dates[0]),
        "csv": str(csv_path),
        "plot": str(png) if png.exists() else None,
        "forecast": {c: [float(v) for v in point[:, i]] for i, c in enumerate(series.columns)},
    }


def _future_dates(series: data.Series, horizon: int):
    if series.dates is None:
        return None
    import pandas as pd

    last = pd.Timestamp(series.dates[-1])
    if series.freq:
        try:
            return pd.date_range(last, periods=horizon + 1, freq=series.freq)[1:].to_numpy()
        except ValueError:
            pass
    step = pd.Timestamp(series.dates[-1]) - pd.Timestamp(series.dates[-2])
    return np.array([last + step * (i + 1) for i in range(horizon)], dtype="datetime64[s]")


def _stamp(date) -> str:
    return str(np.datetime64(date, "s")).replace("T", " ")


def _forecast_table(columns, dates, point, qvals, quantiles):
    header = ["step"] + (["date"] if dates is not None else [])
    for c in columns:
        header += [c] + [f"{c}_{quantile_name(q)}" for q in quantiles]
    rows = []
    for t in range(point.shape[0]):
        row = [str(t + 1)]
        if dates is not None:
            row.append(_stamp(dates[t]))
        for i in range(len(columns)):
            row += [f"{point[t, i]:.6g}"] + [f"{qvals[j, t, i]:.6g}" for j in range(len(quantiles))]
        rows.append(row)
    return header, rows


def _plot_forecast(series, prepared, cfg, dates, point, qvals, quantiles, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    n = min(series.n_channels, 8)
    hist = min(series.n_rows, 3 * cfg.horizon)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.9 * n + 0.6), squeeze=False, sharex=True)
    t_hist = np.arange(-hist, 0)
    t_fut = np.arange(cfg.horizon)
    lo, hi = qvals[0], qvals[-1]
    for i in range(n):
        ax = axes[i, 0]
        ax.plot(t_hist, series.values[-hist:, i], color="0.3", lw=0.8, label="history")
        ax.plot(t_fut, point[:, i], color="C0", lw=1.0, label="forecast (mean)")
        if len(quantiles) > 1:
            ax.fill_between(
                t_fut,
                lo[:, i],
                hi[:, i],
                color="C0",
                alpha=0.25,
                label=f"{quantiles[0]:.0%}-{quantiles[-1]:.0%}",
            )
        ax.set_ylabel(series.columns[i], fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("steps from the end of the series")
    fig.suptitle(f"TimeDiff forecast, {series.name}, {cfg.horizon} steps", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

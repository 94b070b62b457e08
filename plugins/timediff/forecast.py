"""Writing a forecast (quantile columns, dates, the CSV and the plot) and the eval plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mltk.errors import UsageError

from . import data

BAND_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)  # the plot's 90% and 50% bands and the median
THIN = 0.05  # a 90% interval narrower than this many channel standard deviations is degenerate


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


def write_forecast(
    folder: Path, prepared, cfg, pred, quantiles, *, end: int, warn=None, plot_channels=None
) -> dict:
    """forecast.csv (point and quantiles per channel, in original units) and forecast.png from
    a predictive distribution of one window (normalised scale) whose lookback ends at row
    `end`; returns what the verb reports. Rows after `end`, where the data has them, are the
    truth the plot draws."""
    from mltk import atomic

    series = prepared.series
    quantiles = parse_quantiles(quantiles)
    inverse = prepared.scaler.inverse
    point = inverse(np.asarray(pred.point[0], np.float64))  # (H, C)
    qvals = inverse(np.asarray(pred.quantiles(quantiles)[:, 0], np.float64))  # (Q, H, C)
    bands = np.asarray(pred.quantiles(BAND_LEVELS)[:, 0], np.float64)  # normalised
    widths = (bands[-1] - bands[0]).mean(axis=0)  # 90% width per channel, in channel stds
    thin = [(c, w) for c, w in zip(series.columns, widths, strict=True) if w < THIN]
    if thin and warn is not None:
        c, w = thin[0]
        more = f" (and {len(thin) - 1} more channels)" if len(thin) > 1 else ""
        warn(
            f"the 90% interval of {c}{more} is on average {w:.3f} of the channel's standard "
            f"deviation wide (below {THIN}): the samples barely differ, so the interval "
            "understates the uncertainty; use the calibrated intervals (--calibrate)"
        )
    dates = _dates_after(series, end, cfg.horizon)
    header, table = _forecast_table(series.columns, dates, point, qvals, quantiles)
    csv_path, png = folder / "forecast.csv", folder / "forecast.png"
    atomic.write_text(
        csv_path, ",".join(header) + "\n" + "\n".join(",".join(r) for r in table) + "\n"
    )
    truth = series.values[end : end + cfg.horizon]
    channels = _plot_channels(series, plot_channels)
    _plot_forecast(series, cfg, end, dates, point, inverse(bands), truth, channels, png)
    return {
        "dataset": series.name,
        "horizon": cfg.horizon,
        "samples": cfg.samples,
        "intervals": "calibrated" if cfg.calibrate else "sample quantiles",
        "point_forecast": cfg.point,
        "quantiles": quantiles,
        "columns": series.columns,
        "first_date": None if dates is None else stamp_of(dates[0]),
        "truth_steps": int(len(truth)),
        "width90": {c: float(w) for c, w in zip(series.columns, widths, strict=True)},
        "csv": str(csv_path),
        "plot": str(png) if png.exists() else None,
        "forecast": {c: [float(v) for v in point[:, i]] for i, c in enumerate(series.columns)},
    }


def _plot_channels(series, names) -> list[int]:
    if not names:
        return list(range(min(series.n_channels, 8)))
    unknown = [n for n in names if n not in series.columns]
    if unknown:
        raise UsageError(
            f"--plot-channels {unknown[0]!r} is not a channel of {series.name}; "
            f"channels: {', '.join(series.columns)}"
        )
    return [series.columns.index(n) for n in names]


def _dates_after(series: data.Series, end: int, horizon: int):
    """The dates of rows end .. end + H - 1: the data's own where it has them, then extended."""
    if series.dates is None:
        return None
    known = series.dates[end : end + horizon]
    if len(known) == horizon:
        return known.astype("datetime64[s]")
    import pandas as pd

    last = pd.Timestamp(series.dates[end - 1 + len(known)])
    more = horizon - len(known)
    future = None
    if series.freq:
        try:
            future = pd.date_range(last, periods=more + 1, freq=series.freq)[1:].to_numpy()
        except ValueError:
            future = None
    if future is None:
        step = pd.Timestamp(series.dates[-1]) - pd.Timestamp(series.dates[-2])
        future = np.array([last + step * (i + 1) for i in range(more)], dtype="datetime64[s]")
    return np.concatenate([known.astype("datetime64[s]"), future.astype("datetime64[s]")])


def stamp_of(date) -> str:
    """A date as the CSV writes it: 2018-03-01 00:00:00."""
    return str(np.datetime64(date, "s")).replace("T", " ")


def _forecast_table(columns, dates, point, qvals, quantiles):
    header = ["step"] + (["date"] if dates is not None else [])
    for c in columns:
        header += [c] + [f"{c}_{quantile_name(q)}" for q in quantiles]
    rows = []
    for t in range(point.shape[0]):
        row = [str(t + 1)]
        if dates is not None:
            row.append(stamp_of(dates[t]))
        for i in range(len(columns)):
            row += [f"{point[t, i]:.6g}"] + [f"{qvals[j, t, i]:.6g}" for j in range(len(quantiles))]
        rows.append(row)
    return header, rows


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _plot_forecast(series, cfg, end, dates, point, bands, truth, channels, path: Path) -> None:
    """History, the 50% and 90% bands, the median... and the truth where the data has it."""
    plt = _pyplot()
    if plt is None:
        return
    hist = min(end, 2 * cfg.horizon)
    if dates is not None:
        t_hist = series.dates[end - hist : end].astype("datetime64[s]").astype("O")
        t_fut = dates.astype("O")
    else:
        t_hist, t_fut = np.arange(end - hist, end), np.arange(end, end + cfg.horizon)
    n = len(channels)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.2 * n + 0.9), squeeze=False, sharex=True)
    q05, q25, q50, q75, q95 = bands
    for row, i in enumerate(channels):
        ax = axes[row, 0]
        ax.plot(t_hist, series.values[end - hist : end, i], color="0.35", lw=0.9, label="history")
        ax.fill_between(
            t_fut, q05[:, i], q95[:, i], color="C0", alpha=0.2, lw=0, label="90% interval"
        )
        ax.fill_between(
            t_fut, q25[:, i], q75[:, i], color="C0", alpha=0.4, lw=0, label="50% interval"
        )
        ax.plot(t_fut, q50[:, i], color="C0", lw=1.2, label="median")
        if len(truth):
            ax.plot(t_fut[: len(truth)], truth[:, i], color="C3", lw=1.0, label="truth")
        ax.axvline(t_fut[0], color="0.6", lw=0.6, ls=":")
        ax.set_ylabel(series.columns[i], fontsize=9)
        ax.grid(alpha=0.25, lw=0.5)
    if dates is None:
        axes[-1, 0].set_xlabel("row of the series")
    else:
        fig.autofmt_xdate()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=len(labels),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 0.96),
    )
    fig.suptitle(
        f"TimeDiff forecast of {series.name}, {cfg.horizon} steps", fontsize=10, y=0.995, va="top"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.91))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_by_step(rows: list[dict], path: Path, name: str) -> Path | None:
    """eval.png: CRPS and the 90% interval's coverage per horizon step, one line per model."""
    plt = _pyplot()
    if plt is None:
        return None
    prob = [r for r in rows if r.get("coverage90", 0) > 0 or r["model"].startswith("TimeDiff")]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, r in enumerate(prob):
        steps = np.arange(1, len(r["by_step"]["crps"]) + 1)
        a.plot(steps, r["by_step"]["crps"], lw=1.1, color=f"C{i}", label=r["model"])
        b.plot(steps, r["by_step"]["coverage90"], lw=1.1, color=f"C{i}")
    b.axhline(0.9, color="0.4", ls="--", lw=0.8)
    a.set(xlabel="horizon step", ylabel="CRPS (normalised)", title="CRPS by step")
    b.set(xlabel="horizon step", ylabel="coverage", title="90% interval: coverage by step")
    b.set_ylim(0, 1.02)
    for ax in (a, b):
        ax.grid(alpha=0.25, lw=0.5)
    fig.legend(loc="lower center", ncol=min(len(prob), 4), fontsize=8, frameon=False)
    fig.suptitle(f"{name}: test windows", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

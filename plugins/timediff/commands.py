"""What `mltk timediff train | eval | forecast` do, behind the light CLI in plugin.py."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from mltk.errors import DataError, UsageError

from . import baselines, data, metrics, training
from .config import TimeDiffConfig, preset, validate

PLUGIN = "timediff"


# ---------------------------------------------------------------------------------------------
# shared steps


def _series(kw: dict, out, *, source: dict | None = None) -> data.Series:
    """--data/--date-col/--target, falling back to what a run was trained on (`source`)."""
    target = kw.get("target")
    if isinstance(target, str):
        target = [t.strip() for t in target.split(",") if t.strip()]
    src = kw.get("data")
    date_col = kw.get("date_col")
    if src is None and source is not None:
        src, date_col = source.get("data"), source.get("date_col")
        target = target or source.get("target")
        if src is not None and src.lower() not in data.EMBEDDED and not Path(src).is_file():
            raise DataError(f"the run was trained on {src}, which is no longer there; pass --data")
    return data.load_series(src, date_col=date_col, target=target or None, warn=out.warn)


def _source(kw: dict, series: data.Series) -> dict:
    src = kw.get("data")
    if src is not None and src.lower() not in data.EMBEDDED:
        src = str(Path(src).resolve())
    return {
        "data": src,
        "date_col": kw.get("date_col"),
        "target": series.columns,
        "name": series.name,
        "rows": series.n_rows,
        "freq": series.freq,
        "missing_filled": series.n_filled,
    }


def resolve_config(kw: dict, fields: tuple[str, ...]) -> TimeDiffConfig:
    from mltk.config import build_config

    overrides = {f: kw.get(f) for f in fields}
    return build_config(
        TimeDiffConfig,
        preset=preset(kw.get("preset") or "small"),
        file=kw.get("config"),
        overrides=overrides,
    )


def ar_predictor(prepared: data.Prepared, cfg: TimeDiffConfig):
    """The AR-init forecaster alone (closed-form, instance-normalised like TimeDiff)."""
    weight, bias = training.fit_ar(prepared, cfg)

    def predict(x: np.ndarray) -> np.ndarray:
        xn, _ = training.normalise_windows(x, None, cfg.instance_norm)
        out = baselines.apply_linear_map(xn, weight, bias)
        if cfg.instance_norm == "none":
            return out
        mean = x.mean(axis=1, keepdims=True)
        std = (
            np.sqrt(x.var(axis=1, keepdims=True) + 1e-5) if cfg.instance_norm == "meanstd" else 1.0
        )
        return out * std + mean

    return predict


def choose_lookback(prepared: data.Prepared, cfg: TimeDiffConfig, log) -> TimeDiffConfig:
    """--lookback 0: the candidate with the lowest validation MSE of the AR-init model."""
    if cfg.lookback > 0:
        return cfg
    best, scores = baselines.choose_lookback(
        prepared,
        cfg.horizon,
        cfg.lookback_candidates,
        lambda lb: ar_predictor(prepared, dataclasses.replace(cfg, lookback=lb)),
    )
    log(
        "lookback chosen on validation: "
        + ", ".join(f"{k}: {v:.4f}" for k, v in scores.items())
        + f" -> {best}"
    )
    return dataclasses.replace(cfg, lookback=best)


def _check_channels(series: data.Series, saved: dict) -> None:
    trained = saved.get("target") or []
    if list(series.columns) != list(trained):
        raise DataError(
            f"the checkpoint was trained on channels {', '.join(trained)} but the data has "
            f"{', '.join(series.columns)}; pass --target with the trained channels"
        )


def _check_same_data(prepared: data.Prepared, saved: dict, given: str | None) -> None:
    """A resumed run must train on the data it started with: same training rows, same scaler."""
    mean, std = saved["scaler"]["mean"], saved["scaler"]["std"]
    same = np.allclose(prepared.scaler.mean, mean, rtol=1e-6, atol=1e-9) and np.allclose(
        prepared.scaler.std, std, rtol=1e-6, atol=1e-9
    )
    if not same:
        what = f"--data {given}" if given is not None else "the data"
        raise DataError(
            f"{what} is not the series this run was trained on (its training rows have other "
            "means and scales); resume with the original data"
        )


# ---------------------------------------------------------------------------------------------
# train

# the options a resumed run may change: how long it goes on
RESUME_FIELDS = ("epochs", "patience")


def run_train(kw: dict, rt, fields: tuple[str, ...]) -> dict[str, Any]:
    import torch

    from mltk.checkpoint import load_training_state, save_training_state
    from mltk.config import apply, config_to_dict
    from mltk.runs import RunDir

    out = rt.out
    resume = kw.get("resume")
    if resume is not None:
        run = RunDir.create(PLUGIN, resume=resume)
        saved = run.read_config()
        cfg = apply(TimeDiffConfig(), saved["config"], source=f"{run.path}/config.json")
        given = {f: kw.get(f) for f in fields if kw.get(f) is not None}
        ignored = [f for f in given if f not in RESUME_FIELDS]
        ignored += [f for f in ("config", "split") if kw.get(f) is not None]
        if kw.get("preset") not in (None, "small"):  # "small" is the option's default
            ignored.append("preset")
        if ignored:
            flags = ", ".join("--" + f.replace("_", "-") for f in ignored)
            out.warn(
                f"--resume continues the saved configuration; ignoring {flags} "
                "(only --epochs and --patience can change)"
            )
        cfg = validate(
            apply(cfg, {f: given[f] for f in RESUME_FIELDS if f in given}, source="command line")
        )
        series = _series(kw, out, source=saved["data"])
        _check_channels(series, saved["data"])
    else:
        cfg = validate(resolve_config(kw, fields))
        series = _series(kw, out)
        run = None
    if resume is None:
        prepared = data.prepare(series, kw.get("split") or "auto")
        cfg = choose_lookback(prepared, cfg, out.log)
    else:
        prepared = data.prepare(series, saved["split"].get("scheme", "auto"))
        _check_same_data(prepared, saved, kw.get("data"))
    data.check_lengths(series, prepared.splits, cfg.lookback, cfg.horizon)
    if run is None:
        run = RunDir.create(PLUGIN, out=kw.get("out"))
        run.write_config(
            {
                "config": config_to_dict(cfg),
                "data": _source(kw, series),
                "split": {**dataclasses.asdict(prepared.splits)},
                "scaler": {
                    "mean": prepared.scaler.mean.tolist(),
                    "std": prepared.scaler.std.tolist(),
                },
                "seed": rt.seed,
            }
        )
    out.log(
        f"TimeDiff on {series.name}: {series.n_channels} channels, lookback {cfg.lookback}, "
        f"horizon {cfg.horizon}, run folder {run.path}"
    )
    device = rt.device
    resume_state = None
    if resume is not None:
        model = training.build_model(cfg, series.n_channels).to(device)
        opt = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
        meta = load_training_state(run.checkpoint_dir, model=model, optimizer=opt)
        best = {
            k[len("best.") :]: v for k, v in meta["extra_tensors"].items() if k.startswith("best.")
        }
        resume_state = {
            "model": model,
            "optimizer": opt,
            "epoch": meta["step"],
            "best_val": meta.get("best_val"),
            "best_epoch": meta.get("best_epoch", 0),
            "bad_epochs": meta.get("bad_epochs", 0),
            "history": meta.get("history", []),
            "best_state": {k: v.to(device) for k, v in best.items()},
        }
        run.truncate_metrics(meta["step"])
        out.log(f"resuming after epoch {meta['step']}")
        if meta.get("bad_epochs", 0) >= cfg.patience or meta["step"] >= cfg.epochs:
            out.log("that run had already finished; raise --epochs to train longer")

    def checkpoint(model, opt, epoch, state, best_state):
        row = state["history"][-1]
        run.log_metrics(epoch, **{k: v for k, v in row.items() if k != "epoch"})
        if run.writable:
            save_training_state(
                run.checkpoint_dir,
                model=model,
                optimizer=opt,
                step=epoch,
                meta={**state, "config": config_to_dict(cfg)},
                extra_tensors={f"best.{k}": v for k, v in best_state.items()},
            )

    windows = len(prepared.splits.forecast_starts("train", cfg.lookback, cfg.horizon))
    per_epoch = min(windows, cfg.max_train_windows or windows)
    start = int(resume_state["epoch"]) if resume_state else 0
    with out.progress(per_epoch * max(cfg.epochs - start, 0), "training") as bar:
        result = training.train_model(
            cfg,
            prepared,
            device=device,
            seed=rt.seed,
            log=out.log,
            progress=lambda n, loss: bar.advance(n, loss=round(loss, 4)),
            checkpoint=checkpoint,
            resume_state=resume_state,
            dist=rt.dist,
            autocast=rt.autocast,
        )
    if not run.checkpoint_dir.exists() and run.writable:  # zero epochs: still leave a model
        checkpoint(
            result.model,
            None,
            0,
            {"history": [{}], "best_val": result.best_val},
            result.model.state_dict(),
        )
    if run.writable:
        _plot_losses(result.history, run.artifact("losses.png"))
    return {
        "run": str(run.path),
        "dataset": series.name,
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "epochs_run": len([h for h in result.history if h.get("epoch", 0) > 0]),
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "early_stop_on": cfg.early_stop_on,
        "seconds": round(result.seconds, 2),
    }


def _plot_losses(history: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [h for h in history if "train_loss" in h]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ep = [h["epoch"] for h in rows]
    ax.plot(ep, [h["train_loss"] for h in rows], label="train loss")
    ax.plot(ep, [h["val_loss"] for h in rows], label="validation loss")
    if "val_mse" in rows[0]:
        ax.plot(ep, [h["val_mse"] for h in rows], label="validation MSE")
    ax.set_xlabel("epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# loading a trained run


def load_run(path, kw: dict, rt):
    """(run, cfg, prepared, model) for eval/forecast; DataError on a missing or foreign run."""
    from mltk.checkpoint import load_checkpoint
    from mltk.config import apply
    from mltk.runs import RunDir

    run = RunDir.open(path, plugin=PLUGIN)
    saved = run.read_config()
    if "config" not in saved or "data" not in saved:
        raise DataError(f"{run.path}/config.json is not a timediff run configuration")
    cfg = apply(TimeDiffConfig(), saved["config"], source=f"{run.path}/config.json")
    asked = {k: kw[k] for k in ("sampler", "sample_steps", "samples") if kw.get(k) is not None}
    validate(dataclasses.replace(cfg, **asked))  # the sampling options given to eval/forecast
    series = _series(kw, rt.out, source=saved["data"])
    _check_channels(series, saved["data"])
    prepared = data.prepare(series, kw.get("split") or saved.get("split", {}).get("scheme", "auto"))
    if kw.get("data") is None:
        # the run's own scaler: identical to a refit on the same file, kept for safety
        prepared.scaler = data.Scaler(
            np.array(saved["scaler"]["mean"]), np.array(saved["scaler"]["std"])
        )
        prepared.z = prepared.scaler.transform(series.values).astype(np.float32)
    tensors, _ = load_checkpoint(run.checkpoint_dir)
    best = {k[len("extra.best.") :]: v for k, v in tensors.items() if k.startswith("extra.best.")}
    if not best:
        best = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    model = training.build_model(cfg, series.n_channels)
    try:
        model.load_state_dict(best)
    except RuntimeError as exc:
        raise DataError(
            f"the checkpoint in {run.path} does not match its config ({str(exc).splitlines()[0]})"
        ) from exc
    model.to(rt.device).eval()
    return run, cfg, prepared, model


# ---------------------------------------------------------------------------------------------
# eval


def run_eval(kw: dict, rt) -> tuple[dict[str, Any], Any]:
    from mltk.output import Table

    out = rt.out
    run, cfg, prepared, model = load_run(kw["run"], kw, rt)
    n_samples = kw.get("samples") or cfg.samples
    data.check_lengths(prepared.series, prepared.splits, cfg.lookback, cfg.horizon)
    x, y = prepared.windows("test", cfg.lookback, cfg.horizon)
    out.log(
        f"evaluating on {len(x)} test windows of {prepared.series.name} ({n_samples} samples each)"
    )
    t0 = time.perf_counter()
    samples = training.forecast_windows(
        model,
        x,
        n_samples=n_samples,
        device=rt.device,
        seed=rt.seed,
        sampler=kw.get("sampler"),
        sample_steps=kw.get("sample_steps"),
    )
    seconds = time.perf_counter() - t0
    point = samples.mean(axis=0)
    rows = [
        _row(
            "TimeDiff",
            point,
            y,
            samples=samples,
            note=f"mean of {n_samples} samples, {seconds:.0f}s",
        ),
    ]
    if not kw.get("no_baselines"):
        rows += baseline_rows(
            prepared,
            cfg,
            x,
            y,
            dlinear_seeds=kw.get("dlinear_seeds", 3),
            device=rt.device,
            log=out.log,
        )
    result = {
        "run": str(run.path),
        "dataset": prepared.series.name,
        "split": "test",
        "windows": len(x),
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "scale": "normalised (training-split standard scaler), averaged over channels",
        "point_forecast": "mean of samples",
        "results": rows,
    }
    table = Table(
        f"{prepared.series.name}, horizon {cfg.horizon}, {len(x)} test windows",
        ["model", "MSE", "MAE", "CRPS", "note"],
        [[r["model"], r["mse"], r["mae"], r["crps"], r["note"]] for r in rows],
    )
    return result, table


def _row(name, point, y, *, samples=None, note="", spread=None):
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
        _row(
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
        _row("linear (closed form)", lin.predict(xl), y, note=f"lookback {lb} (validation)")
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
        r = _row(
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
        _row("AR-init alone", ar_predictor(prepared, cfg)(x), y, note=f"lookback {cfg.lookback}")
    )
    return rows


# ---------------------------------------------------------------------------------------------
# forecast


def parse_quantiles(text: str | None) -> list[float]:
    if text is None:
        return [0.05, 0.5, 0.95]
    try:
        qs = [float(q) for q in text.split(",") if q.strip()]
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


def run_forecast(kw: dict, rt, fields: tuple[str, ...]) -> dict[str, Any]:
    out = rt.out
    quantiles = parse_quantiles(kw.get("quantiles"))
    if kw.get("run") is None:
        out.log("no --run given: training a model first (pass --run DIR to reuse one)")
        trained = run_train({**kw, "resume": None}, rt, fields)
        kw = {**kw, "run": trained["run"], "data": kw.get("data")}
    else:
        sampling = ("sampler", "sample_steps", "samples")
        ignored = [f for f in fields if kw.get(f) is not None and f not in sampling]
        if ignored:
            out.warn(
                "the run's own settings are used; ignored: "
                + ", ".join("--" + f.replace("_", "-") for f in ignored)
            )
    run, cfg, prepared, model = load_run(kw["run"], kw, rt)
    series = prepared.series
    if series.n_rows < cfg.lookback:
        raise DataError(
            f"forecasting needs the last {cfg.lookback} rows (the lookback); {series.name} has {series.n_rows}"
        )
    n_samples = kw.get("samples") or cfg.samples
    x = prepared.z[-cfg.lookback :][None]
    samples = training.forecast_windows(
        model,
        x,
        n_samples=n_samples,
        device=rt.device,
        seed=rt.seed,
        sampler=kw.get("sampler"),
        sample_steps=kw.get("sample_steps"),
    )[:, 0]  # (S, H, C), normalised
    samples = prepared.scaler.inverse(samples.astype(np.float64))
    point = samples.mean(axis=0)
    qvals = np.quantile(samples, quantiles, axis=0)  # (Q, H, C)
    dates = _future_dates(series, cfg.horizon)
    folder = Path(kw["out"]) if kw.get("out") is not None else run.path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {folder} is not writable ({exc.strerror})") from exc
    csv_path = folder / "forecast.csv"
    header, table = _forecast_table(series.columns, dates, point, qvals, quantiles)
    from mltk import atomic

    atomic.write_text(
        csv_path, ",".join(header) + "\n" + "\n".join(",".join(r) for r in table) + "\n"
    )
    png = folder / "forecast.png"
    _plot_forecast(series, prepared, cfg, dates, point, qvals, quantiles, png)
    return {
        "run": str(run.path),
        "dataset": series.name,
        "horizon": cfg.horizon,
        "samples": n_samples,
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

"""What `mltk timediff train | eval | forecast` do, behind the verb declarations in plugin.py."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from mltk import atomic
from mltk.errors import DataError, UsageError

from . import data, training
from .config import SAMPLING, TimeDiffConfig, check
from .evaluation import baseline_rows, result_row
from .forecast import stamp_of, write_forecast

CALIBRATION_FILE = "calibration.safetensors"
# what a run folder written before these options existed was trained and sampled with
FIRST_RELEASE = {"skip": "none", "point": "mean", "ar_channels": "shared"}


def as_trained(cfg: TimeDiffConfig, saved: dict) -> TimeDiffConfig:
    """A run folder from before the Gaussian skip is loaded with the first release's settings."""
    if "skip" in saved.get("config", {}):
        return cfg
    return dataclasses.replace(cfg, **FIRST_RELEASE)


def load_series(cfg, out) -> data.Series:
    """The series named by --data, --date-col and --target."""
    source = cfg.data
    if source.lower() not in data.EMBEDDED and not Path(source).is_file():
        what = "is a folder; give a CSV file" if Path(source).is_dir() else "does not exist"
        raise DataError(f"the data file {source} {what}")
    target = list(cfg.target) if cfg.target else None
    return data.load_series(source, date_col=cfg.date_col, target=target, warn=out.warn)


def _check_channels(series: data.Series, trained: list[str]) -> None:
    if list(series.columns) != list(trained):
        raise DataError(
            f"the checkpoint was trained on channels {', '.join(trained)} but the data has "
            f"{', '.join(series.columns)}; pass --target with the trained channels"
        )


def _check_same_data(prepared: data.Prepared, saved: dict) -> None:
    """A resumed run must train on the data it started with: same training rows, same scaler."""
    mean, std = saved["scaler"]["mean"], saved["scaler"]["std"]
    same = np.allclose(prepared.scaler.mean, mean, rtol=1e-6, atol=1e-9) and np.allclose(
        prepared.scaler.std, std, rtol=1e-6, atol=1e-9
    )
    if not same:
        raise DataError(
            f"--data {prepared.series.name} is not the series this run was trained on (its "
            "training rows have other means and scales); resume with the original data"
        )


# ---------------------------------------------------------------------------------------------
# train


def run_train(cfg: TimeDiffConfig, rt) -> dict[str, Any]:
    import torch

    out = rt.out
    if cfg.data.lower() not in data.EMBEDDED:
        cfg = dataclasses.replace(cfg, data=str(Path(cfg.data).resolve()))
    series = load_series(cfg, out)
    if rt.resumed:
        saved = rt.run.read_config()
        cfg = as_trained(cfg, saved)
        _check_channels(series, saved["data"]["target"])
        prepared = data.prepare(series, cfg.split)
        _check_same_data(prepared, saved)
    else:
        prepared = data.prepare(series, cfg.split)
        cfg = training.choose_lookback(prepared, cfg, out.log)
        if cfg.ar_init:
            cfg = training.choose_ar_channels(prepared, cfg, out.log)
        cfg = dataclasses.replace(cfg, target=tuple(series.columns))
    data.check_lengths(series, prepared.splits, cfg.lookback, cfg.horizon)
    rt.config = cfg
    run = rt.run
    if not rt.resumed:
        run.update_config(
            cfg,
            data={"target": series.columns, "name": series.name, "rows": series.n_rows,
                  "freq": series.freq, "missing_filled": series.n_filled},
            split=dataclasses.asdict(prepared.splits),
            scaler={"mean": prepared.scaler.mean.tolist(), "std": prepared.scaler.std.tolist()},
        )  # fmt: skip
    out.log(
        f"TimeDiff on {series.name}: {series.n_channels} channels, lookback {cfg.lookback}, "
        f"horizon {cfg.horizon}, run folder {run.path}"
    )
    resume_state = None
    if rt.resumed:
        model = training.build_model(cfg, series.n_channels).to(rt.device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        meta = run.restore_state(model=model, optimizer=opt, log=out.log)
        best = {k[5:]: v.to(rt.device) for k, v in meta["extra_tensors"].items()
                if k.startswith("best.")}  # fmt: skip
        resume_state = {"model": model, "optimizer": opt, "epoch": meta["step"],
                        "best_val": meta.get("best_val"), "best_epoch": meta.get("best_epoch", 0),
                        "bad_epochs": meta.get("bad_epochs", 0),
                        "history": meta.get("history", []), "best_state": best}  # fmt: skip
        if meta.get("bad_epochs", 0) >= cfg.patience or meta["step"] >= cfg.epochs:
            out.log("that run had already finished; raise --epochs to train longer")

    def checkpoint(model, opt, epoch, state, best_state):
        row = state["history"][-1]
        run.log_metrics(epoch, **{k: v for k, v in row.items() if k != "epoch"})
        run.save_state(model=model, optimizer=opt, step=epoch,
                       meta={**state, "config": dataclasses.asdict(cfg)},
                       extra_tensors={f"best.{k}": v for k, v in best_state.items()})  # fmt: skip

    windows = len(prepared.splits.forecast_starts("train", cfg.lookback, cfg.horizon))
    per_epoch = min(windows, cfg.max_train_windows or windows)
    start = int(resume_state["epoch"]) if resume_state else 0
    with out.progress(per_epoch * max(cfg.epochs - start, 0), "training") as bar:
        result = training.train_model(
            cfg, prepared, device=rt.device, seed=rt.seed, log=out.log,
            progress=lambda n, loss: bar.advance(n, loss=round(loss, 4)),
            checkpoint=checkpoint, resume_state=resume_state, dist=rt.dist,
            autocast=rt.autocast,
        )  # fmt: skip
    if not run.checkpoint_dir.exists() and run.writable:  # zero epochs: still leave a model
        state = {"history": [{}], "best_val": result.best_val}
        checkpoint(result.model, None, 0, state, result.model.state_dict())
    if run.writable:
        _plot_losses(result.history, run.artifact("losses.png"))
        if cfg.calibrate:
            calibration(result.model, prepared, cfg, rt, run.path)
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
# a trained run, for eval and forecast


def load_run(run, rt, given: dict[str, Any]):
    """(cfg, prepared, model) of a trained run; `given` may name other data (data, date_col,
    target, split) and sampling options (sampler, sample_steps, samples)."""
    given = {k: v for k, v in given.items() if v is not None}
    saved = run.read_config()
    if "scaler" not in saved or "data" not in saved:
        raise DataError(f"{run.path}/config.json is not a timediff training run's configuration")
    cfg = run.saved_config(TimeDiffConfig)
    cfg = as_trained(cfg, saved)
    if "data" in given:  # another file: its own date column and channels unless named
        cfg = dataclasses.replace(cfg, date_col=None, target=None)
    cfg = dataclasses.replace(cfg, **given)
    check(cfg)  # the sampling options given to eval/forecast, against the run's own
    series = load_series(cfg, rt.out)
    _check_channels(series, saved["data"]["target"])
    prepared = data.prepare(series, cfg.split)
    if "data" not in given:
        # the run's own scaler: identical to a refit on the same file, kept for safety
        prepared.scaler = data.Scaler(
            np.array(saved["scaler"]["mean"]), np.array(saved["scaler"]["std"])
        )
        prepared.z = prepared.scaler.transform(series.values).astype(np.float32)
    tensors, _ = run.load()
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
    return cfg, prepared, model


def _sample(model, x, cfg, rt):
    return training.forecast_windows(
        model,
        x,
        n_samples=cfg.samples,
        device=rt.device,
        seed=rt.seed,
        sampler=cfg.sampler,
        sample_steps=cfg.sample_steps,
        eta=cfg.ddim_eta,
    )


def _calibration_key(prepared, cfg) -> dict[str, str]:
    """What a calibration depends on: the data, the model's settings and the sampling options."""
    keys = ("samples", "sampler", "sample_steps", "ddim_eta", "point", "calibration_windows")
    key = {k: str(getattr(cfg, k)) for k in keys}
    return {"data": prepared.series.name, "rows": str(prepared.series.n_rows), **key}


def calibration(model, prepared, cfg, rt, folder: Path | None = None) -> np.ndarray:
    """The run's calibration grid (M, H, C): read from `folder` when it was made for this data
    and these sampling options, else computed on the validation split (and saved there)."""
    from safetensors import safe_open
    from safetensors.numpy import load, save

    key = _calibration_key(prepared, cfg)
    path = None if folder is None else Path(folder) / CALIBRATION_FILE
    if path is not None and path.is_file():
        with safe_open(str(path), "numpy") as fh:
            meta = fh.metadata() or {}
        if meta == key:
            return load(path.read_bytes())["grid"]
    grid = training.calibration_grid(
        model, prepared, cfg, device=rt.device, seed=rt.seed, log=rt.out.log
    )
    if path is not None and atomic.writable(path.parent):
        atomic.write_bytes(path, save({"grid": grid.astype(np.float32)}, metadata=key))
    return grid


def predictive(model, x, cfg, rt, prepared, folder):
    """(calibrated or raw predictive, raw samples) for lookbacks x."""
    pred = _sample(model, x, cfg, rt)
    if not cfg.calibrate:
        return pred, pred
    grid = calibration(model, prepared, cfg, rt, folder)
    return training.calibrated(pred, grid), pred


def run_eval(ecfg, rt) -> dict[str, Any]:
    """Test-split scores of TimeDiff and of every baseline on the same windows."""
    fields = ("data", "date_col", "target", "split", *SAMPLING)
    cfg, prepared, model = load_run(rt.source, rt, {k: getattr(ecfg, k) for k in fields})
    data.check_lengths(prepared.series, prepared.splits, cfg.lookback, cfg.horizon)
    x, y = prepared.windows("test", cfg.lookback, cfg.horizon)
    rt.out.log(
        f"evaluating on {len(x)} test windows of {prepared.series.name} "
        f"({cfg.samples} samples each)"
    )
    t0 = time.perf_counter()
    cal, raw = predictive(model, x, cfg, rt, prepared, rt.source.path)
    note = f"{cfg.samples} samples, {time.perf_counter() - t0:.0f}s"
    rows = []
    if cfg.calibrate:
        how = "validation quantiles of residual / the window's sample spread"
        rows.append(result_row("TimeDiff (calibrated)", cal, y, note=f"{note}; {how}"))
    rows.append(result_row("TimeDiff (samples)", raw, y, note=f"{note}; {cfg.point} point"))
    if ecfg.baselines:
        rows += baseline_rows(
            prepared, cfg, x, y, dlinear_seeds=ecfg.dlinear_seeds, device=rt.device, log=rt.out.log
        )
    plot = by_step_file = None
    if atomic.writable(rt.source.path):
        from .forecast import plot_by_step

        plot = plot_by_step(rows, rt.source.path / "eval.png", prepared.series.name)
        by_step_file = rt.source.path / "eval-by-step.json"
        steps = {r["model"]: r["by_step"] for r in rows}
        atomic.write_text(by_step_file, json.dumps(steps, indent=1) + "\n")
    channels = prepared.series.columns
    by_channel = {r["model"]: dict(zip(channels, r["crps_by_channel"], strict=True)) for r in rows}
    rows = [{k: v for k, v in r.items() if k not in ("by_step", "crps_by_channel")} for r in rows]
    return {
        "run": str(rt.source.path),
        "dataset": prepared.series.name,
        "split": "test",
        "windows": len(x),
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "samples": cfg.samples,
        "scale": "normalised (training-split standard scaler)",
        "point_forecast": cfg.point,
        "plot": None if plot is None else str(plot),
        "by_step": None if by_step_file is None else str(by_step_file),
        "results": rows,
        "crps_by_channel": by_channel,
    }


# ---------------------------------------------------------------------------------------------
# forecast


def run_forecast(cfg, rt) -> dict[str, Any]:
    """The next H steps after the end of the series (or after --cutoff), from RUN (or from a
    model trained now)."""
    if not rt.sources:
        rt.out.log("no RUN given: training a model first (pass a run folder to reuse one)")
        run_train(cfg, rt)
        run, folder = rt.run, rt.run.path
        given = {}
    else:
        run = rt.source
        own = ("data", "date_col", "target", "split", *SAMPLING)
        own_too = ("quantiles", "cutoff", "plot_channels")
        ignored = [f for f in rt.given if f not in own + own_too]
        if ignored:
            flags = ", ".join("--" + f.replace("_", "-") for f in ignored)
            rt.out.warn(f"the run's own settings are used; ignored: {flags}")
        given = {k: getattr(cfg, k) for k in own if k in rt.given}
        folder = rt.output.path
    run_cfg, prepared, model = load_run(run, rt, given)
    end = _cutoff_row(prepared.series, cfg.cutoff)
    if end < run_cfg.lookback:
        where = "the end of the data" if cfg.cutoff is None else f"--cutoff {cfg.cutoff}"
        raise DataError(
            f"forecasting needs {run_cfg.lookback} rows (the lookback) before {where}; "
            f"{prepared.series.name} has {end}"
        )
    x = prepared.z[end - run_cfg.lookback : end][None]
    pred, _ = predictive(model, x, run_cfg, rt, prepared, run.path)
    written = write_forecast(
        folder,
        prepared,
        run_cfg,
        pred,
        cfg.quantiles,
        end=end,
        warn=rt.out.warn,
        plot_channels=cfg.plot_channels,
    )
    return {"run": str(run.path), "cutoff": end, **written}


def _cutoff_row(series: data.Series, cutoff: str | None) -> int:
    """The row after the last one the forecast may see: the end, a row number or a date."""
    if cutoff is None:
        return series.n_rows
    text = str(cutoff).strip()
    if text.isdigit():
        row = int(text)
    elif series.dates is None:
        raise UsageError(f"--cutoff {text!r}: {series.name} has no dates; give a row number")
    else:
        try:
            stamp = np.datetime64(text.replace(" ", "T"), "s")
        except ValueError as exc:
            raise UsageError(f"--cutoff {text!r} is neither a row number nor a date") from exc
        dates = series.dates.astype("datetime64[s]")
        if stamp > dates[-1]:
            raise UsageError(
                f"--cutoff {text!r} lies after the end of {series.name} ({stamp_of(dates[-1])}); "
                "leave it out to forecast after the end"
            )
        row = int(np.searchsorted(dates, stamp))
    if not 0 < row <= series.n_rows:
        raise UsageError(f"--cutoff {text!r} lies outside {series.name} ({series.n_rows} rows)")
    return row

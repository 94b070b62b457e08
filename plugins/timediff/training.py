"""Training TimeDiff and drawing forecasts over a split.

Training fits the AR-init map in closed form on the training windows first, then trains the
future-mixup map F and the denoiser with Adam on the x0 loss, with early stopping on the
validation loss (same k and noise for every epoch, so epochs compare). Each epoch writes a
resumable training state; the best weights are kept alongside.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mltk.errors import DivergedError

from .ar_init import apply_linear_map, fit_individual_maps, fit_linear_map
from .baselines import choose_lookback as lookback_on_validation
from .config import TimeDiffConfig
from .data import Prepared, gather
from .model import TimeDiff
from .predictive import Empirical, Samples, residual_grid


def normalise_windows(x: np.ndarray, y: np.ndarray | None, mode: str):
    """The numpy twin of `model.instance_stats`, for the closed-form fits."""
    if mode == "none":
        return x, y
    mean = x.mean(axis=1, keepdims=True)
    std = np.sqrt(x.var(axis=1, keepdims=True) + 1e-5) if mode == "meanstd" else 1.0
    return (x - mean) / std, (None if y is None else (y - mean) / std)


def train_windows(prepared: Prepared, cfg: TimeDiffConfig):
    """The instance-normalised training windows (xn, yn), what the closed-form fits read."""
    x, y = prepared.windows("train", cfg.lookback, cfg.horizon)
    return normalise_windows(x, y, cfg.instance_norm)


def fit_ar(prepared: Prepared, cfg: TimeDiffConfig, windows=None) -> tuple[np.ndarray, np.ndarray]:
    """AR-init weights and bias on the instance-normalised training windows: (L, H), (H,)
    shared by the channels, or (C, L, H), (C, H) with `ar_channels="individual"`."""
    xn, yn = windows or train_windows(prepared, cfg)
    if cfg.ar_channels == "individual":  # one least-squares row per window
        return fit_individual_maps(xn, yn, ridge=cfg.ar_ridge * xn.shape[0])
    rows = xn.shape[0] * xn.shape[2]  # one least-squares row per window and channel
    return fit_linear_map(xn, yn, ridge=cfg.ar_ridge * rows)


def prior_variance(prepared: Prepared, cfg: TimeDiffConfig, ar_fit=None, windows=None):
    """s^2 (H, C) of the Gaussian skip: the mean squared error of the AR-init forecast on the
    instance-normalised training windows (of a zero forecast without AR-init)."""
    xn, yn = windows or train_windows(prepared, cfg)
    err = yn if ar_fit is None else yn - apply_linear_map(xn, *ar_fit)
    return np.maximum(np.mean(np.square(err, dtype=np.float64), axis=0), 1e-4)


def build_model(cfg: TimeDiffConfig, channels: int, ar_fit=None, prior_var=None) -> TimeDiff:
    model = TimeDiff(cfg, channels)
    if ar_fit is not None:
        weight, bias = ar_fit
        if model.ar is not None:
            model.ar.load_fit(weight, bias)
            if weight.ndim == 2:  # F starts where the (shared) AR fit is
                w, b = torch.as_tensor(weight).float(), torch.as_tensor(bias).float()
                model.mixup.init_from(w, b)
    if model.ar is not None and not cfg.train_mixup_map:
        model.mixup.linear.requires_grad_(False)  # F stays at the AR-init fit
    if prior_var is not None and cfg.skip == "gaussian":
        model.prior_var.copy_(torch.as_tensor(prior_var, dtype=torch.float32))
    return model


@dataclass
class TrainResult:
    model: TimeDiff
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = math.inf
    seconds: float = 0.0
    stopped_early: bool = False


def _batches(n: int, size: int, rng: np.random.Generator | None):
    order = np.arange(n) if rng is None else rng.permutation(n)
    for i in range(0, n, size):
        yield order[i : i + size]


def _val_starts(prepared: Prepared, cfg, max_windows: int) -> np.ndarray:
    starts = prepared.splits.forecast_starts("val", cfg.lookback, cfg.horizon)
    if len(starts) > max_windows:  # an evenly spaced subset, the same every epoch
        starts = starts[np.linspace(0, len(starts) - 1, max_windows).astype(int)]
    return starts


@torch.no_grad()
def validation_mse(model: TimeDiff, prepared: Prepared, cfg, device) -> float:
    """MSE of the point forecast (mean of cfg.samples samples) on a fixed subset of val windows."""
    x, y = gather(
        prepared.z, _val_starts(prepared, cfg, cfg.val_windows), cfg.lookback, cfg.horizon
    )
    pred = forecast_windows(model, x, n_samples=cfg.samples, device=device, seed=4321)
    return float(np.mean((pred.point - y) ** 2))


@torch.no_grad()
def validation_loss(model: TimeDiff, prepared: Prepared, cfg, device, max_windows=2048) -> float:
    """The diffusion loss on validation windows with the same k and noise every epoch."""
    starts = _val_starts(prepared, cfg, max_windows)
    gen = torch.Generator().manual_seed(1234)
    model.eval()
    total, count = 0.0, 0
    for idx in _batches(len(starts), 512, None):
        x, y = gather(prepared.z, starts[idx], cfg.lookback, cfg.horizon)
        x = torch.from_numpy(x).to(device)
        y = torch.from_numpy(y).to(device)
        total += float(model.loss(x, y, generator=gen)) * len(idx)
        count += len(idx)
    return total / count


def train_model(
    cfg: TimeDiffConfig,
    prepared: Prepared,
    *,
    device="cpu",
    seed: int = 0,
    log=None,
    progress=None,
    checkpoint=None,
    resume_state: dict | None = None,
    ar_fit=None,
    dist=None,
    autocast=None,
) -> TrainResult:
    """Train; `checkpoint(model, optimizer, epoch, state)` is called after every epoch.

    `resume_state` (from a checkpoint) holds the model/optimizer already loaded by the caller via
    the keys "model", "optimizer", "epoch", "best_val", "best_epoch", "bad_epochs", "history",
    "best_state".
    Under torchrun (`dist.enabled`) the model is wrapped in DDP and each rank takes every
    world_size-th batch of the same shuffled order; `autocast` is a context factory (bf16/fp16).
    """
    from contextlib import nullcontext

    autocast = autocast or nullcontext
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    if resume_state is not None:
        model = resume_state["model"]
        opt = resume_state["optimizer"]
    else:
        need = (ar_fit is None and cfg.ar_init) or cfg.skip == "gaussian"
        windows = train_windows(prepared, cfg) if need else None  # once for both fits
        if ar_fit is None and cfg.ar_init:
            ar_fit = fit_ar(prepared, cfg, windows)
        prior = prior_variance(prepared, cfg, ar_fit, windows) if cfg.skip == "gaussian" else None
        model = build_model(cfg, prepared.series.n_channels, ar_fit, prior)
        model.to(device)
        opt = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
    net = dist.wrap(model, torch.device(device)) if dist is not None else model
    state = resume_state or {}
    start_epoch = int(state.get("epoch", 0))
    best_val = float(state.get("best_val", math.inf))
    best_epoch = int(state.get("best_epoch", 0))
    bad = int(state.get("bad_epochs", 0))
    history = list(state.get("history", []))
    best_state = state.get("best_state") or copy.deepcopy(model.state_dict())
    rng = np.random.default_rng(seed + 7919 * start_epoch)
    starts_all = prepared.splits.forecast_starts("train", cfg.lookback, cfg.horizon)
    result = TrainResult(model, history, best_epoch, best_val)
    by_mse = cfg.early_stop_on == "mse"
    if by_mse and start_epoch == 0:
        # epoch 0, the untrained denoiser, forecasts x0 = z_mix = F(x): the AR-init forecast.
        # Logged for reference, never selected: its samples have no spread.
        ref = validation_mse(model, prepared, cfg, device)
        history.append({"epoch": 0, "val_mse": ref})
        log(f"epoch 0 (AR-init forecast): validation MSE {ref:.4f}")
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        starts = starts_all
        if cfg.max_train_windows and len(starts) > cfg.max_train_windows:
            starts = rng.choice(starts_all, cfg.max_train_windows, replace=False)
        model.train()
        running, seen = 0.0, 0
        batches = list(_batches(len(starts), cfg.batch_size, rng))
        if dist is not None and dist.enabled:
            # the same order on every rank (same seed); equal batch counts keep DDP in step
            batches = batches[: len(batches) - len(batches) % dist.world_size] or batches
            batches = [batches[i] for i in dist.shard(len(batches))]
        for idx in batches:
            x, y = gather(prepared.z, starts[idx], cfg.lookback, cfg.horizon)
            x = torch.from_numpy(x).to(device)
            y = torch.from_numpy(y).to(device)
            with autocast():
                loss = net(x, y).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise DivergedError(f"the training loss is not finite in epoch {epoch}; lower --lr")
            running += value * len(idx)
            seen += len(idx)
            if progress is not None:
                progress(len(idx), value)
        val_loss = validation_loss(model, prepared, cfg, device)
        row = {"epoch": epoch, "train_loss": running / max(seen, 1), "val_loss": val_loss}
        if by_mse:
            row["val_mse"] = validation_mse(model, prepared, cfg, device)
        val = row["val_mse"] if by_mse else val_loss
        history.append(row)
        log(
            f"epoch {epoch}: train loss {row['train_loss']:.4f}, validation loss {val_loss:.4f}"
            + (f", validation MSE {row['val_mse']:.4f}" if by_mse else "")
        )
        if val < best_val - 1e-6:
            best_val, best_epoch, bad = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        stop = bad >= cfg.patience
        if checkpoint is not None:
            checkpoint(
                model,
                opt,
                epoch,
                {
                    "best_val": best_val,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad,
                    "history": history,
                },
                best_state,
            )
        if stop:
            result.stopped_early = True
            log(f"early stop: no validation improvement for {cfg.patience} epochs")
            break
    model.load_state_dict(best_state)
    result.history, result.best_epoch, result.best_val = history, best_epoch, best_val
    result.seconds = time.perf_counter() - t0
    return result


@torch.no_grad()
def forecast_windows(
    model: TimeDiff,
    x: np.ndarray,
    *,
    n_samples: int,
    device="cpu",
    seed: int = 0,
    batch: int = 256,
    sampler: str | None = None,
    sample_steps: int | None = None,
    eta: float | None = None,
) -> Samples:
    """Samples (S, N, H, C) and the point forecast for lookbacks x (N, L, C); one CPU generator
    seeded once."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    outs, points = [], []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch])).to(device)
        ys, point = model.sample(
            xb,
            n_samples,
            sampler=sampler,
            sample_steps=sample_steps,
            eta=eta,
            generator=gen,
            with_point=True,
        )
        outs.append(ys.float().cpu().numpy())
        points.append(point.float().cpu().numpy())
    return Samples(np.concatenate(outs, axis=1), np.concatenate(points))


def local_scale(samples: np.ndarray) -> np.ndarray:
    """(N, 1, C): a window's own spread, the samples' standard deviation pooled over the
    horizon (root mean of the per-step unbiased variances); 1 for a single sample."""
    if samples.shape[0] < 2:
        return np.ones((samples.shape[1], 1, samples.shape[3]))
    var = samples.astype(np.float64).var(axis=0, ddof=1).mean(axis=1, keepdims=True)
    return np.sqrt(np.maximum(var, 1e-12))


def calibrated(pred: Samples, grid: np.ndarray) -> Empirical:
    """The calibrated predictive: point + local scale x the validation quantiles (M, H, C) of
    the scaled residuals (locally weighted split conformal, Lei et al. 2018)."""
    return Empirical(pred.point, grid, local_scale(pred.samples))


def calibration_grid(model: TimeDiff, prepared: Prepared, cfg, *, device="cpu", seed=0, log=None):
    """The quantiles (M, H, C) of (y - point) / local scale on validation windows only."""
    starts = _val_starts(prepared, cfg, cfg.calibration_windows)
    x, y = gather(prepared.z, starts, cfg.lookback, cfg.horizon)
    if log is not None:
        log(f"calibrating the intervals on {len(x)} validation windows ({cfg.samples} samples)")
    pred = forecast_windows(
        model,
        x,
        n_samples=cfg.samples,
        device=device,
        seed=seed + 999,
        sampler=cfg.sampler,
        sample_steps=cfg.sample_steps,
        eta=cfg.ddim_eta,
    )
    return residual_grid((y - pred.point) / local_scale(pred.samples))


def ar_predictor(prepared: Prepared, cfg: TimeDiffConfig):
    """The AR-init forecaster alone (closed-form, instance-normalised like TimeDiff)."""
    weight, bias = fit_ar(prepared, cfg)

    def predict(x: np.ndarray) -> np.ndarray:
        xn, _ = normalise_windows(x, None, cfg.instance_norm)
        out = apply_linear_map(xn, weight, bias)
        if cfg.instance_norm == "none":
            return out
        mean = x.mean(axis=1, keepdims=True)
        std = (
            np.sqrt(x.var(axis=1, keepdims=True) + 1e-5) if cfg.instance_norm == "meanstd" else 1.0
        )
        return out * std + mean

    return predict


def choose_ar_channels(prepared: Prepared, cfg: TimeDiffConfig, log) -> TimeDiffConfig:
    """--ar-channels auto: shared or individual, whichever AR-init has the lower validation MSE."""
    if cfg.ar_channels != "auto":
        return cfg
    x, y = prepared.windows("val", cfg.lookback, cfg.horizon)
    scores = {}
    for layout in ("shared", "individual"):
        c = dataclasses.replace(cfg, ar_channels=layout)
        scores[layout] = float(np.mean((ar_predictor(prepared, c)(x) - y) ** 2))
    best = min(scores, key=scores.get)
    listed = ", ".join(f"{k}: {v:.4f}" for k, v in scores.items())
    log(f"AR-init layout chosen on validation: {listed} -> {best}")
    return dataclasses.replace(cfg, ar_channels=best)


def choose_lookback(prepared: Prepared, cfg: TimeDiffConfig, log) -> TimeDiffConfig:
    """--lookback 0: the candidate with the lowest validation MSE of the AR-init model."""
    if cfg.lookback > 0:
        return cfg
    best, scores = lookback_on_validation(
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

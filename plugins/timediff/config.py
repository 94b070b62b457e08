"""The one configuration of TimeDiff, and its presets (`tiny`, `small`, `paper`).

Every command-line option of `mltk timediff train` maps onto one field here; a `--config`
TOML file uses the same names. Defaults follow the paper (Shen & Kwok, ICML 2023, Sec. 4 and
App. B) where it states them: K = 100 diffusion steps, linear betas from 1e-4 to 0.1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Optional

from mltk.verbs import option, overrides

DATA, MODEL, DIFFUSION, TRAINING = "Data", "Model", "Diffusion and sampling", "Training"
SAMPLER = Literal["ddpm", "ddim"]


@dataclass
class TimeDiffConfig:
    # data
    data: str = option(
        "etth1",
        "etth1 | etth2 (embedded) or a CSV file (its date column is detected, or named with "
        "--date-col; without one, rows are taken as equally spaced steps).",
        dash=True, suffixes=(".csv",), panel=DATA,
    )  # fmt: skip
    date_col: Optional[str] = option(None, "Date column (default: detected).", panel=DATA)
    target: Optional[tuple[str, ...]] = option(
        None, "Channels to forecast, comma separated (default: every numeric column).", panel=DATA
    )
    split: Literal["auto", "ratio", "ett-hourly", "ett-15min"] = option(
        "auto", "auto: ETT files 12/4/4 months, else 7:1:2 in time order.", panel=DATA
    )
    lookback: int = option(
        336, "History length L; 0 chooses it on the validation split (AR-init model).",
        min=0, max=1_000_000, panel=DATA,
    )  # fmt: skip
    horizon: int = option(168, "Forecast length H.", min=1, max=1_000_000, panel=DATA)
    lookback_candidates: tuple[int, ...] = option(
        (96, 168, 336, 504, 720), "Lookbacks tried when --lookback is 0.", min=1, max=1_000_000,
        panel=DATA,
    )  # fmt: skip
    instance_norm: Literal["none", "mean", "meanstd"] = option(
        "mean", "Per-window normalisation (meanstd: RevIN-style).", panel=DATA
    )
    channel_independent: bool = option(
        False, "One univariate model for every channel, or convolutions across channels.",
        flag="--channel-independent/--channel-mixing", panel=MODEL,
    )  # fmt: skip
    # condition (Sec. 3.2): future mixup and autoregressive initialisation
    future_mixup: bool = option(True, "Ablation switch for future mixup.", panel=MODEL)
    ar_init: bool = option(
        True, "Ablation switch for the autoregressive initialisation.", panel=MODEL
    )
    ar_channels: Literal["auto", "shared", "individual"] = option(
        "auto",
        "AR-init map: shared by the channels (the paper's), one per channel, or auto: "
        "the one with the lower validation MSE.",
        panel=MODEL,
    )
    # L2 penalty of the closed-form AR-init fit per least-squares row (window x channel), so the
    # shrinkage does not depend on how long the series is; 0.018 is the absolute 1e3 that the
    # ETTh1 benchmark used (55,783 rows at lookback 504)
    ar_ridge: float = option(
        0.018, "L2 penalty of the AR-init fit per least-squares row.", min=0, max=1e9, panel=MODEL
    )
    mixup_conv: bool = option(
        False, "The mixup map F is a linear map plus a small conv net (else linear only).",
        panel=MODEL,
    )  # fmt: skip
    # frozen is better on ETTh1/ETTh2 (benchmarks/timediff): a trained F drifts from the fit
    train_mixup_map: bool = option(
        False, "Train F with the diffusion loss, or keep it at the AR-init fit.",
        flag="--train-mixup-map/--freeze-mixup-map", panel=MODEL,
    )  # fmt: skip
    # denoiser (Sec. 3.3)
    hidden: int = option(32, "Width of the denoiser's convolutions.", min=1, max=65536, panel=MODEL)
    step_dim: int = option(64, "Width of the diffusion-step embedding.", min=1, max=65536,
                           panel=MODEL)  # fmt: skip
    encoder_layers: int = option(2, "Convolutions in the encoder.", min=1, max=1000, panel=MODEL)
    decoder_layers: int = option(2, "Convolutions in the decoder.", min=1, max=1000, panel=MODEL)
    kernel: int = option(3, "Convolution kernel size.", min=1, max=1001, panel=MODEL)
    dropout: float = option(0.0, "Dropout in the denoiser.", min=0, below=1, panel=MODEL)
    residual: Literal["mix", "ar", "none"] = option(
        "mix", "The denoiser predicts x0 as a residual on: mix | ar | none.", panel=MODEL
    )
    skip: Literal["gaussian", "none"] = option(
        "gaussian",
        "x0 estimate: gaussian adds the posterior-mean path from x_k (keeps the sample "
        "spread); none: the paper's residual alone.",
        panel=MODEL,
    )
    # diffusion (Sec. 3.1)
    steps: int = option(100, "Diffusion steps K.", min=1, max=100_000, panel=DIFFUSION)
    beta_start: float = option(1e-4, "First beta of the schedule.", above=0, below=1,
                               panel=DIFFUSION)  # fmt: skip
    beta_end: float = option(0.1, "Last beta of the schedule.", above=0, below=1, panel=DIFFUSION)
    schedule: Literal["linear", "cosine"] = option("linear", "Beta schedule.", panel=DIFFUSION)
    # sampling
    sampler: SAMPLER = option("ddim", "ddim | ddpm (ancestral, all K steps).", panel=DIFFUSION)
    sample_steps: int = option(10, "DDIM steps.", min=1, max=100_000, panel=DIFFUSION)
    ddim_eta: float = option(
        1.0, "DDIM noise: 0 deterministic, 1 DDPM-like.", min=0, max=1, panel=DIFFUSION
    )
    samples: int = option(
        8, "Forecasts drawn per window (the calibrated quantiles come from validation "
        "residuals; the samples give each window's spread and point forecast).",
        min=1, max=100_000, panel=DIFFUSION,
    )  # fmt: skip
    point: Literal["denoised", "mean"] = option(
        "denoised",
        "Point forecast: the mean of the first x0 estimates (denoised) or of the samples.",
        panel=DIFFUSION,
    )
    calibrate: bool = option(
        True,
        "Intervals from the validation calibration of the samples (else the raw samples' "
        "quantiles).",
        panel=DIFFUSION,
    )
    calibration_windows: int = option(
        1000,
        "Validation windows sampled for the calibration (evenly spaced).",
        min=16,
        max=10**9,
        panel=DIFFUSION,
    )
    # optimisation
    epochs: int = option(10, "Maximum training epochs.", min=0, max=1_000_000, panel=TRAINING)
    batch_size: int = option(64, "Training batch size.", min=1, max=1_000_000, panel=TRAINING)
    lr: float = option(1e-3, "Adam learning rate.", above=0, panel=TRAINING)
    weight_decay: float = option(0.0, "Adam weight decay.", min=0, max=1e3, panel=TRAINING)
    patience: int = option(
        3, "Early stopping: epochs without validation improvement.", min=0, max=1_000_000,
        panel=TRAINING,
    )  # fmt: skip
    early_stop_on: Literal["mse", "loss"] = option(
        "mse", "mse (forecast MSE on validation windows) | loss (diffusion loss).", panel=TRAINING
    )
    val_windows: int = option(
        256, "Validation windows scored per epoch (evenly spaced).", min=1, max=10**9,
        panel=TRAINING,
    )  # fmt: skip
    max_train_windows: int = option(
        0, "Random training windows per epoch (0 = all).", min=0, max=10**9, panel=TRAINING
    )


PRESETS: dict[str, TimeDiffConfig] = {
    # seconds on a laptop: for tests and the example
    "tiny": TimeDiffConfig(
        lookback=48,
        horizon=24,
        lookback_candidates=(24, 48, 96),
        hidden=8,
        step_dim=16,
        encoder_layers=1,
        decoder_layers=1,
        steps=20,
        sample_steps=5,
        samples=4,
        epochs=1,
        batch_size=32,
        max_train_windows=256,
        val_windows=32,
        early_stop_on="loss",  # one epoch: keep the trained denoiser
    ),
    # minutes on 1-2 CPU cores: the benchmark preset
    "small": TimeDiffConfig(),
    # the paper's width for GPU users
    "paper": TimeDiffConfig(
        hidden=256,
        step_dim=128,
        encoder_layers=3,
        decoder_layers=3,
        samples=32,
        sample_steps=20,
        epochs=20,
        batch_size=64,
        patience=5,
    ),
}


def preset(name: str) -> TimeDiffConfig:
    """A fresh copy of the named preset."""
    return dataclasses.replace(PRESETS[name])


# what eval and forecast may change of a run
SAMPLING = ("sampler", "sample_steps", "ddim_eta", "samples", "point", "calibrate")


@dataclass
class ForecastConfig(TimeDiffConfig):
    quantiles: tuple[float, ...] = option(
        (0.05, 0.5, 0.95), "Quantile columns, e.g. 0.05,0.5,0.95.", above=0, below=1
    )
    cutoff: Optional[str] = option(
        None,
        "Forecast from this date (or row number) inside the data instead of after its end; "
        "the plot then draws the truth.",
    )
    plot_channels: Optional[tuple[str, ...]] = option(
        None, "Channels to plot, comma separated (default: the first 8)."
    )


@dataclass
class EvalConfig(overrides(TimeDiffConfig, ("data", "date_col", "target", "split", *SAMPLING))):
    dlinear_seeds: int = option(3, "DLinear baselines trained (seeds 0..N-1).", min=0, max=100)
    baselines: bool = option(True, "Score the baselines too (--no-baselines: TimeDiff only).")


def check(cfg: TimeDiffConfig) -> None:
    """What the field declarations cannot say alone (exit 2, one sentence)."""
    from mltk.errors import UsageError

    if cfg.sampler == "ddim" and cfg.sample_steps > cfg.steps:
        raise UsageError(
            f"--sample-steps {cfg.sample_steps} must not exceed the diffusion steps "
            f"(--steps {cfg.steps})"
        )
    if not cfg.beta_start < cfg.beta_end:
        raise UsageError(f"--beta-start {cfg.beta_start} must be below --beta-end {cfg.beta_end}")
    if cfg.target is not None and len(set(cfg.target)) < len(cfg.target):
        twice = sorted({t for t in cfg.target if cfg.target.count(t) > 1})
        raise UsageError(f"--target names {twice[0]!r} more than once")

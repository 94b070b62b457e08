"""The one configuration of TimeDiff, and its presets (`tiny`, `small`, `paper`).

Every command-line option of `mltk timediff train` maps onto one field here; a `--config`
TOML file uses the same names. Defaults follow the paper (Shen & Kwok, ICML 2023, Sec. 4 and
App. B) where it states them: K = 100 diffusion steps, linear betas from 1e-4 to 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass
class TimeDiffConfig:
    # data
    lookback: int = 336  # L: history length fed to the model (0 = choose on validation)
    horizon: int = 168  # H: forecast length
    lookback_candidates: tuple[int, ...] = (96, 168, 336, 504, 720)  # tried when lookback == 0
    instance_norm: str = "mean"  # per-window normalisation: none | mean | meanstd (RevIN-style)
    channel_independent: bool = False  # True: one univariate model shared by all channels
    # condition (Sec. 3.2): future mixup and autoregressive initialisation
    future_mixup: bool = True
    ar_init: bool = True
    # L2 penalty of the closed-form AR-init fit per least-squares row (window x channel), so the
    # shrinkage does not depend on how long the series is; 0.018 is the absolute 1e3 that the
    # ETTh1 benchmark used (55,783 rows at lookback 504)
    ar_ridge: float = 0.018
    mixup_conv: bool = False  # F = linear map plus a small conv net (else linear only)
    # False: F stays at the AR-init fit (with ar_init), True: the diffusion loss trains F too.
    # Frozen is better on ETTh1/ETTh2 (benchmarks/timediff): a trained F drifts from the fit.
    train_mixup_map: bool = False
    # denoiser (Sec. 3.3)
    hidden: int = 32  # channels of the projection / encoder / decoder convolutions
    step_dim: int = 64  # width of the diffusion-step embedding
    encoder_layers: int = 2
    decoder_layers: int = 2
    kernel: int = 3
    dropout: float = 0.0
    residual: str = "mix"  # the denoiser predicts x0 as residual on: mix | ar | none
    # diffusion (Sec. 3.1)
    steps: int = 100  # K
    beta_start: float = 1e-4
    beta_end: float = 0.1
    schedule: str = "linear"  # linear | cosine
    # sampling
    sampler: str = "ddim"  # ddpm (ancestral, all K steps) | ddim
    sample_steps: int = 10  # DDIM steps
    ddim_eta: float = 1.0  # 0: deterministic DDIM, 1: DDPM-like stochastic steps
    samples: int = 8  # forecasts drawn per window; the point forecast is their mean
    # optimisation
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 3  # early stopping: epochs without validation improvement
    early_stop_on: str = "mse"  # mse: forecast MSE on validation windows | loss: diffusion loss
    val_windows: int = 256  # validation windows scored per epoch (evenly spaced)
    max_train_windows: int = 0  # 0 = all; else a random subset per epoch (CPU budgets)
    num_workers: int = 0


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
    from mltk.errors import UsageError

    if name not in PRESETS:
        raise UsageError(f"--preset {name!r} is not known; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name])


CHOICES = {
    "instance_norm": ("none", "mean", "meanstd"),
    "residual": ("mix", "ar", "none"),
    "schedule": ("linear", "cosine"),
    "sampler": ("ddpm", "ddim"),
    "early_stop_on": ("mse", "loss"),
}
AT_LEAST_ONE = (
    "horizon", "hidden", "step_dim", "encoder_layers", "decoder_layers", "kernel", "steps",
    "sample_steps", "samples", "epochs", "batch_size", "val_windows",
)  # fmt: skip
NON_NEGATIVE = (
    "lookback",
    "patience",
    "max_train_windows",
    "num_workers",
    "weight_decay",
    "ar_ridge",
)


def validate(cfg: TimeDiffConfig) -> TimeDiffConfig:
    """Every field within its range, each violation one sentence (exit 2)."""
    from mltk.errors import UsageError

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise UsageError(
                f"{flag(name)} {getattr(cfg, name)!r} is not one of {', '.join(allowed)}"
            )
    for name in AT_LEAST_ONE:
        if getattr(cfg, name) < 1:
            raise UsageError(f"{flag(name)} {getattr(cfg, name)} must be at least 1")
    for name in NON_NEGATIVE:
        if getattr(cfg, name) < 0:
            raise UsageError(f"{flag(name)} {getattr(cfg, name)} must not be negative")
    if not cfg.lr > 0:
        raise UsageError(f"--lr {cfg.lr} must be positive")
    if cfg.sampler == "ddim" and cfg.sample_steps > cfg.steps:
        raise UsageError(
            f"--sample-steps {cfg.sample_steps} must not exceed the diffusion steps "
            f"(--steps {cfg.steps})"
        )
    if not 0 <= cfg.dropout < 1:
        raise UsageError(f"--dropout {cfg.dropout} must be in [0, 1)")
    if not 0 <= cfg.ddim_eta <= 1:
        raise UsageError(f"--ddim-eta {cfg.ddim_eta} must be in [0, 1]")
    if not 0 < cfg.beta_start < cfg.beta_end < 1:
        raise UsageError(
            f"--beta-start {cfg.beta_start} and --beta-end {cfg.beta_end} must satisfy "
            "0 < start < end < 1"
        )
    if any(lb < 1 for lb in cfg.lookback_candidates):
        raise UsageError("every lookback candidate must be at least 1")
    return cfg

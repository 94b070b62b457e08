"""The one configuration of `mltk tensor`, and its presets (named instances, written down here)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass
class TensorConfig:
    # data
    data: str = (
        "astronaut"  # embedded image name, image file, .npy/.npz, or .csv/.parquet coordinates
    )
    mask: str = ""  # optional .npy/.npz boolean mask (True = observed) for a .npy/.npz tensor
    shape: str = ""  # "I,J,K" for a coordinate file (default: largest coordinate + 1)
    observed: float = 0.0  # fraction of entries to sample as observed; 0 = auto (0.2 for images)
    size: int = 256  # images: longest side after downscaling (0 = keep the original size)
    val_fraction: float = 0.1  # held out of the observed entries for the lambda search
    test_fraction: float = 0.1  # held out of the observed entries when the truth is unknown
    # model
    penalty: str = "lsp"  # nuclear | capped-l1 | lsp | tnn | scad | mcp
    # per-mode weight lambda_d in the objective; 0 = choose on validation
    lam: float = field(default=0.0, metadata={"flag": "--lambda"})
    theta: float = 0.0  # penalty shape parameter; 0 = the default rule (see continuation.theta_for)
    max_rank: int = 100  # cap on the rank kept per mode (also capped by the mode's size)
    # solver
    solver: str = "nort"  # nort | dense (proximal average, full SVDs) | convex (ADMM, nuclear norm)
    momentum: str = "adaptive"  # adaptive (JMLR) | restart (reference code) | none
    max_iter: int = 300  # iterations of the final stage
    tol: float = 1e-5  # stop when the objective changes by less than this (relative)
    power_iters: int = 1  # block power iterations per mode and step (warm started)
    final_power_iters: int = 2  # the same, in the final stage (the one run to convergence)
    path_steps: int = 15  # lambda path length (each stage warm-starts the next)
    path_ratio: float = 0.7  # geometric shrink factor of the path
    stage_iters: int = 20  # iterations per path stage
    dtype: str = "float32"  # float32 | float64


PRESETS: dict[str, TensorConfig] = {
    # the Quick start: a 256-pixel photograph, done in seconds on a laptop CPU
    "quick": TensorConfig(),
    # full-resolution images, longer path and stages
    "full": TensorConfig(size=0, path_steps=25, stage_iters=40, max_iter=500),
    # the paper's synthetic setting: float64, rank caps at the true rank, tight tolerance
    "paper": TensorConfig(dtype="float64", max_rank=5, tol=1e-6, max_iter=2000),
}


def preset(name: str) -> TensorConfig:
    from mltk.errors import UsageError

    if name not in PRESETS:
        raise UsageError(f"--preset {name!r} is not one of {', '.join(PRESETS)}")
    return replace(PRESETS[name])

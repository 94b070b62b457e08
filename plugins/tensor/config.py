"""The configuration of `mltk tensor`, and its presets (named instances, written down here).

Every field is a command-line option (`option(...)` gives its help and range) and a TOML key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mltk.verbs import option

PENALTIES = Literal["nuclear", "capped-l1", "lsp", "tnn", "scad", "mcp"]
DATA, MODEL, SOLVER = "Data", "Model", "Solver"


@dataclass
class TensorConfig:
    data: str = option(
        "astronaut",
        "astronaut | coffee | chelsea | rocket | hubble_deep_field | retina (photographs shipped "
        "with scikit-image), an image file, a .npy/.npz array, or a .csv/.parquet file of "
        "i,j,k,...,value rows.",
        dash=True, suffixes=(".csv",), panel=DATA,
    )  # fmt: skip
    mask: Optional[Path] = option(
        None, ".npy/.npz boolean mask (True = observed) for a .npy/.npz tensor.", path="file",
        panel=DATA,
    )  # fmt: skip
    shape: Optional[tuple[int, ...]] = option(
        None, "Shape for a coordinate file, e.g. 100,200,50 (default: largest index + 1).",
        min=1, max=2**40, panel=DATA,
    )  # fmt: skip
    observed: Optional[float] = option(
        None, "Sample this fraction of a complete tensor as observed (images: 0.2).",
        above=0, max=1, panel=DATA,
    )  # fmt: skip
    size: int = option(
        256, "Images: longest side in pixels after downscaling (0 = the original size).",
        min=0, max=65536, panel=DATA,
    )  # fmt: skip
    val_fraction: float = option(
        0.1, "Observed share held out for the lambda search.", min=0, below=1, panel=DATA
    )
    test_fraction: float = option(
        0.1, "Observed share held out for testing when the truth is unknown.", min=0, below=1,
        panel=DATA,
    )  # fmt: skip
    penalty: PENALTIES = option("lsp", "Nonconvex penalty on the singular values.", panel=MODEL)
    lam: float = option(
        0.0, "Per-mode weight lambda_d (threshold = sum_d lambda_d); 0 = chosen on validation.",
        flag="--lambda", min=0, max=1e12, panel=MODEL,
    )  # fmt: skip
    lambda_search: bool = option(
        False, "Choose lambda on the validation entries (the default without --lambda).",
        flag="--lambda-search", panel=MODEL,
    )  # fmt: skip
    theta: float = option(
        0.0, "Penalty parameter theta (0 = the default rule).", min=0, max=1e12, panel=MODEL
    )
    max_rank: int = option(
        100,
        "Starting rank cap per mode (doubled when a rank reaches it).",
        min=1,
        max=100_000,
        panel=MODEL,
    )
    grow_rank: bool = option(
        True,
        "A rank that reaches its cap doubles the cap (up to the mode's size), or keeps it and "
        "warns.",
        flag="--grow-rank/--fixed-rank-cap",
        panel=MODEL,
    )
    refit: bool = option(
        True,
        "After the lambda search, refit on every observed entry (validation ones too) at the "
        "chosen setting.",
        panel=MODEL,
    )
    fine_search: bool = option(
        True,
        "Try the lambdas half a path step either side of the validation minimum.",
        panel=SOLVER,
    )
    early_stop: bool = option(
        True,
        "Stop the refinement at the chosen lambda once validation has risen for three checks "
        "in a row (such a run ends worse than its stage, which is kept).",
        panel=SOLVER,
    )
    theta_search: Literal["one-path", "paths"] = option(
        "one-path",
        "capped-l1 without --theta: try theta multiples 1, 2, 4 at the chosen lambda of one "
        "path (one-path), or walk one path per multiple (paths).",
        panel=SOLVER,
    )
    solver: Literal["nort", "dense", "convex"] = option(
        "nort", "nort, or the dense references: dense (proximal average, full SVDs) and "
        "convex (ADMM, nuclear norm).", panel=SOLVER,
    )  # fmt: skip
    momentum: Literal["adaptive", "restart", "none"] = option(
        "adaptive", "adaptive (the JMLR paper) | restart (the authors' code) | none.", panel=SOLVER
    )
    max_iter: int = option(300, "Iterations of the final stage.", min=1, max=10**7, panel=SOLVER)
    tol: float = option(
        1e-5, "Relative objective change that stops a stage.", min=0, below=1, panel=SOLVER
    )
    power_iters: int = option(
        0,
        "Power iterations per mode and step in the path's stages (0: 2, or 1 for capped-l1).",
        min=0,
        max=100,
        panel=SOLVER,
    )
    final_power_iters: int = option(
        2, "Power iterations per mode and step in the final stage.", min=1, max=100, panel=SOLVER
    )
    path_steps: int = option(15, "Length of the lambda path.", min=1, max=10_000, panel=SOLVER)
    path_ratio: float = option(
        0.7, "Shrink factor between path stages.", above=0, below=1, panel=SOLVER
    )
    stage_iters: int = option(20, "Iterations per path stage.", min=1, max=10**6, panel=SOLVER)
    precision: Literal["auto", "fp32", "fp64"] = option(
        "auto", "Arithmetic: fp32 or fp64 (auto: fp32).", panel="Common options"
    )


PRESETS: dict[str, TensorConfig] = {
    # the Quick start: a 256-pixel photograph, done in seconds on a laptop CPU
    "quick": TensorConfig(),
    # full-resolution images, longer path and stages
    "full": TensorConfig(size=0, path_steps=25, stage_iters=40, max_iter=500),
    # the paper's synthetic setting: float64, rank caps at the true rank, tight tolerance
    "paper": TensorConfig(precision="fp64", max_rank=5, tol=1e-6, max_iter=2000),
}


def check(cfg: TensorConfig) -> None:
    """What the field declarations cannot say alone."""
    from mltk.errors import UsageError

    if cfg.mask is not None and not str(cfg.data).lower().endswith((".npy", ".npz")):
        raise UsageError(f"--mask marks the observed entries of a .npy/.npz tensor; "
                         f"--data {cfg.data} is not one")  # fmt: skip
    if cfg.shape is not None and not str(cfg.data).lower().endswith((".csv", ".parquet", ".pq")):
        raise UsageError(f"--shape sizes a coordinate file (.csv/.parquet); --data {cfg.data} "
                         "is not one")  # fmt: skip
    if cfg.lambda_search and cfg.lam:
        raise UsageError(
            "--lambda-search chooses lambda itself; drop --lambda (or --lambda-search)"
        )
    if cfg.theta > 0:
        from .penalties import check_theta

        try:
            check_theta(cfg.penalty, cfg.theta)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc


@dataclass
class EvalConfig:
    pass


@dataclass
class PredictConfig:
    coords: Optional[str] = option(
        None, "CSV of integer coordinates, one column per mode (default: the dense tensor).",
        path="file", dash=True, suffixes=(".csv",),
    )  # fmt: skip
    output: Optional[Path] = option(
        None, "Write the values here: .csv (coordinates and value) or .npy (the values, or "
        "the dense tensor).", path="output", suffixes=(".csv", ".npy"), dash=True,
    )  # fmt: skip

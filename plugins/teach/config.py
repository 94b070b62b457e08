"""The configuration of `mltk teach` (stdlib only: imported by the CLI).

Values left at None take the problem's default, which the run's config.json records once
resolved: toy1d teaches with the paper's eta 0.01, eps 1e-4 and h 0.5; images with h = 1 pixel,
eta = 1/4 (the largest step the paper's theory allows for the square loss and an RBF kernel) and
eps 1e-3 (photographs) or 5% of the initial loss (faces, digits, files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mltk.verbs import option

DATA, LEARNER, TEACHING = "Data", "Learner", "Teaching"
KERNELS = Literal["rbf", "laplace", "linear", "polynomial"]


@dataclass
class TeachConfig:
    # --- the problem ---
    data: str = option(
        "toy1d",
        "toy1d | camera | chelsea | coffee | astronaut | faces | digits, an image, a "
        ".npy curve or grid, or a CSV of x1,...,xd,y samples.",
        panel=DATA,
    )
    f0: str = option(
        "auto",
        "The learner's start: auto (the problem's), zero, an expression in x (x1, x2: row "
        "and column on images), or a file like the data.",
        panel=DATA,
    )
    target_alt: Optional[str] = option(
        None,
        "The noisy teacher's alternative target (expression or file; toy1d and digits have one).",
        panel=DATA,
    )
    size: Optional[int] = option(
        None,
        "Images: longest side in pixels (default: 64 for photographs, native for faces "
        "and digits; 0 = the original size).",
        min=0,
        max=65536,
        panel=DATA,
    )
    face: int = option(0, "faces: the target face (0-99).", min=0, max=99, panel=DATA)
    start_face: int = option(
        1, "faces: the face the learner starts from.", min=0, max=99, panel=DATA
    )
    # --- the learner: functional gradient descent in an RKHS ---
    kernel: KERNELS = option("rbf", "K(x, x').", panel=LEARNER)
    bandwidth: Optional[float] = option(
        None,
        "h in exp(-|x - x'|^2 / h^2) (input units; pixels are unit steps; default: 0.5 "
        "on toy1d, 1 elsewhere).",
        above=0,
        max=1e12,
        panel=LEARNER,
    )
    degree: int = option(
        2, "Polynomial kernel: (x.x'/h^2 + c)^degree.", min=1, max=20, panel=LEARNER
    )
    coef0: float = option(1.0, "Polynomial kernel: c.", min=0, max=1e12, panel=LEARNER)
    loss: Literal["square", "hinge", "logistic"] = option(
        "square", "square, or hinge / logistic for targets of -1 and +1.", panel=LEARNER
    )
    eta: Optional[float] = option(
        None,
        "Step size (default: 0.01 on toy1d, else the theory's bound 1/(2 L M_K)).",
        above=0,
        max=1e6,
        panel=LEARNER,
    )
    aggregate: Literal["mean", "sum"] = option(
        "mean", "The pack's gradients: mean (the notebooks) or sum.", panel=LEARNER
    )
    support: Literal["auto", "dense", "truncated"] = option(
        "auto",
        "Kernel on image grids: truncated stencil (the CPU's fast path) or dense (every "
        "pixel each step; the GPU's); auto picks.",
        panel=LEARNER,
    )
    # --- the teacher and when to stop ---
    teacher: str = option(
        "gft-1",
        "gft | rft | whole | pool-gft | alt-gft, with -K for K examples per step (a "
        "count, or a fraction of the pool: rft-0.05).",
        panel=TEACHING,
    )
    k: float = option(1, "K for a teacher named without one.", above=0, max=1e9, panel=TEACHING)
    rule: Literal["auto", "residual", "exact"] = option(
        "auto",
        "GFT's argmax: residual |f - f*| (the paper's simplification), exact "
        "|dL/df| sqrt(K(x,x)); auto: exact where K(x,x) varies or the loss is not square.",
        panel=TEACHING,
    )
    pool_fraction: float = option(
        0.8, "pool-gft: the fixed share of the pool it searches.", above=0, max=1, panel=TEACHING
    )
    alt_probability: float = option(
        0.2, "alt-gft: chance a step's labels are the alternative.", min=0, max=1, panel=TEACHING
    )
    eps: Optional[float] = option(
        None,
        "Stop once ||f - f*||_2 / N < eps (default: 1e-4 on toy1d, 1e-3 on photographs).",
        above=0,
        max=1e12,
        panel=TEACHING,
    )
    eps_rel: Optional[float] = option(
        None,
        "eps as a fraction of the initial loss (default for faces, digits and files: 0.05).",
        above=0,
        below=1,
        panel=TEACHING,
    )
    max_iter: int = option(20_000, "T: the most steps.", min=1, max=10**9, panel=TEACHING)
    snapshots: Optional[tuple[int, ...]] = option(
        None,
        "Steps drawn in the snapshot picture (default: the paper's 0,150,450,1000,2000,3000 "
        "on toy1d).",
        min=0,
        max=10**9,
        panel=TEACHING,
    )
    log_every: int = option(100, "Log the loss every N steps.", min=1, max=10**9, panel=TEACHING)
    precision: Literal["fp64", "fp32"] = option(
        "fp64",
        "Arithmetic of the dense path (the truncated grid path is always fp64).",
        panel="Common options",
    )


@dataclass
class RunConfig(TeachConfig):
    teacher: tuple[str, ...] = option(
        ("gft", "rft", "whole"),
        "Teachers to compare: gft | rft | whole | pool-gft | alt-gft, "
        "each with an optional -K (gft-1, rft-0.05).",
        panel=TEACHING,
    )
    seeds: int = option(
        1,
        "Seeds for each random teacher (rft, pool-gft, alt-gft).",
        min=1,
        max=10_000,
        panel=TEACHING,
    )


@dataclass
class EvalConfig:
    target: Optional[str] = option(
        None,
        "Score against this target instead of the run's own (an expression or a file "
        "like the data, on the run's pool).",
    )
    eps: Optional[float] = option(
        None, "ITD to this eps instead of the run's (from its loss curve).", above=0, max=1e12
    )


@dataclass
class PredictConfig:
    points: Optional[Path] = option(
        None,
        "CSV of inputs x1,...,xd (a y column is ignored; default: the whole pool).",
        path="file",
        suffixes=(".csv",),
    )
    output: Optional[Path] = option(
        None,
        "Write the values here too: .csv, .npy, or .png for an image.",
        path="output",
        suffixes=(".csv", ".npy", ".png"),
    )


def check(cfg: TeachConfig) -> None:
    """What the field declarations cannot say alone."""
    from mltk.errors import UsageError

    if cfg.eps is not None and cfg.eps_rel is not None:
        raise UsageError("give --eps or --eps-rel, not both")
    if cfg.face == cfg.start_face and cfg.data == "faces":
        raise UsageError(f"--face and --start-face are both {cfg.face}: nothing to teach")

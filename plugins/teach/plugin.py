"""`mltk teach`: nonparametric iterative machine teaching (RFT / GFT, ICML 2023, arXiv:2306.03007).

Imported on every `mltk` call: only the standard library and light core modules at the top;
numpy, torch and the method are imported inside the verbs.
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import EvalConfig, PredictConfig, RunConfig, TeachConfig, check

plugin = Plugin(
    "teach",
    help="Teach a target function to a kernel learner with as few examples as possible: greedy "
    "(GFT) and random (RFT) functional teachers, their iterative teaching dimension and the "
    "theory's greedy ratio.",
    summary="Nonparametric iterative machine teaching (RFT / GFT, ICML 2023).",
)


@plugin.verb(
    config=RunConfig,
    run="new",
    check=check,
    examples=[
        "mltk teach run",
        "mltk teach run --teacher gft-1,rft-1,whole --seeds 5",
        "mltk teach run --data chelsea --teacher gft,rft --seeds 3",
        "mltk teach run --data photo.png --eps-rel 0.05",
    ],
)
def run(cfg: RunConfig, rt) -> dict:
    """Teach one target with several teachers; prints each one's iterative teaching dimension
    (ITD: steps to loss < eps) and the RFT/GFT ratio beside the theory's 1/mean(gamma).

    Writes the loss curves (CSV, log-scale PNG), snapshots of f^t and each teacher's teaching
    sequence. With no options: the paper's 1-D toy with GFT-1, RFT-1 and the whole pool.
    """
    from .commands import run_teach

    return run_teach(cfg, rt)


@plugin.verb(
    config=TeachConfig,
    run="new",
    check=check,
    examples=[
        "mltk teach train --teacher gft-1 --out runs/toy",
        "mltk teach train --data samples.csv --f0 zero --eps-rel 0.01",
    ],
)
def train(cfg: TeachConfig, rt) -> dict:
    """Teach with one teacher and save the taught learner (its kernel expansion) in a run folder."""
    from .commands import run_train

    return run_train(cfg, rt)


@plugin.verb(
    config=EvalConfig,
    name="eval",
    run="read+",
    examples=[
        "mltk teach eval runs/teach/gft runs/teach/rft",
        "mltk teach eval runs/toy --target 'normal(x, -2)' --eps 1e-3",
    ],
)
def eval_(cfg: EvalConfig, rt) -> dict:
    """Final loss, ITD and teaching-set size of each run, against its own target or another."""
    from .commands import run_eval

    return run_eval(cfg, rt)


@plugin.verb(
    config=PredictConfig,
    run="read",
    output=True,
    examples=[
        "mltk teach predict runs/toy --points grid.csv --output f.csv",
        "mltk teach predict runs/chelsea --output chelsea.png",
    ],
)
def predict(cfg: PredictConfig, rt) -> dict:
    """The taught function: on its pool (the image or the curve), or at the points of a CSV."""
    from .commands import run_predict

    return run_predict(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("teach", plugin)

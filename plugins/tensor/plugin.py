"""`mltk tensor`: nonconvex low-rank tensor completion (NORT, JMLR 2022, arXiv:2205.03059).

Imported on every `mltk` call: only the standard library and light core modules at the top;
torch, numpy and the method are imported inside the verbs.
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import PRESETS, EvalConfig, PredictConfig, TensorConfig, check

plugin = Plugin(
    "tensor",
    help="Fill in the missing entries of a tensor (image, video, array, coordinate list) with "
    "NORT: nonconvex overlapped low-rank regularisation solved without dense tensors.",
    summary="Low-rank tensor completion with NORT (JMLR 2022).",
)
FIT = dict(config=TensorConfig, presets=PRESETS, run="new", check=check)


@plugin.verb(**FIT, examples=[
    "mltk tensor complete --data coffee --observed 0.1 --penalty capped-l1",
    "mltk tensor complete --data photo.png --size 0",
    "mltk tensor complete --data ratings.csv --shape 5000,3000,52",
])  # fmt: skip
def complete(cfg: TensorConfig, rt) -> dict:
    """Fill in the missing entries: fit, then write the completed tensor and pictures.

    Prints the test RMSE; writes the completed tensor, a before/after picture for images and the
    convergence curve. With no options: astronaut with 20% of its pixels observed.
    """
    from .commands import run_fit

    return run_fit(cfg, rt, write_dense=True)


@plugin.verb(**FIT, examples=["mltk tensor train --data cube.npz --out runs/cube"])
def train(cfg: TensorConfig, rt) -> dict:
    """Fit and save the low-rank factors in a run folder (no dense tensor written)."""
    from .commands import run_fit

    return run_fit(cfg, rt, write_dense=False)


@plugin.verb(config=EvalConfig, name="eval", run="read", examples=["mltk tensor eval runs/cube"])
def eval_(cfg: EvalConfig, rt) -> dict:
    """RMSE, MAE and PSNR on the run's held-out test entries (the split is rebuilt from its seed)."""
    from .commands import run_eval

    return run_eval(rt)


@plugin.verb(config=PredictConfig, run="read", examples=[
    "mltk tensor predict runs/cube --coords query.csv --output values.csv",
    "mltk tensor predict runs/cube --output completed.npy",
])  # fmt: skip
def predict(cfg: PredictConfig, rt) -> dict | None:
    """Values at given coordinates, or the whole completed tensor when it fits in memory."""
    from .commands import run_predict

    return run_predict(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("tensor", plugin)


@hookimpl
def mltk_register_datasets(register):
    # the names of data.EMBEDDED_IMAGES (not imported: data.py pulls in numpy)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina"):
        register(
            name,
            loader="mltk_plugins.tensor.data:load_image",
            description=f"scikit-image's {name} photograph (H x W x 3, values in [0, 1])",
            embedded=True,
        )

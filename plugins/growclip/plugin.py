"""`mltk growclip`: growing a CLIP model as its data arrives (GrowCLIP, arXiv:2308.11331).

Imported on every `mltk` call: only the standard library and light core modules here; torch and
transformers are imported inside the verbs (see commands.py).
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import (
    PRESETS,
    TRAIN_PRESETS,
    EvalConfig,
    GrowConfig,
    PredictConfig,
    TrainConfig,
    check_grow,
    check_train,
)

plugin = Plugin(
    "growclip",
    help="GrowCLIP: grow a CLIP model (transformers' CLIPModel) at each arrival of image-text "
    "data instead of retraining a bigger one: depth, width and a shared encoder searched per "
    "arrival under a parameter budget that grows with the data, function-preserving growth, "
    "and parameter inheriting with momentum. Runs hold Hugging Face CLIP folders.",
    summary="Growing CLIP models as data arrives (GrowCLIP, 2308.11331)",
)


def _open(name):
    from .commands import open_source

    return open_source(name)


@plugin.verb(
    config=GrowConfig,
    presets=PRESETS,
    default_preset="small",
    run="new",
    resume=("arrivals",),
    distributed=True,
    check=check_grow,
    examples=[
        "mltk growclip grow --preset tiny",
        "mltk growclip grow --arrivals 3 --out runs/grow",
        "mltk growclip grow --init runs/grow --out runs/grow4",
        "mltk growclip grow --init runs/step2 --data shard3.jsonl --device cuda --precision bf16",
        "mltk growclip grow --arrivals 3 --schedule depth+1,width2",
    ],
)
def grow(cfg: GrowConfig, rt) -> dict:
    """One arrival (or --arrivals of the embedded stream): search the growths the data allows,
    grow, inherit, train; writes a run whose model/ loads with CLIPModel.from_pretrained."""
    from .commands import run_arrivals

    return run_arrivals(cfg, rt, grow=True)


@plugin.verb(
    config=TrainConfig,
    presets=TRAIN_PRESETS,
    default_preset="small",
    run="new",
    resume=("arrivals",),
    distributed=True,
    check=check_train,
    examples=[
        "mltk growclip train --arrivals 3",
        "mltk growclip train --width 64 --layers 3 --data pairs.jsonl",
    ],
)
def train(cfg: TrainConfig, rt) -> dict:
    """A fixed architecture trained on each arrival in turn (the baseline growth is measured
    against)."""
    from .commands import run_arrivals

    return run_arrivals(cfg, rt, grow=False)


@plugin.verb(
    config=EvalConfig,
    name="eval",
    run="read+",
    open_run=_open,
    examples=[
        "mltk growclip eval runs/grow runs/fixed",
        "mltk growclip eval ./clip-folder --eval-images ./classes",
    ],
)
def eval_(cfg: EvalConfig, rt) -> dict:
    """Zero-shot top-1 per task, retrieval R@1/5 both ways, parameters, GFLOPs per pair and
    the run's cumulative training FLOPs; one row per run or CLIP folder."""
    from .commands import run_eval

    return run_eval(cfg, rt)


@plugin.verb(
    config=PredictConfig,
    run="read",
    open_run=_open,
    examples=[
        "mltk growclip predict runs/grow photo.png",
        "mltk growclip predict runs/grow images/ --classes cat,dog --embeddings emb.npy",
    ],
)
def predict(cfg: PredictConfig, rt) -> dict:
    """Zero-shot labels (and optionally image embeddings) for an image or a folder."""
    from .commands import run_predict

    return run_predict(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("growclip", plugin)

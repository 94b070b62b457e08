"""`mltk epic`: per image-token consistency for vision-language pre-training (EPIC,
arXiv:2211.15398) on an ALBEF-style model.

Imported on every `mltk` call: only the standard library and light core modules here; torch and
transformers are imported inside the verbs (see commands.py).
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import PRESETS, CheckConfig, EvalConfig, PredictConfig, TrainConfig, check_train

plugin = Plugin(
    "epic",
    help="EPIC: pre-train an ALBEF-style image-text model (transformers' ViT, BERT and BLIP "
    "fusion) with ITC, ITM and MLM, plus EPIC's objective: the words most salient to the "
    "image are replaced by a small language model's samples and the model learns to say, word "
    "by word, whether the caption agrees with the image. Runs hold Hugging Face folders.",
    summary="Per-token image-text consistency for pre-training (EPIC, 2211.15398)",
)


def _open(name):
    from .commands import open_source

    return open_source(name)


@plugin.verb(
    config=TrainConfig,
    presets=PRESETS,
    default_preset="small",
    run="new",
    resume=("steps",),
    distributed=True,
    check=check_train,
    examples=[
        "mltk epic train --preset tiny",
        "mltk epic train --objective albef --out runs/albef",
        "mltk epic train --data pairs.jsonl --eval-data test.jsonl",
        "mltk epic train --preset base --data cc3m.jsonl --vision-init ./vit-base "
        "--text-init ./bert-base --device cuda --precision bf16",
    ],
)
def train(cfg: TrainConfig, rt) -> dict:
    """Pre-train with --objective (epic by default); writes a run whose model/ holds the towers
    as Hugging Face folders, and scores it (eval's measures)."""
    from .commands import run_train

    return run_train(cfg, rt)


@plugin.verb(
    config=EvalConfig,
    name="eval",
    run="read+",
    open_run=_open,
    examples=[
        "mltk epic eval runs/epic runs/albef",
        "mltk epic eval runs/epic --eval-data test.jsonl",
    ],
)
def eval_(cfg: EvalConfig, rt) -> dict:
    """Retrieval R@1/5/10 both ways (ITC then ITM re-ranking), ITM accuracy on hard negatives,
    visual reliance of masked-word prediction and per-token inconsistency AUC (world)."""
    from .commands import run_eval

    return run_eval(cfg, rt)


@plugin.verb(
    config=PredictConfig,
    run="read",
    open_run=_open,
    examples=[
        "mltk epic predict runs/epic pairs.jsonl",
        "mltk epic predict runs/epic captions/ --threshold 0.3 --json",
    ],
)
def predict(cfg: PredictConfig, rt) -> dict:
    """Per pair: the image-text match probability and the words the model finds inconsistent
    with the image."""
    from .commands import run_predict

    return run_predict(cfg, rt)


@plugin.verb(
    config=CheckConfig,
    examples=[
        'mltk epic check world:17 "a blue circle in the top left"',
        'mltk epic check photo.png "two dogs on a red sofa" --model runs/epic',
    ],
)
def check(cfg: CheckConfig, rt) -> dict:
    """Word by word: how consistent each word of a caption is with an image, and the image-text
    match probability."""
    from .commands import run_check

    return run_check(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("epic", plugin)

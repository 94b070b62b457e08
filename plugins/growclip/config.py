"""The configuration of `mltk growclip` (stdlib only: imported by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mltk.errors import UsageError
from mltk.verbs import option

DATA, MODEL, GROWTH, TRAINING, EVAL = "Data", "Model", "Growth", "Training", "Evaluation"
EMBEDDED = ("world", "digits")


@dataclass
class TrainConfig:
    # --- the data ---
    data: str = option(
        "world",
        "world (the shapes world as a stream of chunks) | digits, or one arrival of your own: a "
        "folder of name.png + name.txt, or a JSONL file of {image, caption}.",
        panel=DATA,
    )
    arrivals: int = option(
        1,
        "Embedded data: arrivals of the stream to train on, one after another.",
        min=1,
        max=10,
        panel=DATA,
    )
    first_chunk: int = option(
        1500,
        "World: pairs in the first arrival; each next one has 3 times as many.",
        min=16,
        max=10_000_000,
        panel=DATA,
    )
    curriculum: bool = option(
        True,
        "World: the first arrival holds single shapes, the second adds pairs, the third "
        "counts (later data needs more capacity).",
        panel=DATA,
    )
    init: Optional[Path] = option(
        None,
        "Start from a growclip run (its stream goes on) or a Hugging Face CLIP folder.",
        path="dir",
        panel=DATA,
    )
    eval_images: Optional[Path] = option(
        None,
        "Zero-shot classes for the search and eval: a folder with one sub-folder of images per "
        "class (default: the data's own tasks).",
        path="dir",
        panel=DATA,
    )
    eval_classes: tuple[str, ...] = option(
        (),
        "Class names for --eval-images prompts (default: the sub-folders' names).",
        allow_empty=True,
        panel=DATA,
    )
    # --- a new model (without --init) ---
    width: int = option(32, "Width of both towers.", min=8, max=8192, panel=MODEL)
    layers: int = option(2, "Layers of each tower.", min=1, max=96, panel=MODEL)
    heads: int = option(
        2, "Attention heads (the head size stays as growth widens).", min=1, max=128, panel=MODEL
    )
    patch: int = option(4, "Patch size of the vision tower.", min=1, max=64, panel=MODEL)
    image_size: int = option(32, "Image side in pixels.", min=8, max=1024, panel=MODEL)
    # --- training, per arrival ---
    steps: int = option(600, "Optimizer steps per arrival.", min=1, max=10_000_000, panel=TRAINING)
    batch: int = option(
        64, "Global contrastive batch (split over ranks).", min=2, max=65536, panel=TRAINING
    )
    lr: float = option(1e-3, "Peak learning rate (AdamW).", above=0, max=10, panel=TRAINING)
    warmup: float = option(0.1, "Warm-up share of the steps.", min=0, max=1, panel=TRAINING)
    weight_decay: float = option(
        0.1, "AdamW weight decay (not on gains, biases, embeddings).", min=0, max=10, panel=TRAINING
    )
    replay: float = option(
        0.5, "Share of each batch drawn from earlier arrivals.", min=0, max=1, panel=TRAINING
    )
    each_arrival: Literal["continue", "restart"] = option(
        "continue",
        "continue: train the model on each arrival (with replay); restart: a new model at "
        "each arrival, trained from scratch on every pair seen.",
        panel=TRAINING,
    )
    # --- evaluation ---
    eval_size: int = option(
        600, "World: held-out images scored after each arrival.", min=10, max=1_000_000, panel=EVAL
    )


@dataclass
class GrowConfig(TrainConfig):
    # --- growth ---
    schedule: Optional[str] = option(
        None,
        "Grow by hand instead of searching: one growth per arrival that starts from a model "
        "(a new run's first builds one), comma-separated; operators depth+N, depth+N:text|vision, widthK, shared+N, none, "
        "joined with & (e.g. depth+1,width2).",
        panel=GROWTH,
    )
    inherit: Literal["pim", "plain"] = option(
        "pim",
        "pim: parameter inheriting with momentum; plain: the grown weights as they are.",
        panel=GROWTH,
    )
    pim_rule: Literal["interpolate", "extrapolate"] = option(
        "interpolate",
        "interpolate: m x inherited + (1 - m) x a fresh initialisation; extrapolate: inherited "
        "+ m x the previous arrival's change.",
        panel=GROWTH,
    )
    pim_momentum: Optional[float] = option(
        None,
        "PIM's m (default: 0.9 to interpolate, 0.5 to extrapolate).",
        min=0,
        max=1,
        panel=GROWTH,
    )
    depth_init: Literal["zero", "copy"] = option(
        "zero",
        "A new layer: zero (a copy with its output projections zeroed: the identity) or copy "
        "(stacked as it is).",
        panel=GROWTH,
    )
    widen_noise: float = option(
        0.01,
        "Zero-sum noise on widened copies, relative to the weights' std (keeps the function, "
        "breaks the copies' symmetry).",
        min=0,
        max=10,
        panel=GROWTH,
    )
    params_per_pair: float = option(
        40.0, "Search: the parameter budget per pair seen.", above=0, max=1e9, panel=GROWTH
    )
    lam: float = option(
        2.0,
        "Search: the score's cost per GFLOP per pair (zero-shot accuracy - lam x GFLOPs).",
        min=0,
        max=1e6,
        panel=GROWTH,
    )
    proxy_steps: int = option(
        30,
        "Search: steps each candidate trains before it is scored.",
        min=1,
        max=10_000_000,
        panel=GROWTH,
    )


@dataclass
class EvalConfig:
    data: str = option(
        "auto",
        "auto (each run's own data), world or digits: the zero-shot tasks and retrieval set.",
        panel=DATA,
    )
    eval_images: Optional[Path] = option(
        None,
        "Zero-shot classes from a folder with one sub-folder per class.",
        path="dir",
        panel=DATA,
    )
    eval_classes: tuple[str, ...] = option(
        (), "Class names for --eval-images.", allow_empty=True, panel=DATA
    )
    eval_size: int = option(600, "World: held-out images.", min=10, max=1_000_000, panel=EVAL)


@dataclass
class PredictConfig:
    images: Path = option(
        ..., "An image, or a folder of images.", path="exists", positional=True, panel=DATA
    )
    classes: tuple[str, ...] = option(
        (),
        "Zero-shot labels to choose from (prompts 'a photo of a ...'; default: the colour "
        "and shape names of the world).",
        allow_empty=True,
        panel=DATA,
    )
    embeddings: Optional[Path] = option(
        None,
        "Also write the image embeddings here (.npy).",
        path="output",
        suffixes=(".npy",),
        panel=DATA,
    )


def check_train(cfg: TrainConfig) -> None:
    if cfg.width % cfg.heads:
        raise UsageError(f"--width {cfg.width} is not a multiple of --heads {cfg.heads}")
    if cfg.image_size % cfg.patch:
        raise UsageError(f"--image-size {cfg.image_size} is not a multiple of --patch {cfg.patch}")
    if cfg.arrivals > 1 and cfg.data not in EMBEDDED:
        raise UsageError(
            f"--arrivals {cfg.arrivals} needs the embedded stream (world or digits); your own "
            "data arrives one --data per call (grow --init RUN --data NEXT)"
        )
    if cfg.eval_classes and cfg.eval_images is None:
        raise UsageError("--eval-classes names the classes of --eval-images; give --eval-images")


def check_grow(cfg: GrowConfig) -> None:
    check_train(cfg)
    if cfg.each_arrival == "restart":
        raise UsageError(
            "--each-arrival restart starts a new model at each arrival: that is train's "
            "baseline, not growth (use mltk growclip train)"
        )
    if cfg.schedule is not None:
        from .ops import parse_schedule

        try:
            parse_schedule(cfg.schedule)
        except ValueError as e:
            raise UsageError(f"--schedule: {e}") from None


def momentum(cfg: GrowConfig) -> float:
    if cfg.pim_momentum is not None:
        return cfg.pim_momentum
    return 0.9 if cfg.pim_rule == "interpolate" else 0.5


PRESETS = {
    "small": GrowConfig(),  # the defaults: minutes per arrival on a CPU
    "tiny": GrowConfig(
        arrivals=3,
        first_chunk=300,
        steps=120,
        proxy_steps=30,
        batch=32,
        eval_size=300,
        params_per_pair=100,
    ),  # seconds: the first look and tests
}
TRAIN_PRESETS = {
    name: TrainConfig(**{k: getattr(c, k) for k in TrainConfig.__dataclass_fields__})
    for name, c in PRESETS.items()
}

"""The configuration of `mltk epic` (stdlib only: imported by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mltk.errors import UsageError
from mltk.verbs import option

DATA, MODEL, OBJECTIVE, TRAINING, EVAL = "Data", "Model", "Objective", "Training", "Evaluation"

Objective = Literal["albef", "epic", "rtd-random", "salient-mask"]
Saliency = Literal["attention", "gradient", "occlusion", "random"]
Replacement = Literal["lm", "uniform"]

# What each objective adds to ALBEF's (ITC + ITM + MLM): (masking, replacement, head)
OBJECTIVES = {
    "albef": None,
    "epic": ("salient", "lm", "consistency"),
    "rtd-random": ("random", "lm", "consistency"),
    "salient-mask": ("salient", "mask", "mlm"),
}


@dataclass
class TrainConfig:
    # --- data ---
    data: str = option(
        "world",
        "world (the embedded shapes world, colour biased by --bias) or your own pairs: a JSONL "
        "file of {image, caption} (ALBEF's format) or a folder of name.png + name.txt.",
        panel=DATA,
    )
    pairs: int = option(
        6000, "World: image-caption pairs to train on.", min=64, max=10_000_000, panel=DATA
    )
    bias: float = option(
        0.8,
        "World: the probability that a shape takes its own colour (circles red, squares blue, "
        "triangles green), so that text alone predicts colour.",
        min=0,
        max=1,
        panel=DATA,
    )
    eval_data: Optional[Path] = option(
        None,
        "Pairs scored after training (JSONL or folder; default: the world's counterfactual "
        "test split, or 10% held out of --data).",
        path="exists",
        panel=DATA,
    )
    # --- the model ---
    width: int = option(64, "Width of every tower.", min=8, max=8192, panel=MODEL)
    vision_layers: int = option(2, "ViT layers.", min=1, max=96, panel=MODEL)
    text_layers: int = option(2, "BERT text layers.", min=1, max=96, panel=MODEL)
    fusion_layers: int = option(
        2, "Fusion layers (self- and cross-attention).", min=1, max=96, panel=MODEL
    )
    heads: int = option(4, "Attention heads.", min=1, max=128, panel=MODEL)
    patch: int = option(4, "ViT patch size.", min=1, max=64, panel=MODEL)
    image_size: int = option(32, "Image side in pixels.", min=8, max=1024, panel=MODEL)
    embed_dim: int = option(64, "ITC embedding size.", min=8, max=8192, panel=MODEL)
    vision_init: Optional[Path] = option(
        None,
        "A local Hugging Face ViT folder to start the image tower from.",
        path="dir",
        panel=MODEL,
    )
    text_init: Optional[Path] = option(
        None,
        "A local Hugging Face BERT folder (with its tokenizer) for the text tower; its layers "
        "past --text-layers start the fusion layers, as in ALBEF.",
        path="dir",
        panel=MODEL,
    )
    init: Optional[Path] = option(None, "Continue from an epic run.", path="dir", panel=MODEL)
    # --- the objective ---
    objective: Objective = option(
        "epic",
        "albef: ITC + ITM + MLM; epic: + salient tokens replaced by a generator's samples and a "
        "per-token consistency loss; rtd-random: the same with random tokens (ELECTRA's "
        "replaced-token detection); salient-mask: salient tokens masked and predicted (MLM).",
        panel=OBJECTIVE,
    )
    saliency: Saliency = option(
        "attention",
        "How salient a word is to the image, on the momentum model's ITM score: attention "
        "(Grad-CAM of the cross-attention maps), gradient (gradient x input), occlusion (the "
        "score's drop when the word is masked) or random.",
        panel=OBJECTIVE,
    )
    mask_ratio: float = option(
        0.35,
        "Share of a caption's words replaced (the most salient ones).",
        above=0,
        below=1,
        panel=OBJECTIVE,
    )
    replacement: Replacement = option(
        "lm",
        "lm: samples of a small text-only generator trained jointly (ELECTRA); uniform: random "
        "words.",
        panel=OBJECTIVE,
    )
    epic_weight: float = option(
        8.0, "Weight of the per-token consistency loss.", min=0, max=1e4, panel=OBJECTIVE
    )
    generator_fraction: float = option(
        0.25, "The generator's width as a share of --width.", above=0, max=1, panel=OBJECTIVE
    )
    itc: bool = option(True, "Keep ITC (contrastive).", flag="--itc/--no-itc", panel=OBJECTIVE)
    itm: bool = option(True, "Keep ITM.", flag="--itm/--no-itm", panel=OBJECTIVE)
    mlm: bool = option(True, "Keep ALBEF's MLM.", flag="--mlm/--no-mlm", panel=OBJECTIVE)
    # --- training ---
    steps: int = option(1500, "Optimizer steps.", min=1, max=100_000_000, panel=TRAINING)
    batch: int = option(
        32, "Global batch of pairs (split over ranks).", min=2, max=65536, panel=TRAINING
    )
    lr: float = option(
        1e-3,
        "Peak learning rate (AdamW; ALBEF's 1e-4 is for towers that start pre-trained, as in "
        "the base preset).",
        above=0,
        max=10,
        panel=TRAINING,
    )
    warmup: float = option(0.05, "Warm-up share of the steps.", min=0, max=1, panel=TRAINING)
    weight_decay: float = option(0.02, "AdamW weight decay.", min=0, max=10, panel=TRAINING)
    momentum: float = option(0.995, "Momentum encoders' EMA rate.", min=0, below=1, panel=TRAINING)
    queue: int = option(
        256,
        "ITC feature queue length (ALBEF: 65,536, as in the base preset).",
        min=0,
        max=10_000_000,
        panel=TRAINING,
    )
    alpha: float = option(
        0.4,
        "Momentum distillation weight (ramped in over the first epoch).",
        min=0,
        max=1,
        panel=TRAINING,
    )
    # --- evaluation ---
    eval_size: int = option(
        400, "World: counterfactual test images.", min=10, max=1_000_000, panel=EVAL
    )


@dataclass
class EvalConfig:
    eval_data: Optional[Path] = option(
        None,
        "Pairs to score (JSONL or folder; default: the world's counterfactual test split).",
        path="exists",
        panel=DATA,
    )
    eval_size: int = option(400, "World: test images.", min=10, max=1_000_000, panel=EVAL)


@dataclass
class CheckConfig:
    image: str = option(
        ...,
        "An image file, or world:N for the N-th image of the world's counterfactual test split.",
        positional=True,
        panel=DATA,
    )
    caption: str = option(..., "The caption to check, word by word.", positional=True, panel=DATA)
    model: Optional[Path] = option(
        None,
        "An epic run or model folder (default: the tiny model that ships with mltk, trained "
        "on the world).",
        path="dir",
        panel=MODEL,
    )


@dataclass
class PredictConfig:
    pairs: Path = option(
        ...,
        "Image-caption pairs to score: a JSONL file of {image, caption} or a folder of "
        "name.png + name.txt.",
        path="exists",
        positional=True,
        panel=DATA,
    )
    threshold: float = option(
        0.5,
        "A word whose consistency falls below this is reported as inconsistent.",
        above=0,
        below=1,
        panel=DATA,
    )


def check_train(cfg: TrainConfig) -> None:
    if cfg.width % cfg.heads:
        raise UsageError(f"--width {cfg.width} is not a multiple of --heads {cfg.heads}")
    if cfg.image_size % cfg.patch:
        raise UsageError(f"--image-size {cfg.image_size} is not a multiple of --patch {cfg.patch}")
    if cfg.queue and cfg.queue % cfg.batch:
        raise UsageError(f"--queue {cfg.queue} is not a multiple of --batch {cfg.batch}")
    if cfg.init is not None and (cfg.vision_init or cfg.text_init):
        raise UsageError("--init continues an epic run; --vision-init/--text-init start new ones")
    if not (cfg.itc or cfg.itm or cfg.mlm or OBJECTIVES[cfg.objective]):
        raise UsageError("every loss is switched off: keep one of --itc, --itm, --mlm")


PRESETS = {
    "small": TrainConfig(),  # the benchmark's size: minutes on a CPU
    "tiny": TrainConfig(pairs=1500, steps=150, eval_size=200),  # seconds: first look, tests
    "base": TrainConfig(  # ViT-B/16 + BERT-base (6 text + 6 fusion layers), as ALBEF
        width=768,
        vision_layers=12,
        text_layers=6,
        fusion_layers=6,
        heads=12,
        patch=16,
        image_size=256,
        embed_dim=256,
        batch=512,
        queue=65536,
        lr=1e-4,
        steps=100_000,
    ),
}

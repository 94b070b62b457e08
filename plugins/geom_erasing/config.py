"""The configuration of `mltk geom-erasing` (stdlib only: imported by the CLI).

Defaults are the embedded first look: the shipped tiny PixArt model (32 px) fine-tuned on the
shapes world with a concept drawn into a corner of 75% of its images, a 4 x 4 grid (8 px
cells), region weight 2, the denoiser and the new token rows trained with AdamW at 1e-3 for 400
steps of 32. At 50% the plain fine-tune paints a QR code into only 16% of its images under
guidance 4.5 (17% after 1600 steps): too few for a removal benchmark to measure anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mltk.verbs import option

DATA, METHOD, TRAIN, SAMPLE = "Data", "Method", "Training", "Sampling"
METHODS = Literal["geom", "plain", "name", "mask", "esd"]


@dataclass
class MakeDatasetConfig:
    concept: str = option("qr", "qr | watermark | text, or several joined by commas.")
    ratio: float = option(0.75, "Share of images that carry the concept.", min=0, max=1)
    placement: Literal["corner", "anywhere"] = option(
        "corner", "corner: one of the four corners (as watermarks sit) | anywhere."
    )
    size: int = option(2000, "Images.", min=1, max=1_000_000)
    world_seed: int = option(0, "Seed of the shapes world (scenes and concepts).", min=0)


@dataclass
class DetectConfig:
    images: Path = option(
        ...,
        "An image, a folder of images, or a make-dataset folder.",
        positional=True,
        path="exists",
    )
    detector: str = option("embedded", "embedded | opencv-qr | module:function.")
    concept: Optional[str] = option(
        None, "What a box from opencv-qr or your function is of (default: qr code)."
    )
    detector_seed: int = option(0, "Embedded detector: 0 is the shipped one; others train.", min=0)
    grid: int = option(4, "Cells per side for the location tokens printed.", min=1, max=64)


@dataclass
class EraseConfig:
    # --- data ---
    base: Optional[Path] = option(
        None,
        "Model to fine-tune: a diffusers PixArt-alpha or Stable Diffusion folder, or an "
        "erase run (default: the tiny model shipped with mltk).",
        path="dir",
        panel=DATA,
    )
    data: Optional[Path] = option(
        None,
        "Folder from make-dataset, a folder of images with .txt captions, or a .jsonl of "
        "image/caption lines (default: the shapes world with --concept drawn in).",
        path="exists",
        panel=DATA,
    )
    concept: str = option(
        "qr",
        "The concept(s) to remove, comma-separated: qr, watermark, text (the embedded "
        "world and detector), or any name, e.g. 'qr code'.",
        panel=DATA,
    )
    boxes: Optional[Path] = option(
        None,
        "JSONL: per line an image and its boxes, each a concept and pixel corners x0, y0, "
        "x1, y1 (default: the data's boxes.jsonl, else --detector).",
        path="file",
        suffixes=(".jsonl",),
        panel=DATA,
    )
    detector: str = option("embedded", "embedded | opencv-qr | module:function.", panel=DATA)
    setting: Literal["data", "model"] = option(
        "data",
        "data: fine-tune on contaminated images | model: the base already paints the "
        "concept; generate from its prompts, detect, fine-tune on those.",
        panel=DATA,
    )
    ratio: float = option(
        0.75, "Embedded world: share of images with the concept.", min=0, max=1, panel=DATA
    )
    placement: Literal["corner", "anywhere"] = option(
        "corner",
        "Embedded world: the concept in a corner (as watermarks sit) or anywhere.",
        panel=DATA,
    )
    size: int = option(
        2000,
        "Embedded world (or model setting: generated) images.",
        min=2,
        max=1_000_000,
        panel=DATA,
    )
    world_seed: int = option(0, "Seed of the embedded world.", min=0, panel=DATA)
    # --- the method ---
    method: METHODS = option(
        "geom",
        "geom (location tokens, the paper) | plain (fine-tune) | name (concept name, "
        "no location) | mask (weight 0 in boxes) | esd (ESD-x on the name).",
        panel=METHOD,
    )
    grid: int = option(
        4, "Cells per side (G: tokens <l0>..<l{G*G-1}>).", min=1, max=64, panel=METHOD
    )
    region_weight: float = option(
        2.0, "Loss weight inside boxes before normalising to mean 1.", min=0, max=1000, panel=METHOD
    )
    train_embeddings: Literal["new", "all", "none"] = option(
        "new",
        "Token rows trained with the denoiser: the new ones, the whole table, or none.",
        panel=METHOD,
    )
    esd_eta: float = option(1.0, "ESD's negative guidance eta.", min=0, max=100, panel=METHOD)
    esd_steps: int = option(
        200,
        "ESD iterations (data setting: after the plain fine-tune).",
        min=1,
        max=10**7,
        panel=METHOD,
    )
    esd_lr: float = option(1e-5, "ESD learning rate (their code: 1e-5).", above=0, panel=METHOD)
    esd_ddim_steps: int = option(
        50, "ESD: DDIM steps x_t is sampled along.", min=2, max=1000, panel=METHOD
    )
    # --- training ---
    steps: int = option(400, "Optimizer steps.", min=1, max=10**9, panel=TRAIN)
    batch_size: int = option(32, "Batch size.", min=1, max=1_000_000, panel=TRAIN)
    lr: Optional[float] = option(
        None,
        "AdamW learning rate of the denoiser (default: 1e-3 on the shipped tiny model, else 1e-5).",
        above=0,
        panel=TRAIN,
    )
    embedding_lr: Optional[float] = option(
        None, "Learning rate of token rows (default: --lr x 10).", above=0, panel=TRAIN
    )
    warmup: int = option(20, "Linear warm-up steps.", min=0, panel=TRAIN)
    ema_decay: float = option(
        0.99, "EMA decay of the exported weights.", min=0, below=1, panel=TRAIN
    )
    caption_dropout: float = option(
        0.1, "Share of empty captions (for guidance).", min=0, max=1, panel=TRAIN
    )
    image_size: Optional[int] = option(
        None,
        "Pixels images are resized to (default: the base's size).",
        min=8,
        max=8192,
        panel=TRAIN,
    )
    gradient_checkpointing: bool = option(False, "Trade compute for memory.", panel=TRAIN)
    log_every: int = option(50, "Log every N steps.", min=1, panel=TRAIN)
    save_every: int = option(400, "Checkpoint every N steps.", min=1, panel=TRAIN)


@dataclass
class SamplingConfig:
    steps: int = option(20, "Denoising steps.", min=2, max=10_000, panel=SAMPLE)
    guidance: float = option(4.5, "Classifier-free guidance scale.", min=0, max=100, panel=SAMPLE)
    negative_cells: Literal["all", "frequent"] = option(
        "all",
        "Location tokens in the negative prompt: every cell or the frequent ones.",
        panel=SAMPLE,
    )
    negative_prompt: Optional[str] = option(
        None,
        "Replace the run's negative prompt (e.g. a concept name, the baseline).",
        allow_empty=True,
        panel=SAMPLE,
    )
    batch_size: int = option(64, "Images denoised at once.", min=1, max=100_000, panel=SAMPLE)


@dataclass
class GenerateConfig(SamplingConfig):
    prompt: tuple[str, ...] = option(
        (), "Prompt(s); or use --prompts-file.", positional=True, allow_empty=True
    )
    model: Optional[Path] = option(
        None,
        "An erase run or diffusers folder (default: the erased tiny model shipped with mltk).",
        path="dir",
    )
    prompts_file: Optional[Path] = option(
        None, "Text file, one prompt per line.", path="file", suffixes=(".txt",)
    )
    num_images: int = option(4, "Images per prompt (seeds seed, seed+1, ...).", min=1, max=100_000)
    erase: bool = option(
        True, "With the run's negative prompt; --no-erase: without only.", flag="--erase/--no-erase"
    )
    compare: bool = option(
        True, "Also generate without it (a side-by-side grid).", flag="--compare/--no-compare"
    )


@dataclass
class EvalConfig(SamplingConfig):
    prompts: int = option(200, "Held-out world prompts (one image each).", min=1, max=1_000_000)
    prompts_file: Optional[Path] = option(
        None, "Your prompts instead, one per line.", path="file", suffixes=(".txt",)
    )
    concept: Optional[str] = option(
        None, "Concepts to score (default: the run's; qr for a model that erased nothing)."
    )
    detector: str = option("embedded", "embedded | opencv-qr | module:function.")
    detector_seed: int = option(
        0,
        "Embedded detector: 0 is the shipped one; another seed trains one (a few minutes, once).",
        min=0,
    )
    cross_check: Optional[int] = option(
        None, "Also the ICR by an embedded detector trained on this seed.", min=0
    )
    clip: Optional[Path] = option(None, "A local CLIP folder: CLIP score too.", path="dir")
    erase: bool = option(
        True, "With the run's negative prompt; --no-erase: without.", flag="--erase/--no-erase"
    )


def check_generate(cfg: GenerateConfig) -> None:
    from mltk.errors import UsageError

    if not cfg.prompt and cfg.prompts_file is None:
        raise UsageError(
            'no prompt given: pass one, e.g. `mltk geom-erasing generate "a red '
            'circle above a blue square"`, or --prompts-file'
        )
    if any(not p.strip() for p in cfg.prompt):
        raise UsageError("a prompt is empty; give text for every prompt")
    if not cfg.erase and not cfg.compare:
        raise UsageError("--no-erase with --no-compare leaves nothing to generate")


def check_erase(cfg: EraseConfig) -> None:
    from mltk.errors import UsageError

    from .locations import check_concept

    for c in cfg.concept.split(","):
        check_concept(c)
    if cfg.boxes is not None and cfg.data is None:
        raise UsageError("--boxes names images of --data; pass the data folder too")
    if cfg.setting == "model" and cfg.data is not None:
        raise UsageError("--setting model generates its own data from the base; drop --data")


def check_make(cfg: MakeDatasetConfig) -> None:
    from mltk.errors import UsageError

    from .locations import check_concept

    for c in cfg.concept.split(","):
        if check_concept(c) not in ("qr", "watermark", "text"):
            raise UsageError(f"make-dataset draws qr, watermark or text; got {c.strip()!r}")

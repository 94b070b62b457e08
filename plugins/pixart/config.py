"""The one configuration of the pixart plugin, and its presets (stdlib only: imported by the CLI).

``tiny`` is the embedded default: latent diffusion of 32x32 procedural images through the shipped
trained tiny VAE (2x down, 4 channels), a 4-layer PixArt transformer of width 128 on 2x2 latent
patches and a 2-layer T5 encoder; it learns prompt following on a CPU in minutes and its folder
loads in diffusers' PixArtAlphaPipeline. ``tiny-pixel`` is pixel-space diffusion (an ``identity``
autoencoder, 4x4 patches), the recipe the pixel-space benchmarks measure. ``tiny-vae`` swaps in
the VAE's architecture with random weights (the speed benchmark's model). ``paper`` is
PixArt-XL-2 at 1024 px with T5-XXL and the SD VAE, trained as the paper does (eps prediction
with learned variance, AdamW lr 2e-5, clip 0.01).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

from mltk.verbs import option

MODEL, TEXT, TRAIN = "Model", "Text encoder", "Training"
SAMPLER = Literal["dpm", "ddim"]


@dataclass
class PixArtConfig:
    # --- data and the stage of the recipe (Sec. 2.2) ---
    stage: Literal["pixel", "align", "aesthetic"] = option(
        "align", "pixel (class-conditional) | align (text, from --init or scratch) | aesthetic."
    )
    init: Optional[Path] = option(
        None, "Run folder to start from (a pixel run for align, an align run for aesthetic) "
        "or a diffusers PixArt folder to fine-tune.", path="dir",
    )  # fmt: skip
    data: Optional[Path] = option(
        None, "Image folder with .txt captions, or a .jsonl of {\"image\": ..., \"caption\": ...} "
        "lines (default: the embedded shapes world).", path="exists",
    )  # fmt: skip
    # --- transformer (diffusers PixArtTransformer2DModel) ---
    image_size: int = option(32, "Pixels (height = width) the model trains at.", min=8,
                             max=8192, panel=MODEL)  # fmt: skip
    patch_size: int = option(2, "Latent pixels per token side.", min=1, max=64, panel=MODEL)
    num_layers: int = option(4, "Transformer blocks.", min=1, max=512, panel=MODEL)
    num_heads: int = option(4, "Attention heads.", min=1, max=512, panel=MODEL)
    head_dim: int = option(32, "Width per head (width = heads x head_dim).", min=1, max=4096,
                           panel=MODEL)  # fmt: skip
    learn_sigma: bool = option(
        True, "Output the variance interpolation too (2x channels).", panel=MODEL
    )
    micro_conditions: bool = option(
        False, "Resolution / aspect-ratio embedding of the 1024 model.", panel=MODEL
    )
    num_classes: int = option(12, "Classes of the stage-1 class-conditional model.", min=1,
                              max=1_000_000, panel=MODEL)  # fmt: skip
    autoencoder: Literal["identity", "tiny", "tiny-kl", "sd"] = option(
        "tiny", "identity (pixel space) | tiny (the shipped trained 2x VAE) | tiny-kl (its "
        "architecture, random weights) | sd (the SD VAE config, 8x).", panel=MODEL,
    )  # fmt: skip
    # --- text encoder (transformers T5EncoderModel) ---
    text_dim: int = option(64, "T5 width.", min=1, max=65536, panel=TEXT)
    text_layers: int = option(2, "T5 layers.", min=1, max=512, panel=TEXT)
    text_heads: int = option(4, "T5 heads.", min=1, max=512, panel=TEXT)
    text_ff: int = option(128, "T5 feed-forward width.", min=1, max=262144, panel=TEXT)
    max_length: int = option(20, "Caption tokens (the paper: 120).", min=1, max=4096, panel=TEXT)
    text_seed: int = option(1234, "Seed of the embedded world's T5 weights.", min=0, panel=TEXT)
    # --- objective ---
    prediction: Literal["eps", "v"] = option(
        "v", "eps (the paper) | v (our change for toy scale).", panel=TRAIN
    )
    vlb_weight: float = option(
        1.0, "Weight of the VLB term that trains the learned variance.", min=0, max=1e6,
        panel=TRAIN,
    )  # fmt: skip
    # --- training ---
    steps: int = option(800, "Optimizer steps.", min=1, max=10**9, panel=TRAIN)
    batch_size: int = option(32, "Global batch size.", min=1, max=1_000_000, panel=TRAIN)
    lr: float = option(1e-3, "AdamW learning rate.", above=0, panel=TRAIN)
    weight_decay: float = option(0.0, "AdamW weight decay.", min=0, max=1e3, panel=TRAIN)
    warmup: int = option(100, "Linear warm-up steps.", min=0, panel=TRAIN)
    ema_decay: float = option(0.999, "EMA decay of the exported weights.", min=0, below=1,
                              panel=TRAIN)  # fmt: skip
    grad_clip: float = option(1.0, "Gradient-norm clipping.", above=0, panel=TRAIN)
    caption_dropout: float = option(
        0.1, "Probability of the empty caption (for guidance).", min=0, below=1, panel=TRAIN
    )
    caption_mode: Literal["short", "dense", "mixed"] = option(
        "dense", "Which captions train the model.", panel=TRAIN
    )
    aspect_buckets: bool = option(
        False, "Image folders: batches of one aspect-ratio bucket instead of square crops.",
        panel=TRAIN,
    )  # fmt: skip
    gradient_checkpointing: bool = option(False, "Trade compute for memory.", panel=TRAIN)
    dataset_size: int = option(6000, "Images in the procedural world.", min=1, max=10**8,
                               panel=TRAIN)  # fmt: skip
    world_seed: int = option(0, "Seed of the procedural world.", min=0, panel=TRAIN)
    log_every: int = option(50, "Log metrics every N steps.", min=1, max=10**9, panel=TRAIN)
    save_every: int = option(500, "Checkpoint every N steps.", min=1, max=10**9, panel=TRAIN)


PRESETS: dict[str, PixArtConfig] = {
    "tiny": PixArtConfig(),
    "tiny-pixel": PixArtConfig(autoencoder="identity", patch_size=4),
    "tiny-vae": PixArtConfig(autoencoder="tiny-kl", patch_size=2),
    "paper": PixArtConfig(
        image_size=1024,
        patch_size=2,
        num_layers=28,
        num_heads=16,
        head_dim=72,
        micro_conditions=True,
        num_classes=1000,
        autoencoder="sd",
        text_dim=4096,
        text_layers=24,
        text_heads=64,
        text_ff=10240,
        max_length=120,
        prediction="eps",
        steps=100_000,
        batch_size=32,
        lr=2e-5,
        weight_decay=3e-2,
        warmup=1000,
        ema_decay=0.9999,
        grad_clip=0.01,
        gradient_checkpointing=True,
        aspect_buckets=True,
        log_every=100,
        save_every=5000,
    ),
}
# What each stage changes relative to the preset, as in Sec. 2.2: stage 3 fine-tunes on the
# high-quality subset with a smaller learning rate and no warm-up needed.
STAGE_OVERRIDES = {"aesthetic": {"lr_scale": 0.2}}


def preset(name: str, **changes) -> PixArtConfig:
    return replace(PRESETS[name], **changes)


def check(cfg: PixArtConfig) -> None:
    """What the field declarations cannot say alone."""
    from mltk.errors import UsageError

    width = cfg.num_heads * cfg.head_dim
    if cfg.micro_conditions and width % 3:
        raise UsageError(
            f"micro_conditions embed height, width and aspect ratio in thirds of the model width; "
            f"num_heads x head_dim = {width} is not divisible by 3"
        )
    if cfg.stage == "aesthetic" and cfg.init is None:
        raise UsageError(
            "--stage aesthetic fine-tunes a stage-2 model: pass --init RUN_FOLDER of an align run"
        )


RUN_HELP = "A train run folder, a diffusers PixArt folder, or tiny (the shipped model)."


@dataclass
class SamplingConfig:
    steps: int = option(20, "Sampler steps.", min=2, max=10_000)
    guidance: float = option(4.5, "Classifier-free guidance scale (1 = none).", min=0, max=1e4)
    sampler: SAMPLER = option("dpm", "dpm (DPM-Solver++) | ddim.")
    batch_size: int = option(16, "Images per denoising batch.", min=1, max=100_000)


@dataclass
class EvalConfig(SamplingConfig):
    prompts: int = option(64, "Held-out world prompts to generate and score.", min=2,
                          max=100_000)  # fmt: skip
    clip: Optional[Path] = option(None, "Local CLIP model folder for a CLIP score.", path="dir")


@dataclass
class GenerateConfig(SamplingConfig):
    prompt: tuple[str, ...] = option((), "Prompt(s); or use --prompts-file.", positional=True,
                                     allow_empty=True)  # fmt: skip
    prompts_file: Optional[Path] = option(
        None, "Text file, one prompt per line.", path="file", dash=True, suffixes=(".txt",)
    )
    negative_prompt: str = option("", "Negative prompt (the unconditional branch).",
                                  allow_empty=True)  # fmt: skip
    num_images: int = option(1, "Images per prompt (seeds seed, seed+1, ...).", min=1,
                             max=100_000)  # fmt: skip
    height: Optional[int] = option(None, "Pixels (default: the model's size).", min=1, max=8192)
    width: Optional[int] = option(None, "Pixels (default: the model's size).", min=1, max=8192)
    resolution_binning: bool = option(
        False, "Any size: denoise at the nearest aspect-ratio bucket, then resize and crop."
    )


def check_generate(cfg: GenerateConfig) -> None:
    from mltk.errors import UsageError

    if not cfg.prompt and cfg.prompts_file is None:
        raise UsageError(
            'no prompt given: pass a prompt, e.g. `mltk pixart generate tiny "a red circle"`, '
            "or --prompts-file"
        )
    if any(not p.strip() for p in cfg.prompt):
        raise UsageError("a prompt is empty; give text for every prompt")

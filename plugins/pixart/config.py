"""The one configuration of the pixart plugin, and its presets (stdlib only: imported by the CLI).

``tiny`` is the embedded default: pixel-space diffusion (an ``identity`` autoencoder) of 32x32
procedural images, a 4-layer PixArt transformer of width 128 and a 2-layer T5 encoder; it learns
prompt following on a CPU in minutes. ``tiny-vae`` is the same with a small ``AutoencoderKL``
(random weights, built from a config) so the full latent pipeline, and diffusers' own
PixArtAlphaPipeline, run end to end. ``paper`` is PixArt-XL-2 at 1024 px with T5-XXL and the SD VAE,
trained as the paper does (eps prediction with learned variance, AdamW lr 2e-5, clip 0.01).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass
class PixArtConfig:
    # --- transformer (diffusers PixArtTransformer2DModel) ---
    image_size: int = 32  # pixels (height = width) the model is trained at
    patch_size: int = 4  # latent pixels per token side: 64 tokens, 48 values each (< width)
    num_layers: int = 4
    num_heads: int = 4
    head_dim: int = 32  # width = num_heads * head_dim
    learn_sigma: bool = True  # output 2x channels: epsilon/v and the variance interpolation
    micro_conditions: bool = False  # resolution / aspect-ratio embedding of the 1024 model
    num_classes: int = 12  # stage-1 (pixel dependency) class-conditional model
    # --- autoencoder: identity (pixel space) | tiny-kl | sd (the SD VAE config, 8x) ---
    autoencoder: str = "identity"
    # --- text encoder (transformers T5EncoderModel) ---
    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_ff: int = 128
    max_length: int = 20  # tokens (the paper: 120)
    text_seed: int = 1234
    # --- objective ---
    prediction: str = "v"  # eps (the paper) | v (our change for toy scale)
    vlb_weight: float = 1.0  # weight of the VLB term that trains the learned variance
    # --- training ---
    stage: str = "align"  # pixel | align | aesthetic
    steps: int = 800
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 100
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    caption_dropout: float = 0.1  # classifier-free guidance: caption replaced by ""
    caption_mode: str = "dense"  # short | dense | mixed
    aspect_buckets: bool = False  # image folders: multi-aspect batches instead of square crops
    gradient_checkpointing: bool = False
    dataset_size: int = 6000  # images in the procedural world
    world_seed: int = 0
    log_every: int = 50
    save_every: int = 500
    # --- sampling ---
    sampler: str = "dpm"  # dpm (DPM-Solver++) | ddim
    sample_steps: int = 20
    guidance: float = 4.5


PRESETS: dict[str, PixArtConfig] = {
    "tiny": PixArtConfig(),
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
STAGES = ("pixel", "align", "aesthetic")
CAPTION_MODES = ("short", "dense", "mixed")
PREDICTIONS = ("eps", "v")
SAMPLERS = ("dpm", "ddim")
AUTOENCODERS = ("identity", "tiny-kl", "sd")

# What each stage changes relative to the preset, as in Sec. 2.2: stage 3 fine-tunes on the
# high-quality subset with a smaller learning rate and no warm-up needed.
STAGE_OVERRIDES = {"aesthetic": {"lr_scale": 0.2}}


def preset(name: str, **changes) -> PixArtConfig:
    return replace(PRESETS[name], **changes)

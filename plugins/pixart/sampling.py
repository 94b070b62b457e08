"""Sampling: DPM-Solver++ (default, 20 steps) or DDIM with classifier-free guidance.

The loop is diffusers' own scheduler stepping, written out so the text encoder can be freed
before denoising (T5-XXL is ~20 GB in fp32) and so a run folder's EMA weights, a pixel-space model
and seeds per image work the same way. For the same weights, prompts, seeds and settings it
produces the images PixArtAlphaPipeline produces (tested): initial noise is drawn per image from
``torch.Generator(device).manual_seed(seed)``, the unconditional half of the batch comes first,
and guidance is eps_u + w (eps_c - eps_u) on the first C output channels.
"""

from __future__ import annotations

import torch

from mltk.errors import UsageError

from .model import check_resolution
from .pipeline_io import Bundle
from .text import encode


def make_scheduler(sampler: str, scheduler_config: dict):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if sampler == "dpm":
        return DPMSolverMultistepScheduler.from_config(scheduler_config)
    if sampler == "ddim":
        return DDIMScheduler.from_config(scheduler_config)
    raise UsageError(f"--sampler must be dpm or ddim; got {sampler!r}")


@torch.inference_mode()
def encode_prompts(bundle: Bundle, prompts: list[str], negative: str, device) -> dict:
    """T5 features of prompts and of the negative prompt (one row per prompt), on ``device`` in the
    transformer's dtype."""
    enc = bundle.text_encoder
    where = next(enc.parameters()).device
    cond, cmask = encode(
        bundle.tokenizer, enc, prompts, bundle.max_length, device=where, to_cpu=False
    )
    # One negative row per prompt, encoded as one batch like the pipeline does: on a GPU, T5 at
    # batch 1 and at batch N can round differently in bf16, and the images would then differ.
    unc, umask = encode(
        bundle.tokenizer,
        enc,
        [negative] * len(prompts),
        bundle.max_length,
        device=where,
        to_cpu=False,
    )
    dtype = bundle.transformer.dtype
    return {
        "cond": cond.to(device, dtype),
        "cond_mask": cmask.to(device),
        "uncond": unc.to(device, dtype),
        "uncond_mask": umask.to(device),
    }


def free_text_encoder(bundle: Bundle) -> None:
    """Drop T5 once prompts are encoded: denoising never needs it again."""
    bundle.text_encoder = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@torch.inference_mode()
def denoise(
    bundle: Bundle,
    cond: torch.Tensor,
    cond_mask: torch.Tensor,
    uncond: torch.Tensor,
    uncond_mask: torch.Tensor,
    seeds: list[int],
    *,
    height: int,
    width: int,
    steps: int = 20,
    guidance: float = 4.5,
    sampler: str = "dpm",
    device="cpu",
) -> torch.Tensor:
    """Latents for a batch of prompts (one seed each) -> decoded images in [-1, 1]."""
    from diffusers.utils.torch_utils import randn_tensor

    model = bundle.transformer
    check_resolution(height, width, bundle.patch_size, bundle.vae_factor)
    if steps < 1:
        raise UsageError(f"--steps {steps} must be at least 1")
    b = cond.shape[0]
    c = model.config.in_channels
    cfg = guidance > 1.0
    scheduler = make_scheduler(sampler, bundle.scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    gens = [torch.Generator(device).manual_seed(int(s)) for s in seeds]
    shape = (b, c, height // bundle.vae_factor, width // bundle.vae_factor)
    latents = randn_tensor(shape, generator=gens, device=torch.device(device), dtype=cond.dtype)
    latents = latents * scheduler.init_noise_sigma

    if cfg:
        text = torch.cat([uncond.expand(b, -1, -1), cond])  # (2B, L, C): unconditional first
        mask = torch.cat([uncond_mask.expand(b, -1), cond_mask])
    else:
        text, mask = cond, cond_mask
    rows = text.shape[0]
    added = {"resolution": None, "aspect_ratio": None}
    if model.use_additional_conditions:
        added = {
            "resolution": torch.tensor([[height, width]], device=device, dtype=cond.dtype).repeat(
                rows, 1
            ),
            "aspect_ratio": torch.tensor(
                [[height / width]], device=device, dtype=cond.dtype
            ).repeat(rows, 1),
        }
    accepts_generator = sampler == "ddim"
    for t in scheduler.timesteps:
        x_in = torch.cat([latents] * 2) if cfg else latents
        x_in = scheduler.scale_model_input(x_in, t)
        ts = t[None].to(device).expand(rows)
        out = model(
            x_in,
            encoder_hidden_states=text,
            encoder_attention_mask=mask,
            timestep=ts,
            added_cond_kwargs=added,
            return_dict=False,
        )[0]
        if cfg:
            out_u, out_c = out.chunk(2)
            out = out_u + guidance * (out_c - out_u)
        if out.shape[1] == 2 * c:  # learned variance: sample with the mean prediction only
            out = out[:, :c]
        kwargs = {"generator": gens[0]} if accepts_generator else {}
        latents = scheduler.step(out, t, latents, return_dict=False, **kwargs)[0]
    return decode(bundle, latents)


@torch.inference_mode()
def decode(bundle: Bundle, latents: torch.Tensor) -> torch.Tensor:
    ae = bundle.autoencoder
    if hasattr(ae, "config") and hasattr(ae, "decode"):
        return ae.decode(latents / ae.config.scaling_factor, return_dict=False)[0]
    return ae.decode(latents)


def bucket_for(bundle: Bundle, height: int, width: int) -> tuple[int, int]:
    """The aspect-ratio bucket (of the model's native size) nearest ``height / width``."""
    from .data import buckets_for, nearest_bucket

    native = int(bundle.transformer.config.sample_size) * bundle.vae_factor
    return nearest_bucket(height, width, buckets_for(native, bundle.patch_size * bundle.vae_factor))


def to_uint8(images: torch.Tensor):
    """[-1, 1] (B, 3, H, W) -> (B, H, W, 3) uint8, as diffusers' image processor does it (the
    [0, 1] mapping in the decoder's dtype, e.g. bf16, then float32, x 255, rounded)."""
    x = (images * 0.5 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).float().numpy()
    return (x * 255).round().astype("uint8")


def generate(
    bundle: Bundle,
    prompts: list[str],
    *,
    seeds: list[int],
    negative_prompt: str = "",
    height: int | None = None,
    width: int | None = None,
    steps: int = 20,
    guidance: float = 4.5,
    sampler: str = "dpm",
    batch_size: int = 16,
    device="cpu",
    free_encoder: bool = False,
    on_batch=None,
    embeddings: dict | None = None,
    resolution_binning: bool = False,
):
    """Images (N, H, W, 3) uint8 for ``prompts`` (one seed per prompt).

    ``embeddings`` (as :func:`encode_prompts` returns them, one row per prompt) skips T5.
    ``resolution_binning`` (diffusers' ``use_resolution_binning``): denoise at the aspect-ratio
    bucket nearest the requested size, then resize to cover it and centre-crop, so any size works.
    """
    import numpy as np

    if not prompts:
        raise UsageError("no prompts given: pass a prompt or a non-empty --prompts file")
    if len(seeds) != len(prompts):
        raise UsageError(f"{len(seeds)} seeds for {len(prompts)} prompts; give one seed per prompt")
    native = int(bundle.transformer.config.sample_size) * bundle.vae_factor
    height, width = height or native, width or native
    target = None
    if resolution_binning:
        if height <= 0 or width <= 0:
            raise UsageError(f"height {height} and width {width} must be positive")
        target = (height, width)
        height, width = bucket_for(bundle, height, width)
    check_resolution(height, width, bundle.patch_size, bundle.vae_factor)
    emb = embeddings or encode_prompts(bundle, prompts, negative_prompt, device)
    if free_encoder:
        free_text_encoder(bundle)
    out = []
    for i in range(0, len(prompts), batch_size):
        sl = slice(i, i + batch_size)
        imgs = denoise(
            bundle,
            emb["cond"][sl],
            emb["cond_mask"][sl],
            emb["uncond"][sl] if len(emb["uncond"]) > 1 else emb["uncond"],
            emb["uncond_mask"][sl] if len(emb["uncond_mask"]) > 1 else emb["uncond_mask"],
            seeds[sl],
            height=height,
            width=width,
            steps=steps,
            guidance=guidance,
            sampler=sampler,
            device=device,
        )
        if target is not None and target != (height, width):
            from diffusers.image_processor import PixArtImageProcessor

            imgs = PixArtImageProcessor.resize_and_crop_tensor(imgs, target[1], target[0])
        out.append(to_uint8(imgs))
        if on_batch is not None:
            on_batch(len(out[-1]))
    return np.concatenate(out)

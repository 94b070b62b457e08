"""Sampling through diffusers' own pipelines: DPM-Solver++ (default) or DDIM, with
classifier-free guidance and negative prompts.

mltk encodes the prompts itself (through the dataset cache, so a repeated prompt set never loads
T5 again; the text encoder can then be freed before denoising: T5-XXL is ~20 GB in fp32) and
hands ``prompt_embeds`` and ``negative_prompt_embeds`` to ``PixArtAlphaPipeline`` or
``StableDiffusionPipeline``, with one generator per image, asking for ``output_type="latent"``
and decoding itself, so a pixel-space model (no VAE) samples through the same call. What is ours:

- decoding, and the uint8 mapping of diffusers' image processor (``to_uint8``);
- micro-conditions for PixArt models at sizes other than 1024 px: the pipeline adds them only for
  its 1024 px model (``sample_size == 128``), so a forward pre-hook fills them for the others,
  with the pipeline's own values (the height, width and ratio of the batch);
- resolution binning at any size (diffusers' tables stop at 256 px): the nearest bucket by
  ``classify_height_width_bin``, then diffusers' ``resize_and_crop_tensor``.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from mltk.errors import UsageError

from .autoencoders import decode
from .buckets import buckets_for, classify
from .pipeline_io import Bundle, diffusers_pipeline
from .text import encode


def make_scheduler(sampler: str, scheduler_config: dict):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if sampler == "dpm":
        return DPMSolverMultistepScheduler.from_config(scheduler_config)
    if sampler == "ddim":
        return DDIMScheduler.from_config(scheduler_config)
    raise UsageError(f"--sampler must be dpm or ddim; got {sampler!r}")


def check_resolution(height: int, width: int, patch: int, factor: int) -> None:
    """Both sides must be multiples of patch size x VAE factor (one token per patch of latents)."""
    step = patch * factor
    for name, v in (("height", height), ("width", width)):
        if v <= 0 or v % step:
            raise UsageError(
                f"{name} {v} is not divisible by patch size x VAE factor = {patch} x {factor} = {step}; "
                f"use a multiple of {step}, or --resolution-binning to generate at the nearest "
                "aspect-ratio bucket and resize."
            )


@torch.inference_mode()
def encode_prompts(bundle: Bundle, prompts: list[str], negative: str, device) -> dict:
    """Text features of prompts and of the negative prompt (one row per prompt), on ``device``
    in the denoiser's dtype."""
    enc = bundle.text_encoder
    where = next(enc.parameters()).device
    cond, cmask = encode(bundle.tokenizer, enc, prompts, bundle.max_length, device=where,
                         to_cpu=False)  # fmt: skip
    # One negative row per prompt, encoded as one batch like the pipelines do: on a GPU, T5 at
    # batch 1 and at batch N can round differently in bf16, and the images would then differ.
    unc, umask = encode(bundle.tokenizer, enc, [negative] * len(prompts), bundle.max_length,
                        device=where, to_cpu=False)  # fmt: skip
    dtype = bundle.denoiser.dtype
    return {
        "cond": cond.to(device, dtype),
        "cond_mask": cmask.to(device),
        "uncond": unc.to(device, dtype),
        "uncond_mask": umask.to(device),
    }


def free_text_encoder(bundle: Bundle) -> None:
    """Drop the text encoder once prompts are encoded: denoising never needs it again."""
    bundle.text_encoder = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def micro_conditions(denoiser, height: int, width: int):
    """Fill PixArt's resolution and aspect-ratio conditions where the pipeline leaves them out."""
    if (
        not getattr(denoiser, "use_additional_conditions", False)
        or denoiser.config.sample_size == 128
    ):
        yield
        return

    def fill(module, args, kwargs):
        rows, dtype = args[0].shape[0], args[0].dtype
        kwargs["added_cond_kwargs"] = {
            "resolution": torch.tensor([[height, width]], dtype=dtype, device=args[0].device)
            .repeat(rows, 1),
            "aspect_ratio": torch.tensor([[height / width]], dtype=dtype, device=args[0].device)
            .repeat(rows, 1),
        }  # fmt: skip
        return args, kwargs

    handle = denoiser.register_forward_pre_hook(fill, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@torch.inference_mode()
def denoise(bundle: Bundle, emb: dict, seeds: list[int], *, height: int, width: int,
            steps: int = 20, guidance: float = 4.5, sampler: str = "dpm",
            device="cpu") -> torch.Tensor:  # fmt: skip
    """Images in [-1, 1] (B, 3, H, W) for a batch of prompt embeddings (one seed each)."""
    if steps < 2:  # the pipelines index a 1-step sample as (prev, x0), which DPM-Solver lacks
        raise UsageError(f"--steps {steps} must be at least 2")
    check_resolution(height, width, bundle.patch_size, bundle.vae_factor)
    pipe = diffusers_pipeline(bundle, make_scheduler(sampler, bundle.scheduler_config), text=False)
    b = emb["cond"].shape[0]
    kwargs = {
        "prompt_embeds": emb["cond"],
        "negative_prompt": None,  # PixArt's default is "", which may not come with embeddings
        "negative_prompt_embeds": emb["uncond"].expand(b, *emb["uncond"].shape[1:]),
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "generator": [torch.Generator(device).manual_seed(int(s)) for s in seeds],
        "height": height,
        "width": width,
        "output_type": "latent",
    }
    if bundle.kind == "pixart":
        kwargs.update(
            prompt_attention_mask=emb["cond_mask"],
            negative_prompt_attention_mask=emb["uncond_mask"].expand(b, -1),
            use_resolution_binning=False,
            clean_caption=False,
        )
    with micro_conditions(bundle.denoiser, height, width):
        latents = pipe(**kwargs).images
    return decode(bundle.autoencoder, latents)


def to_uint8(images: torch.Tensor):
    """[-1, 1] (B, 3, H, W) -> (B, H, W, 3) uint8, as diffusers' image processor does it (the
    [0, 1] mapping in the decoder's dtype, e.g. bf16, then float32, x 255, rounded)."""
    x = (images * 0.5 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).float().numpy()
    return (x * 255).round().astype("uint8")


def bucket_for(bundle: Bundle, height: int, width: int) -> tuple[int, int]:
    """The aspect-ratio bucket (of the model's native size) nearest ``height / width``."""
    return classify(
        height, width, buckets_for(bundle.native_size, bundle.patch_size * bundle.vae_factor)
    )


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

    ``embeddings`` (as :func:`encode_prompts` returns them, one row per prompt) skips the text
    encoder. ``resolution_binning`` (diffusers' ``use_resolution_binning``): denoise at the
    aspect-ratio bucket nearest the requested size, then resize to cover it and centre-crop.
    """
    if not prompts:
        raise UsageError("no prompts given: pass a prompt or a non-empty --prompts file")
    if len(seeds) != len(prompts):
        raise UsageError(f"{len(seeds)} seeds for {len(prompts)} prompts; give one seed per prompt")
    height, width = height or bundle.native_size, width or bundle.native_size
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
        batch = {
            "cond": emb["cond"][sl],
            "cond_mask": emb["cond_mask"][sl],
            "uncond": emb["uncond"][sl] if len(emb["uncond"]) > 1 else emb["uncond"],
            "uncond_mask": emb["uncond_mask"][sl] if len(emb["uncond_mask"]) > 1 else emb["uncond_mask"],
        }  # fmt: skip
        imgs = denoise(bundle, batch, seeds[sl], height=height, width=width, steps=steps,
                       guidance=guidance, sampler=sampler, device=device)  # fmt: skip
        if target is not None and target != (height, width):
            from diffusers.image_processor import PixArtImageProcessor

            imgs = PixArtImageProcessor.resize_and_crop_tensor(imgs, target[1], target[0])
        out.append(to_uint8(imgs))
        if on_batch is not None:
            on_batch(len(out[-1]))
    return np.concatenate(out)

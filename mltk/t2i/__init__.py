"""Shared text-to-image pieces on diffusers (extra ``t2i``: diffusers, transformers, tokenizers,
pillow), used by the pixart and geom-erasing plugins.

- ``pipeline_io``: PixArt-alpha and Stable Diffusion folders in the diffusers layout;
- ``objective``: the forward process and targets (eps, v, x0) from a scheduler config, the
  learned variance's VLB, per-pixel loss weights;
- ``text``: T5 (with mask) and CLIP (padded to 77) prompt encoding;
- ``sampling``: generation through diffusers' pipelines with classifier-free guidance and
  negative prompts;
- ``autoencoders``: pixel space (identity), the shipped tiny VAE, random and SD VAEs;
- ``buckets``: aspect-ratio buckets;
- ``features``: caption choice, batches, cached text features and latents;
- ``training``: ``train_denoiser``, the loop every plugin shares;
- ``evaluation``: the shapes world's attribute classifier (shipped), alignment, Fréchet distance
  and CLIP score.

These modules import torch and diffusers at module top: they are imported only inside command
bodies, never by ``mltk --help`` or a plugin's ``plugin.py``. This file stays import-free.
"""

from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"
TINY_MODEL = WEIGHTS / "tiny"  # the embedded tiny text-to-image model (a diffusers PixArt folder)

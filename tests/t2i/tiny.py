"""Tiny PixArt and Stable Diffusion bundles built from configs (random weights), for tests."""

from __future__ import annotations

import torch

from mltk.data import world as W
from mltk.t2i.autoencoders import build_autoencoder
from mltk.t2i.pipeline_io import Bundle
from mltk.t2i.text import build_text_encoder, t5_config
from mltk.vl.tokenizers import train_tokenizer
from mltk.vl.towers import clip_text_config

PIXART_SCHEDULER = {
    "num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear",
    "prediction_type": "epsilon", "algorithm_type": "dpmsolver++", "solver_order": 2,
    "timestep_spacing": "linspace", "steps_offset": 0,
}  # fmt: skip
SD_SCHEDULER = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "algorithm_type": "dpmsolver++",
    "solver_order": 2, "timestep_spacing": "leading", "steps_offset": 1,
}  # fmt: skip


def _jitter(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-zero weights everywhere, so every path matters
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return module


def pixart_bundle(seed: int = 0) -> Bundle:
    from diffusers import PixArtTransformer2DModel

    tok = train_tokenizer(W.corpus(), "t5")
    enc = build_text_encoder(t5_config(len(tok), 32, 1, 2, 64), seed=seed)
    torch.manual_seed(seed)
    tr = PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=16, in_channels=4,
                                  out_channels=8, num_layers=1, sample_size=16, patch_size=2,
                                  cross_attention_dim=32, caption_channels=32, norm_eps=1e-6)  # fmt: skip
    return Bundle("pixart", _jitter(tr, seed).eval(), enc, tok, build_autoencoder("tiny-kl", seed),
                  PIXART_SCHEDULER, max_length=20)  # fmt: skip


def sd_bundle(seed: int = 0) -> Bundle:
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    tok = train_tokenizer(W.corpus(), "clip")
    torch.manual_seed(seed)
    enc = CLIPTextModel(clip_text_config(tok, width=32, layers=1, heads=2)).eval()
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=8,
    )  # fmt: skip
    return Bundle("sd", _jitter(unet, seed).eval(), enc, tok, build_autoencoder("tiny-kl", seed),
                  SD_SCHEDULER, max_length=77)  # fmt: skip

"""The autoencoders a text-to-image model diffuses in.

- ``identity``: pixel-space diffusion, latents are the images in [-1, 1]. diffusers has no such
  class (its pipelines expect a VAE), so this one is ours, with the two calls the loops use.
- ``tiny``: a 2x ``AutoencoderKL`` (4 latent channels) trained on the shapes world and shipped
  with mltk (``weights/tiny-vae``), so the embedded tiny text-to-image model is an ordinary
  diffusers latent model that ``PixArtAlphaPipeline`` loads and decodes.
- ``tiny-kl``: the same architecture with random weights (for tests of the latent path).
- ``sd``: Stable Diffusion's VAE config (8x, 4 channels), for real-size models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mltk.errors import DataError, UsageError

TINY_VAE = Path(__file__).parent / "weights" / "tiny-vae"
FACTORS = {"identity": 1, "tiny": 2, "tiny-kl": 2, "sd": 8}


class IdentityAutoencoder(nn.Module):
    """Pixel-space diffusion: latents are the images in [-1, 1]."""

    factor = 1
    channels = 3
    scaling_factor = 1.0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z


def vae_config(kind: str) -> dict:
    """AutoencoderKL configs: ``sd`` is the SD/PixArt VAE (8x, 4 channels); ``tiny-kl`` is 2x."""
    if kind == "sd":
        return dict(
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            block_out_channels=[128, 256, 512, 512],
            layers_per_block=2,
            latent_channels=4,
            norm_num_groups=32,
            sample_size=512,
            scaling_factor=0.18215,
        )
    if kind == "tiny-kl":
        return dict(
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2,
            block_out_channels=[16, 32],
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=32,
            scaling_factor=1.0,
        )
    if kind == "tiny":  # no mid-block attention: 3x faster to train, as good on flat shapes
        return {**vae_config("tiny-kl"), "mid_block_add_attention": False}
    raise UsageError(f"autoencoder must be one of {', '.join(FACTORS)}; got {kind!r}.")


def latent_channels(kind: str) -> int:
    return 3 if kind == "identity" else 4


def build_autoencoder(kind: str, seed: int = 0):
    """The autoencoder of a kind: the shipped trained weights for ``tiny``, else from a config."""
    if kind == "identity":
        return IdentityAutoencoder()
    from diffusers import AutoencoderKL

    if kind == "tiny":
        return load_tiny_vae()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoencoderKL(**vae_config(kind)).eval().requires_grad_(False)


def load_tiny_vae():
    from diffusers import AutoencoderKL

    if not (TINY_VAE / "config.json").is_file():
        raise DataError(
            f"the shipped tiny VAE is missing ({TINY_VAE}); rebuild it with "
            "`python benchmarks/t2i/ship_tiny_vae.py`"
        )
    vae = AutoencoderKL.from_pretrained(
        str(TINY_VAE), use_safetensors=True, low_cpu_mem_usage=False
    )
    return vae.eval().requires_grad_(False)


def factor_of(autoencoder) -> int:
    """Pixels per latent pixel along a side."""
    if isinstance(autoencoder, IdentityAutoencoder):
        return 1
    return 2 ** (len(autoencoder.config.block_out_channels) - 1)


def encode_images(autoencoder, images: np.ndarray, device="cpu", batch: int = 64):
    """Posterior mean and std of every image (uint8 (N, H, W, 3)), scaled by the VAE's factor:
    (N, C, h, w) float32 on the CPU. Identity: the images in [-1, 1] with std 0."""
    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            if isinstance(autoencoder, IdentityAutoencoder):
                means.append(x)
                stds.append(torch.zeros_like(x))
                continue
            dist = autoencoder.encode(x.to(device)).latent_dist
            s = autoencoder.config.scaling_factor
            means.append(dist.mean.cpu() * s)
            stds.append(dist.std.cpu() * s)
    return torch.cat(means), torch.cat(stds)


@torch.inference_mode()
def decode(autoencoder, latents: torch.Tensor) -> torch.Tensor:
    """Latents -> images in [-1, 1] (B, 3, H, W)."""
    if isinstance(autoencoder, IdentityAutoencoder):
        return autoencoder.decode(latents)
    return autoencoder.decode(latents / autoencoder.config.scaling_factor, return_dict=False)[0]


def train_tiny_vae(images: np.ndarray, *, steps: int = 4000, batch: int = 64, lr: float = 2e-3,
                   kl_weight: float = 1e-6, seed: int = 0, log=None):  # fmt: skip
    """Train the ``tiny`` AutoencoderKL on uint8 images (N, 32, 32, 3): L1 + L2 reconstruction
    and a small KL, as Stable Diffusion's VAE without its GAN and perceptual terms (the world's
    flat shapes need neither). The scaling factor is set to 1 / std of the training latents, as
    Stable Diffusion's 0.18215 was, so latents reach the diffusion model at unit scale."""
    from diffusers import AutoencoderKL

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(**vae_config("tiny"))
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    opt = torch.optim.AdamW(vae.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    vae.train()
    for step in range(steps):
        x = x_all[torch.randint(0, len(x_all), (batch,), generator=g)]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        loss = (rec - x).abs().mean() + ((rec - x) ** 2).mean() + kl_weight * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step + 1) % 250 == 0:
            log(f"tiny VAE step {step + 1}/{steps}: loss {loss.item():.4f}")
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        lat = torch.cat(
            [vae.encode(x_all[i : i + 256]).latent_dist.mean for i in range(0, len(x_all), 256)]
        )
    vae.register_to_config(scaling_factor=float(1.0 / lat.std()))
    return vae

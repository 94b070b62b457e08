"""Train the tiny VAE shipped with mltk (mltk/t2i/weights/tiny-vae) and score it.

    OMP_NUM_THREADS=1 nice python benchmarks/t2i/ship_tiny_vae.py

A 2x AutoencoderKL (4 latent channels, ~160k parameters) trained on 6,000 images of the shapes
world (seed 0) with L1 + L2 reconstruction and a small KL (``mltk.t2i.autoencoders.
train_tiny_vae``). Prints and writes tiny_vae.json beside this file: the reconstruction PSNR on
1,000 held-out world images (seed 424242, 30% low quality) through the posterior mean, the
latents' scale, the time. The embedded tiny text-to-image model diffuses in its latents.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mltk.data import world as W
from mltk.t2i.autoencoders import TINY_VAE, train_tiny_vae

HERE = Path(__file__).resolve().parent


def psnr(vae, images: np.ndarray) -> float:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        rec = torch.cat([vae.decode(vae.encode(x[i : i + 250]).latent_dist.mean).sample
                         for i in range(0, len(x), 250)])  # fmt: skip
    mse = float(((rec.clamp(-1, 1) - x) ** 2).mean())
    return 10 * np.log10(4.0 / mse)  # peak-to-peak 2 on [-1, 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--images", type=int, default=6000)
    ap.add_argument("--out", type=Path, default=TINY_VAE)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.time()
    train = W.make_world(args.images, seed=0)
    vae = train_tiny_vae(train.images, steps=args.steps, log=print)
    seconds = time.time() - t0
    held = W.make_world(1000, seed=424242, low_quality_fraction=0.3)
    result = {
        "steps": args.steps,
        "train_images": args.images,
        "parameters": sum(p.numel() for p in vae.parameters()),
        "scaling_factor": vae.config.scaling_factor,
        "psnr_held_out_db": round(psnr(vae, held.images), 2),
        "psnr_train_db": round(psnr(vae, train.images[:1000]), 2),
        "seconds": round(seconds, 1),
        "world_version": W.WORLD_VERSION,
    }
    vae.save_pretrained(str(args.out), safe_serialization=True)
    (HERE / "tiny_vae.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

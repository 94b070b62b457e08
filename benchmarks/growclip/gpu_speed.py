"""Training images/s of a ViT-B/32-sized CLIP (random weights) before and after a width x2
growth, in one process: the check that waits for a GPU.

    python benchmarks/growclip/gpu_speed.py [--device cuda] [--precision bf16] [--batch 256]
        [--steps 20] [--tiny]

The model: vision 12 layers x 768 (patch 32, 224 px), text 12 layers x 512 (77 tokens),
projection 512, built by transformers from a CLIPConfig; grown by mltk's width x2 operator
(exact: heads x2 at the same head size). Each timing is AdamW steps of the contrastive loss
under autocast after 3 warm-up steps. --tiny shrinks everything to run on a CPU in seconds (the
test of this script). Prints a markdown table and writes gpu_speed.json beside this file
(not with --tiny). mltk need not be installed: run from the repository root
with plugins/ importable as mltk_plugins (see benchmarks/tensor/gpu_images.sh).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent


def build(tiny: bool):
    from transformers import CLIPConfig, CLIPModel

    if tiny:
        text = dict(
            hidden_size=32,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=16,
            vocab_size=64,
        )
        vision = dict(
            hidden_size=32,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
        proj = 32
    else:
        text = dict(
            hidden_size=512,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=8,
            max_position_embeddings=77,
            vocab_size=49408,
        )
        vision = dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=224,
            patch_size=32,
        )
        proj = 512
    text.update(eos_token_id=text["vocab_size"] - 1, bos_token_id=text["vocab_size"] - 2)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)
    return CLIPModel(cfg)


def speed(model, batch: int, steps: int, device, dtype) -> float:
    from mltk.vl.contrastive import info_nce

    model.to(device).train()
    vc, tc = model.config.vision_config, model.config.text_config
    px = torch.randn(batch, 3, vc.image_size, vc.image_size, device=device)
    ids = torch.randint(0, tc.vocab_size - 1, (batch, tc.max_position_embeddings), device=device)
    ids[:, -1] = tc.eos_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    auto = (
        torch.autocast(device.type, dtype=dtype)
        if dtype != torch.float32
        else torch.autocast(device.type, enabled=False)
    )

    def step():
        with auto:
            out = model(pixel_values=px, input_ids=ids)
            loss = info_nce(out.image_embeds, out.text_embeds, model.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    from mltk_plugins.growclip import growth as G

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    torch.manual_seed(0)
    base = build(args.tiny)
    grown = G.widen(base, 2)
    rows = []
    for name, model in (("ViT-B/32-sized", base), ("after width x2", grown)):
        ips = speed(model, args.batch, args.steps, device, dtype)
        rows.append({"model": name, "params": G.parameter_count(model), "images_per_s": ips})
        model.cpu()
    res = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "precision": args.precision,
        "batch": args.batch,
        "rows": rows,
    }
    if not args.tiny:  # the CPU smoke run writes nothing
        (HERE / "gpu_speed.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"| model | parameters | images/s ({res['device']}, {args.precision}) |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['images_per_s']:,.1f} |")


if __name__ == "__main__":
    main()

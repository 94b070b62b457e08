"""Training pairs/s of a ViT-B/16 + BERT-base ALBEF (random weights) with and without EPIC's
objective, in one process: EPIC's overhead, the check that waits for a GPU.

    python benchmarks/epic/gpu_speed.py [--device cuda] [--precision bf16] [--batch 64]
        [--steps 20] [--tiny]

The model is mltk's (plugins/epic/model.py): ViT-B/16 at 256 px, BERT-base split 6 + 6 into the
text tower and the fusion (ALBEF's), a generator a quarter of the width, queue 65,536, captions
of 30 tokens over BERT's 30,522-word vocabulary. Each timing is AdamW steps of the whole loss
(ITC + ITM + MLM, and for EPIC saliency, generator and consistency) under autocast after 3
warm-up steps. --tiny shrinks everything to run on a CPU in seconds (the test of this script).
Prints a markdown table and writes gpu_speed.json beside this file (not with --tiny).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent


class _Tokenizer:
    """What model.configs and objectives.Tokens read from a tokenizer, for a BERT vocabulary."""

    def __init__(self, vocab: int):
        self.vocab = vocab
        self.pad_token_id, self.unk_token_id, self.cls_token_id = 0, 100, 101
        self.sep_token_id, self.mask_token_id = 102, 103

    def __len__(self) -> int:
        return self.vocab


def build(tiny: bool, queue: int):
    from mltk_plugins.epic import model as M

    tok = _Tokenizer(200 if tiny else 30522)
    if tiny:
        sizes = dict(
            width=32,
            vision_layers=1,
            text_layers=1,
            fusion_layers=1,
            heads=2,
            patch=8,
            image_size=32,
        )
    else:
        sizes = dict(
            width=768,
            vision_layers=12,
            text_layers=6,
            fusion_layers=6,
            heads=12,
            patch=16,
            image_size=256,
        )
    cfgs = M.configs(tok, generator_fraction=0.25, max_positions=40, **sizes)
    for c in cfgs:
        c.intermediate_size = 4 * c.hidden_size
    model = M.EpicModel(*cfgs, embed_dim=256 if not tiny else 16, queue=queue)
    return model, tok


def speed(model, tok, objective: str, batch: int, steps: int, device, dtype) -> float:
    from mltk_plugins.epic import objectives as O
    from mltk_plugins.epic import training as T

    model.to(device).train()
    step_cfg = O.Step(tokens=O.Tokens.of(tok), objective=objective)
    T.trainable(model, step_cfg)
    size = model.vision.config.image_size
    g = torch.Generator(device="cpu").manual_seed(0)
    px = torch.randn(batch, 3, size, size, generator=g).to(device)
    ids = torch.randint(104, len(tok), (batch, 30), generator=g)  # past the special ids
    ids[:, 0], ids[:, -1] = tok.cls_token_id, tok.sep_token_id
    ids = ids.to(device)
    mask = torch.ones_like(ids)
    same = torch.eye(batch, dtype=torch.bool, device=device)
    batch_in = {"pixel_values": px, "input_ids": ids, "attention_mask": mask, "same_caption": same}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    auto = (
        torch.autocast(device.type, dtype=dtype)
        if dtype != torch.float32
        else torch.autocast(device.type, enabled=False)
    )

    def step():
        with auto:
            loss = model(batch_in, step_cfg)["loss"]
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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    queue = 4 * args.batch if args.tiny else 65536 - 65536 % args.batch
    rows = []
    for objective in ("albef", "epic"):
        torch.manual_seed(0)
        model, tok = build(args.tiny, queue)
        rate = speed(model, tok, objective, args.batch, args.steps, device, dtype)
        rows.append({"objective": objective, "pairs_per_s": rate})
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"| objective | pairs/s ({name}, {args.precision}, batch {args.batch}) |")
    print("| --- | --- |")
    for r in rows:
        print(f"| {r['objective']} | {r['pairs_per_s']:.1f} |")
    overhead = rows[0]["pairs_per_s"] / rows[1]["pairs_per_s"]
    print(f"\nEPIC's step takes {overhead:.2f}x ALBEF's")
    if not args.tiny:
        res = {
            "device": name,
            "precision": args.precision,
            "batch": args.batch,
            "steps": args.steps,
            "rows": rows,
            "epic_over_albef": overhead,
        }
        (HERE / "gpu_speed.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Pre-training ALBEF (and EPIC on top): batches, the optimizer, the loop.

AdamW (lr 1e-4, weight decay 0.02 except on biases and norms, as ALBEF through timm), cosine
schedule after a linear warm-up down to a tenth of the peak (ALBEF: 1e-4 to 1e-5); momentum
distillation's ``alpha`` ramps in over the first epoch (ALBEF: ``alpha * min(1, i / len)``).
Parts an objective does not use are frozen, so that DDP sees a gradient for every trainable
parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .config import OBJECTIVES
from .data import Pairs
from .objectives import Step, Tokens

TEXT_LENGTH = 30  # ALBEF's max_words


def text_length(model) -> int:
    return min(TEXT_LENGTH, model.text.config.max_position_embeddings)


def tokens(tokenizer, captions: list[str], length: int, device=None) -> dict:
    t = tokenizer(
        captions, padding="longest", truncation=True, max_length=length, return_tensors="pt"
    )
    return {
        "input_ids": t["input_ids"].to(device),
        "attention_mask": t["attention_mask"].to(device),
    }


def same_captions(captions: list[str], device=None) -> torch.Tensor:
    """(B, B) True where two captions of the batch are the same text."""
    keys = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    ids = torch.tensor([keys[c] for c in captions], device=device)
    return ids[:, None] == ids[None, :]


def trainable(model, step: Step) -> None:
    """Freeze what the step does not use (DDP wants a gradient for every trainable tensor)."""
    extra = OBJECTIVES[step.objective]
    use = {
        "vision": True,
        "text": True,
        "vision_proj": step.itc,
        "text_proj": step.itc,
        "temp": step.itc,
        "itm_head": step.itm,
        "mlm_head": step.mlm or (extra is not None and extra[2] == "mlm"),
        "token_head": extra is not None and extra[2] == "consistency",
        "generator": extra is not None and extra[2] == "consistency" and (step.replacement == "lm"),
        "fusion": step.itm or step.mlm or extra is not None,
    }
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        if top.endswith("_m"):
            continue  # momentum copies never take gradients
        on = use.get(top, True)
        if name.startswith("fusion.embeddings."):
            on = False  # the fusion reads the text tower's states, never its own embeddings
        if name == "mlm_head.predictions.bias":
            on = False  # BLIP's head keeps this beside its decoder's own bias and never reads it
        p.requires_grad_(on)


def param_groups(model, weight_decay: float):
    decay, flat = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (flat if p.ndim < 2 or name == "temp" else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": flat, "weight_decay": 0.0},
    ]


def step_of(cfg, tokenizer, dist=None) -> Step:
    return Step(
        tokens=Tokens.of(tokenizer),
        objective=cfg.objective,
        alpha=cfg.alpha,
        saliency=cfg.saliency,
        mask_ratio=cfg.mask_ratio,
        replacement=cfg.replacement,
        epic_weight=cfg.epic_weight,
        itc=cfg.itc,
        itm=cfg.itm,
        mlm=cfg.mlm,
        dist=dist if dist is not None and dist.enabled else None,
    )


def make_optimizer(model, cfg):
    """AdamW over the parameters the objective trains (call after :func:`trainable`)."""
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))


@dataclass
class Schedule:
    steps: int
    lr: float
    warmup: float = 0.05
    min_ratio: float = 0.1

    def at(self, step: int) -> float:
        warm = int(round(self.warmup * self.steps))
        if step < warm:
            return self.lr * (step + 1) / warm
        t = (step - warm) / max(1, self.steps - warm)
        floor = self.lr * self.min_ratio
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def batches(pairs: Pairs, batch: int, steps: int, rng, rank=0, world=1, start=0):
    """(step, images, captions) of this rank's share of each global batch; epochs are
    permutations of the pairs, one caption drawn per image. Draws of steps before ``start``
    are made and skipped (a resumed run sees the same stream)."""
    order: list[int] = []
    for step in range(steps):
        while len(order) < batch:
            order += list(rng.permutation(len(pairs)))
        idx, order = order[:batch], order[batch:]
        caps = [pairs.captions[i][int(rng.integers(len(pairs.captions[i])))] for i in idx]
        if step < start:
            continue
        mine = slice(rank * batch // world, (rank + 1) * batch // world)
        yield step, pairs.images[idx][mine], caps[mine]


def train(
    model,
    tokenizer,
    pairs: Pairs,
    cfg,
    *,
    rt,
    seed: int,
    start: int = 0,
    optimizer=None,
    on_step=None,
) -> dict:
    """``cfg.steps`` steps of the objective. ``on_step(step, optimizer, row)`` is called after
    every step (checkpoints, metrics)."""
    from mltk.errors import DivergedError

    device = rt.device
    dist = rt.dist
    rank, world = (dist.rank, dist.world_size) if dist.enabled else (0, 1)
    if cfg.batch % world:
        from mltk.errors import UsageError

        raise UsageError(f"--batch {cfg.batch} does not split over {world} processes")
    step_cfg = step_of(cfg, tokenizer, dist)
    trainable(model, step_cfg)
    wrapped = dist.wrap(model) if dist.enabled else model
    opt = optimizer or make_optimizer(model, cfg)
    sched = Schedule(cfg.steps, cfg.lr, cfg.warmup)
    per_epoch = max(1, len(pairs) // cfg.batch)
    rng = np.random.default_rng(seed)
    length = text_length(model)
    rows: list[dict] = []
    model.train()
    for step, imgs, caps in batches(pairs, cfg.batch, cfg.steps, rng, rank, world, start):
        for g in opt.param_groups:
            g["lr"] = sched.at(step)
        step_cfg.alpha = cfg.alpha * min(1.0, (step + 1) / per_epoch)
        batch = {
            "pixel_values": model.pixels(imgs),
            **tokens(tokenizer, caps, length, device),
            "same_caption": same_captions(caps, device),
        }
        with rt.autocast():
            out = wrapped(batch, step_cfg)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise DivergedError(f"the loss became {loss.item()} at step {step + 1}; lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        row = {
            k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1
        }
        rows.append(row)
        if on_step is not None:
            on_step(step + 1, opt, row)
    model.eval()
    tail = rows[-max(1, len(rows) // 10) :]
    keys = sorted({k for r in tail for k in r})
    return {
        "optimizer": opt,
        "last": {k: float(np.nanmean([r.get(k, np.nan) for r in tail])) for k in keys},
    }

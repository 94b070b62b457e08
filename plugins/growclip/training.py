"""Contrastive training, evaluation and FLOP counts for GrowCLIP's models.

The model is transformers' ``CLIPModel``; the loss is CLIP's symmetric InfoNCE with the learnable
logit scale (``mltk.vl.contrastive``; the scale is clamped at 100), gathered across ranks under
DDP so that every rank's images meet every rank's texts (one global contrastive batch). AdamW
(betas 0.9/0.98, eps 1e-6, weight decay 0.1 except on gains, biases, embeddings and the scale),
cosine schedule with linear warm-up; each batch mixes the new arrival's pairs with a ``replay``
share of the pairs seen before.

FLOPs: torch's ``FlopCounterMode`` on one image and one caption (the padded length used in
training) through both towers; a training step counts three forward passes (forward and
backward) per pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from transformers import CLIPModel

from mltk.vl.contrastive import LOGIT_SCALE_MAX, info_nce
from mltk.vl.retrieval import class_embeddings, recall_at_k, zero_shot_accuracy

from .data import Benchmark, Pairs

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)  # CLIP's
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
TEXT_LENGTH = 16  # the embedded captions' padded length (the longest world caption is 12)


def pixels(images: np.ndarray, device=None, dtype=torch.float32) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - MEAN) / STD
    return x.to(device=device, dtype=dtype)


def tokens(tokenizer, captions: list[str], length: int, device=None) -> dict:
    t = tokenizer(
        captions, padding="max_length", truncation=True, max_length=length, return_tensors="pt"
    )
    return {
        "input_ids": t["input_ids"].to(device),
        "attention_mask": t["attention_mask"].to(device),
    }


def text_length(model: CLIPModel) -> int:
    return min(TEXT_LENGTH, model.config.text_config.max_position_embeddings)


# ----------------------------------------------------------------------------- FLOPs


def flops_per_pair(model: CLIPModel, length: int) -> float:
    """Forward FLOPs of one image and one caption of ``length`` tokens (multiply-add = 2).

    Counted with eager attention: ``FlopCounterMode`` has no formula for the CPU kernel of
    ``scaled_dot_product_attention`` and would leave the attention products out."""
    from torch.utils.flop_counter import FlopCounterMode

    vc = model.config.vision_config
    device = next(model.parameters()).device
    img = torch.zeros(1, 3, vc.image_size, vc.image_size, device=device)
    ids = torch.ones(1, length, dtype=torch.long, device=device)
    configs = [model.config, model.config.text_config, model.config.vision_config]
    configs += [
        m.config for m in model.modules() if hasattr(m, "config") and m.config not in configs
    ]
    saved = [c._attn_implementation for c in configs]
    counter = FlopCounterMode(display=False)
    try:
        for c in configs:
            c._attn_implementation = "eager"
        with torch.no_grad(), counter:
            model.get_image_features(pixel_values=img)
            model.get_text_features(input_ids=ids, attention_mask=torch.ones_like(ids))
    finally:
        for c, impl in zip(configs, saved):
            c._attn_implementation = impl
    return float(counter.get_total_flops())


# ----------------------------------------------------------------------------- loss


def contrastive_loss(model, batch: dict, dist=None) -> torch.Tensor:
    """InfoNCE of a batch through the (possibly DDP-wrapped) model's forward."""
    out = model(**batch, return_loss=False)
    core = model.module if hasattr(model, "module") else model
    return info_nce(out.image_embeds, out.text_embeds, core.logit_scale, dist=dist)


def _param_groups(model: CLIPModel, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        flat = p.ndim < 2 or "embedding" in name or name == "logit_scale"
        (no_decay if flat else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@dataclass
class TrainSettings:
    steps: int
    batch: int
    lr: float
    warmup: float = 0.1  # share of the steps
    replay: float = 0.5  # share of each batch drawn from earlier arrivals
    weight_decay: float = 0.1
    clip: float = 1.0


def lr_at(step: int, s: TrainSettings) -> float:
    warm = max(1, int(round(s.warmup * s.steps)))
    if step < warm:
        return s.lr * (step + 1) / warm
    t = (step - warm) / max(1, s.steps - warm)
    return s.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def batches(
    new: Pairs, old: Pairs | None, s: TrainSettings, rng: np.random.Generator, rank=0, world=1
):
    """Index draws for each step: (images, one caption per image) of the global batch, this
    rank's share."""
    n_old = 0 if old is None or len(old) == 0 else int(round(s.replay * s.batch))
    n_new = s.batch - n_old
    for _ in range(s.steps):
        pick_new = rng.integers(0, len(new), n_new)
        pick_old = rng.integers(0, len(old), n_old) if n_old else np.zeros(0, np.int64)
        images = np.concatenate([new.images[pick_new]] + ([old.images[pick_old]] if n_old else []))
        caps = [new.captions[i] for i in pick_new] + (
            [old.captions[i] for i in pick_old] if n_old else []
        )
        caps = [c[int(rng.integers(0, len(c)))] for c in caps]
        mine = slice(rank * s.batch // world, (rank + 1) * s.batch // world)
        yield images[mine], caps[mine]


def train(
    model: CLIPModel,
    tokenizer,
    new: Pairs,
    old: Pairs | None,
    s: TrainSettings,
    *,
    rt=None,
    seed: int = 0,
    log_every: int = 0,
    log=None,
    state=None,
    stop: int | None = None,
) -> dict:
    """``s.steps`` AdamW steps on ``new`` with a ``replay`` share of ``old``. ``state`` (an
    optimizer state dict and the step reached) resumes; ``stop`` ends early (the schedule
    stays that of ``s.steps``: a search's proxy steps are the winner's first). Returns the mean loss of the last
    tenth of the steps and the optimizer's state."""
    from mltk.errors import DivergedError

    device = next(model.parameters()).device
    dist = rt.dist if rt is not None else None
    rank, world = (dist.rank, dist.world_size) if dist is not None and dist.enabled else (0, 1)
    wrapped = dist.wrap(model) if dist is not None and dist.enabled else model
    opt = torch.optim.AdamW(
        _param_groups(model, s.weight_decay), lr=s.lr, betas=(0.9, 0.98), eps=1e-6
    )
    start = 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
    rng = np.random.default_rng(seed)
    length = text_length(model)
    losses = []
    model.train()
    autocast = rt.autocast() if rt is not None else _null()
    for step, (imgs, caps) in enumerate(batches(new, old, s, rng, rank, world)):
        if step < start:
            continue
        if stop is not None and step >= stop:
            break  # the draws of the steps done are replayed: the stream stays the same
        for g in opt.param_groups:
            g["lr"] = lr_at(step, s)
        batch = {"pixel_values": pixels(imgs, device), **tokens(tokenizer, caps, length, device)}
        with autocast:
            loss = contrastive_loss(wrapped, batch, dist if world > 1 else None)
        if not torch.isfinite(loss):
            raise DivergedError(f"the loss became {loss.item()} at step {step}; lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(max=math.log(LOGIT_SCALE_MAX))
        losses.append(loss.item())
        if log and log_every and (step + 1) % log_every == 0:
            log(f"step {step + 1}/{s.steps}: loss {np.mean(losses[-log_every:]):.3f}")
    model.eval()
    tail = losses[-max(1, len(losses) // 10) :] if losses else [float("nan")]
    return {
        "loss": float(np.mean(tail)),
        "optimizer": opt.state_dict(),
        "step": s.steps if stop is None else min(stop, s.steps),
    }


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def encode_images(model: CLIPModel, images: np.ndarray, batch: int = 256) -> np.ndarray:
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        f = model.get_image_features(pixel_values=pixels(images[i : i + batch], device))
        out.append(_tensor(f).float().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def encode_texts(model: CLIPModel, tokenizer, texts: list[str], batch: int = 512) -> np.ndarray:
    device = next(model.parameters()).device
    length = text_length(model)
    out = []
    for i in range(0, len(texts), batch):
        f = model.get_text_features(**tokens(tokenizer, texts[i : i + batch], length, device))
        out.append(_tensor(f).float().cpu().numpy())
    return np.concatenate(out)


def _tensor(f):
    return f if isinstance(f, torch.Tensor) else f.pooler_output


def class_texts(model: CLIPModel, tokenizer, prompts: list[list[str]]) -> np.ndarray:
    """(C, D) unit class embeddings: each class's prompts encoded, normalised, averaged and
    normalised again (CLIP's prompt ensemble; classes may have different numbers of prompts)."""
    txt = encode_texts(model, tokenizer, [p for ps in prompts for p in ps])
    bounds = np.cumsum([0] + [len(ps) for ps in prompts])
    return np.concatenate(
        [class_embeddings(txt[None, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    )


def evaluate(model: CLIPModel, tokenizer, bench: Benchmark) -> dict:
    """Zero-shot top-1 per task and their mean; retrieval R@1/5 both ways."""
    model.eval()
    out = {}
    accs = []
    for task in bench.tasks:
        img = encode_images(model, task.images)
        prompt_emb = class_texts(model, tokenizer, task.prompts)[:, None, :]
        acc = zero_shot_accuracy(img, prompt_emb, task.labels)
        out[f"zero_shot_{task.name}"] = acc
        accs.append(acc)
    out["zero_shot_mean"] = float(np.mean(accs)) if accs else float("nan")
    if bench.retrieval is not None and len(bench.retrieval):
        r = bench.retrieval
        img = encode_images(model, r.images)
        texts = [c for cs in r.captions for c in cs]
        owner = np.array([i for i, cs in enumerate(r.captions) for _ in cs])
        txt = encode_texts(model, tokenizer, texts)
        img = img / np.linalg.norm(img, axis=1, keepdims=True)
        txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
        out.update(recall_at_k(img @ txt.T, owner, ks=(1, 5)))
    return out

"""``train_denoiser``: the training loop every text-to-image plugin shares.

One loop for a PixArt transformer, a Stable Diffusion UNet or a class-conditional DiT (through
:func:`denoise`, one call for all three): AdamW over the given parameter groups, linear warm-up
(``torch.optim.lr_scheduler.LambdaLR``), gradient clipping, autocast, DDP through the runtime,
EMA weights (diffusers' ``EMAModel``), cached text features and latents (re-requested once per
epoch through the caller's ``epoch_data``), checkpoints every ``save_every`` steps and resume.
Beyond what diffusers' training scripts do, and why it is here:

- a per-pixel loss-weight map per sample (``weight_map``), e.g. more weight inside boxes;
- parameter groups (``params``): e.g. the denoiser plus only some token-embedding rows, with a
  gradient mask that keeps every other row of the table bit-identical;
- text encoded in the graph (``live_text``) when token embeddings train, else cached features;
- an optional frozen ``teacher`` whose predictions make the target (``target_fn``), e.g. ESD's
  negatively guided target;
- ``on_log``: extra numbers at each logged step (pixart's ``text_gap`` health check, probes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mltk.errors import DivergedError

from .features import choose_captions, epoch_batches
from .objective import Diffusion

CLASS_DROPOUT = 0.1  # DiT's label dropout for classifier-free guidance


@dataclass
class Settings:
    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    warmup: int = 0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    vlb_weight: float = 1.0
    log_every: int = 50
    save_every: int = 500
    caption_mode: str = "dense"
    caption_dropout: float = 0.1
    gradient_checkpointing: bool = False


@dataclass
class Captions:
    """Every distinct caption (``""`` first: the dropped one) and each row's short and dense
    caption indices (see ``features.caption_table``); ``classes``: stage-1 labels, if any."""

    texts: list[str]
    short: np.ndarray
    dense: np.ndarray
    classes: np.ndarray | None = None


@dataclass
class Result:
    model: torch.nn.Module  # the trained module, EMA weights not applied
    ema: object
    history: list[dict] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0

    def ema_model(self) -> torch.nn.Module:
        """A copy of the model holding the EMA weights (what is exported and sampled)."""
        import copy

        out = copy.deepcopy(self.model)
        self.ema.copy_to(out.parameters())
        return out


def kind_of(module) -> str:
    name = type(getattr(module, "module", module)).__name__
    return {"DiTTransformer2DModel": "dit", "UNet2DConditionModel": "unet"}.get(name, "pixart")


def denoise(module, x, t, *, text=None, mask=None, labels=None, factor: int = 1):
    """One call for every backbone: the prediction (C or 2C channels) for x_t at steps t."""
    base = getattr(module, "module", module)  # under DDP
    kind = kind_of(base)
    if kind == "dit":
        return module(x, t, class_labels=labels, return_dict=False)[0]
    if kind == "unet":
        return module(x, t, encoder_hidden_states=text, return_dict=False)[0]
    added = {"resolution": None, "aspect_ratio": None}
    if base.use_additional_conditions:  # the 1024 model's micro-conditions: the batch's size
        b, h, w = x.shape[0], x.shape[-2] * factor, x.shape[-1] * factor
        added = {
            "resolution": torch.tensor([[float(h), float(w)]], device=x.device).repeat(b, 1),
            "aspect_ratio": torch.full((b, 1), h / w, device=x.device),
        }
    return module(x, encoder_hidden_states=text, encoder_attention_mask=mask, timestep=t,
                  added_cond_kwargs=added, return_dict=False)[0]  # fmt: skip


def make_ema(model: torch.nn.Module, decay: float):
    """diffusers' EMAModel: decay min(decay, (1 + n) / (10 + n)) after the n-th update past the
    first (which copies), so a short run averages over a horizon that grows with it."""
    from diffusers.training_utils import EMAModel

    return EMAModel(model.parameters(), decay=decay, min_decay=0.0, use_ema_warmup=False)


def row_mask(table: torch.nn.Parameter, rows) -> Callable:
    """A gradient hook that zeroes every row of an embedding table but ``rows``: with it (and no
    weight decay on the group) the other rows stay bit-identical through AdamW steps."""
    keep = torch.zeros(table.shape[0], 1, dtype=table.dtype, device=table.device)
    keep[list(rows)] = 1
    return table.register_hook(lambda g: g * keep)


def train_denoiser(
    model: torch.nn.Module,
    *,
    epoch_data: Callable[[], tuple[dict | None, list[dict]]],
    offsets: np.ndarray,
    captions: Captions,
    objective: Diffusion,
    settings: Settings,
    rt,
    run,
    resume: bool = False,
    params: list[dict] | None = None,
    live_text: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]] | None = None,
    weight_map: Callable[[np.ndarray, tuple], torch.Tensor] | None = None,
    teacher: torch.nn.Module | None = None,
    target_fn: Callable | None = None,
    factor: int = 1,
    null_label: int = 0,
    sample_latents: bool = False,
    on_log: Callable[[torch.nn.Module, dict], dict] | None = None,
    meta: dict | None = None,
    seed: int = 0,
) -> Result:
    """Train ``model`` on the rows of ``captions`` (grouped by ``offsets``: a batch never mixes
    groups, e.g. aspect-ratio buckets).

    ``epoch_data()`` returns, once per epoch, the cached text table ({"feats", "mask"} over
    ``captions.texts``, or None with ``live_text``) and each group's latents ({"mean", "std"});
    with ``sample_latents`` x_0 is drawn from the autoencoder's posterior. ``live_text(texts)``
    encodes captions in the graph. ``captions.classes`` are class labels (a DiT), dropped to
    ``null_label`` 10% of the time. ``weight_map(rows, latent_shape)`` gives (B, 1|C, h, w)
    loss weights (see ``Diffusion.losses``). ``target_fn(teacher, x_t, t, x_0, noise, cond)``
    returns the target instead of the diffusion objective's (the loss is then the squared error
    to it). ``on_log(model, ctx)`` returns numbers to add to each logged row (``ctx``: the step, the
    epoch's latents and text table, the EMA). Checkpoints go through
    ``run.save_state`` with ``meta``; with ``resume`` the run's last checkpoint is restored.
    """
    out, dev, dist = rt.out, rt.device, rt.dist
    model = model.to(dev)
    if settings.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    groups = params or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    opt = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = max(1, settings.warmup)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
    ema = make_ema(model, settings.ema_decay)
    start = 0
    if resume:
        state = run.restore_state(model=model, optimizer=opt, scheduler=sched, log=out.log)
        start = int(state["step"])
        shadow = state["extra_tensors"]
        names = [n for n, _ in model.named_parameters()]
        ema.load_state_dict(
            {**state["ema"], "shadow_params": [shadow[f"ema.{n}"].to(dev) for n in names]}
        )
        if start >= settings.steps:
            out.warn(f"that run had already reached step {start}; raise --steps to train longer")
    wrapped = dist.wrap(model)
    rng = np.random.default_rng(seed + 1000 * start + dist.rank)  # captions, labels
    # the batch order is the same on every rank, and each rank takes its own part of each batch
    order_rng = np.random.default_rng([seed, start, 7919])
    gen = torch.Generator().manual_seed(seed + 7 + 1000 * start + dist.rank)
    classes = torch.from_numpy(captions.classes) if captions.classes is not None else None

    def x0_of(lat, rows):
        """Latents of ``rows`` (all from one group)."""
        g = int(np.searchsorted(offsets, rows[0], side="right") - 1)
        local = np.asarray(rows) - offsets[g]
        mean = torch.from_numpy(lat[g]["mean"][local])
        if sample_latents:
            mean = mean + torch.from_numpy(lat[g]["std"][local]) * torch.randn(
                mean.shape, generator=gen
            )
        return mean.to(dev)

    def save(step: int) -> None:
        names = [n for n, _ in model.named_parameters()]  # EMAModel keeps them in this order
        tensors = {f"ema.{n}": p.detach().clone() for n, p in zip(names, ema.shadow_params)}
        ema_state = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
        run.save_state(model=model, optimizer=opt, scheduler=sched, step=step,
                       meta={**(meta or {}), "ema": ema_state}, extra_tensors=tensors)  # fmt: skip
        dist.barrier()

    steps_per_epoch = len(
        epoch_batches(offsets, settings.batch_size, np.random.default_rng(0), dist.world_size)
    )
    step, epoch, t0, history = start, start // steps_per_epoch, time.time(), []
    model.train()
    with out.progress(settings.steps - start, "training") as bar:
        while step < settings.steps:
            table, lat = epoch_data()  # a cache build on the first request, hits afterwards
            if table is not None:
                feats, fmask = torch.from_numpy(table["feats"]), torch.from_numpy(table["mask"])
            for batch in epoch_batches(offsets, settings.batch_size, order_rng, dist.world_size):
                if step >= settings.steps:
                    break
                batch = np.array_split(batch, dist.world_size)[dist.rank]
                x0 = x0_of(lat, batch)
                t = torch.randint(0, objective.T, (len(batch),), generator=gen).to(dev)
                noise = torch.randn(x0.shape, generator=gen).to(dev)
                xt = objective.q_sample(x0, t, noise)
                cap = choose_captions(settings.caption_mode, captions.short[batch],
                                      captions.dense[batch], rng, settings.caption_dropout)  # fmt: skip
                labels = None
                if classes is not None:
                    labels = classes[batch].clone()
                    labels[torch.from_numpy(rng.random(len(batch)) < CLASS_DROPOUT)] = null_label
                    labels = labels.to(dev)
                if live_text is not None:
                    text, mask = live_text([captions.texts[i] for i in cap])
                else:
                    text, mask = feats[cap].to(dev, x0.dtype), fmask[cap].to(dev)
                with rt.autocast():
                    o = denoise(wrapped, xt, t, text=text, mask=mask, labels=labels, factor=factor)
                weights = weight_map(batch, tuple(x0.shape)) if weight_map is not None else None
                if target_fn is not None:
                    target = target_fn(teacher, xt, t, x0, noise, {"text": text, "mask": mask})
                    c = x0.shape[1]
                    err = (o[:, :c].float() - target.float()) ** 2
                    err = err * weights.to(err) if weights is not None else err
                    terms = {"mse": err.flatten(1).mean(1)}
                    terms["loss"] = terms["mse"]
                else:
                    terms = objective.losses(o.float(), x0, xt, t, noise, settings.vlb_weight,
                                             weight=weights)  # fmt: skip
                loss = terms["loss"].mean()
                if not torch.isfinite(loss):
                    raise DivergedError(f"the loss became {loss.item()} at step {step}; lower --lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(
                    [p for g in groups for p in g["params"]], settings.grad_clip
                )
                opt.step()
                sched.step()
                ema.step(model.parameters())
                step += 1
                bar.advance(1, loss=round(loss.item(), 4))
                if step % settings.log_every == 0 or step == settings.steps:
                    row = {
                        "epoch": epoch,
                        "loss": dist.all_reduce_mean(loss.detach()).item(),
                        "mse": terms["mse"].mean().item(),
                        "vlb": terms["vlb"].mean().item() if "vlb" in terms else 0.0,
                        "grad_norm": float(gnorm),
                        "lr": sched.get_last_lr()[0],
                    }
                    if on_log is not None:
                        ctx = {"step": step, "latents": lat, "ema": ema}
                        if table is not None:
                            ctx.update(feats=feats, mask=fmask)
                        model.eval()
                        row.update(on_log(model, ctx))
                        model.train()
                    row["seconds"] = round(time.time() - t0, 2)
                    history.append({"step": step, **row})
                    run.log_metrics(step, **row)
                    out.log(
                        f"step {step}/{settings.steps} loss {row['loss']:.4f}"
                        + (f" text_gap {row['text_gap']:+.4f}" if "text_gap" in row else "")
                    )
                if step % settings.save_every == 0 or step == settings.steps:
                    save(step)
            epoch += 1
    model.eval()
    return Result(model=model, ema=ema, history=history, steps=step, seconds=time.time() - t0)


def steps_to_score(history: list[dict], key: str, threshold: float) -> int | None:
    for row in history:
        if row.get(key, -math.inf) >= threshold:
            return int(row["step"])
    return None

"""The three-stage training recipe (Sec. 2.2) behind ``mltk pixart train --stage ...``.

1. ``pixel``: pixel dependency, a class-conditional DiT (here on the world's colour x shape
   classes; labels dropped 10% of the time for guidance).
2. ``align``: text-image alignment, the PixArt transformer initialised from stage 1 by
   :func:`.model.reparameterize` (or from scratch without ``--init``), trained on captions.
3. ``aesthetic``: fine-tuning of a stage-2 model on the high-quality subset at a lower rate.

Shared machinery: AdamW, linear warm-up, EMA weights, gradient clipping, bf16 autocast on GPU,
gradient checkpointing, caption dropout for guidance, cached T5 features and latents, DDP through
the core, checkpoints every ``save_every`` steps and ``--resume``. Every ``log_every`` steps the
health check logs ``text_gap``: the denoising error on a fixed batch with the empty caption minus
the error with the true caption, > 0 once the model uses the text.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from mltk.errors import DataError, DivergedError, UsageError

from . import model as M
from . import text as T
from . import world as W
from .config import STAGE_OVERRIDES, PixArtConfig
from .data import (
    BucketedImages,
    CaptionedImages,
    FeatureStore,
    caption_table,
    choose_captions,
    module_fingerprint,
)
from .objective import Diffusion, scheduler_config

CLASS_DROPOUT = 0.1  # DiT's label dropout for classifier-free guidance


def quiet_libraries() -> None:
    """diffusers/transformers print loading bars and advice on stderr; mltk owns stderr."""
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings(
        "ignore", message=".*torch_dtype.*"
    )  # renamed in diffusers 0.36+; both work
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


# ----------------------------------------------------------------------------- components


def world_text_components(cfg: PixArtConfig):
    """The embedded world's tokenizer (trained on its captions) and frozen tiny T5 encoder."""
    tok = T.train_tokenizer(W.corpus())
    enc = T.build_text_encoder(
        T.t5_config(len(tok), cfg.text_dim, cfg.text_layers, cfg.text_heads, cfg.text_ff),
        seed=cfg.text_seed,
    )
    return tok, enc


class EMA:
    """Exponential moving average of the weights (what gets exported and sampled from)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # short runs: average over a warm-up horizon
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: torch.nn.Module) -> torch.nn.Module:
        out = copy.deepcopy(model)
        out.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})
        return out


def _lr_lambda(warmup: int):
    return lambda step: min(1.0, (step + 1) / max(1, warmup))


# ----------------------------------------------------------------------------- the loop


def _encode_latents_fn(autoencoder, device):
    @torch.no_grad()
    def encode_fn(images: np.ndarray):
        means, stds = [], []
        for i in range(0, len(images), 64):
            x = torch.from_numpy(images[i : i + 64]).permute(0, 3, 1, 2).float() / 127.5 - 1
            if isinstance(autoencoder, M.IdentityAutoencoder):
                means.append(x)
                stds.append(torch.zeros_like(x))
                continue
            dist = autoencoder.encode(x.to(device)).latent_dist
            s = autoencoder.config.scaling_factor
            means.append(dist.mean.cpu() * s)
            stds.append(dist.std.cpu() * s)
        return torch.cat(means), torch.cat(stds)

    return encode_fn


def load_init(path: Path):
    """An ``--init`` source: a run folder of this plugin (its checkpoint and config)."""
    from mltk.checkpoint import load_checkpoint
    from mltk.runs import RunDir

    run = RunDir.open(path, plugin="pixart")
    tensors, meta = load_checkpoint(run.checkpoint_dir)
    ema = {k[len("extra.ema.") :]: v for k, v in tensors.items() if k.startswith("extra.ema.")}
    weights = ema or {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    return run, weights, meta


def build_for_stage(cfg: PixArtConfig, init: Path | None, seed: int, log):
    """The model a stage trains, initialised as the recipe says."""
    if cfg.stage == "pixel":
        if init is not None:
            raise UsageError(
                "--stage pixel trains the class-conditional model from scratch; drop --init"
            )
        return M.build_dit(cfg, seed=seed), "dit"
    if init is None:
        if cfg.stage == "aesthetic":
            raise UsageError(
                "--stage aesthetic fine-tunes a stage-2 model: pass --init RUN_FOLDER of an align run"
            )
        log("stage align without --init: text-conditional training from scratch (no stage-1 seed)")
        return M.build_pixart(cfg, seed=seed), "pixart"
    run, weights, meta = load_init(init)
    kind = meta.get("kind")
    if cfg.stage == "align" and kind == "dit":
        dit = M.build_dit(cfg, seed=seed)
        dit.load_state_dict(weights)
        M.tie_dit_embedders(dit)
        log(
            f"re-parameterised the stage-1 model of {init} into adaLN-single (t = {M.REPARAM_TIMESTEP})"
        )
        return M.reparameterize(dit, cfg, seed=seed), "pixart"
    if kind == "pixart":
        model = M.build_pixart(cfg, seed=seed)
        own = model.state_dict()
        key = "pos_embed.pos_embed"  # fixed sin-cos table: rebuilt for a new resolution (stage 3)
        if key in weights and key in own and weights[key].shape != own[key].shape:
            log(f"training at {cfg.image_size}px: position embeddings rebuilt for the new size")
            weights = {**weights, key: own[key]}
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise DataError(
                f"--init {init} does not match this configuration: {str(exc).splitlines()[0]}"
            ) from exc
        return model, "pixart"
    raise DataError(
        f"--init {init} holds a {kind!r} model, which stage {cfg.stage} cannot start from"
    )


def run_training(
    cfg: PixArtConfig,
    data: CaptionedImages,
    *,
    run,
    rt,
    init: Path | None = None,
    resume: bool = False,
    store: FeatureStore | None = None,
    text_components=None,
    probe=None,
    probe_every: int = 0,
    pretrained=None,
) -> dict:
    """Train one stage; returns a summary (also written to the run folder).

    ``probe(bundle) -> dict``, when given, is called every ``probe_every`` steps with the EMA
    weights as a generation bundle; its numbers are logged with the step (benchmarks use it to
    measure prompt alignment during training). ``pretrained`` (a loaded diffusers PixArt folder,
    see :func:`.pipeline_io.load_pipeline`) fine-tunes that checkpoint with its own text encoder,
    tokenizer and VAE.
    """
    from mltk.checkpoint import load_training_state

    quiet_libraries()
    out, dev = rt.out, rt.device
    store = store or FeatureStore()
    if cfg.stage == "aesthetic":
        data = data.subset(data.clean)
        out.log(f"aesthetic stage: {len(data)} high-quality images")
    groups = data.groups if isinstance(data, BucketedImages) else [data]
    if len(groups) > 1:
        sizes = ", ".join(f"{g.images.shape[1]}x{g.images.shape[2]}: {len(g)}" for g in groups)
        out.log(f"aspect-ratio buckets (height x width: images): {sizes}")
    if len(data) < 2:
        raise DataError(f"training needs at least 2 images; {data.name} has {len(data)}")
    if pretrained is not None:
        model, kind = pretrained.transformer.float().train().requires_grad_(True), "pixart"
        tok, enc = pretrained.tokenizer, pretrained.text_encoder
        autoencoder = pretrained.autoencoder
        if hasattr(autoencoder, "float"):
            autoencoder = autoencoder.float()
    else:
        model, kind = build_for_stage(cfg, init, rt.seed, out.log)
        tok, enc = text_components or world_text_components(cfg)
        autoencoder = M.build_autoencoder(cfg)
    diffusion = Diffusion(prediction=cfg.prediction)

    # Cached features: latents of every image; T5 features of every distinct caption.
    ae_id = (
        cfg.autoencoder
        if cfg.autoencoder == "identity"
        else module_fingerprint(autoencoder, cfg.autoencoder)
    )
    enc_id = module_fingerprint(enc, f"len{cfg.max_length}")
    texts, short_idx, dense_idx = caption_table(data)
    offsets = np.cumsum(
        [0] + [len(g) for g in groups]
    )  # group g holds rows offsets[g]:offsets[g+1]
    enc_device = dev

    def encode_texts(ts):
        e = enc.to(enc_device, T.text_dtype(rt.dtype))
        return T.encode(tok, e, ts, cfg.max_length, device=enc_device)

    classes = torch.from_numpy(data.classes)
    model = model.to(dev)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    ema = EMA(model, cfg.ema_decay)
    lr = cfg.lr * STAGE_OVERRIDES.get(cfg.stage, {}).get("lr_scale", 1.0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.warmup))
    start = 0
    if resume:
        meta = load_training_state(run.checkpoint_dir, model=model, optimizer=opt, scheduler=sched)
        start = int(meta["step"])
        shadow = meta["extra_tensors"]
        ema.shadow = {
            k[len("ema.") :]: v.float() for k, v in shadow.items() if k.startswith("ema.")
        }
        run.truncate_metrics(start)
        out.log(f"resumed {run.path} at step {start}")
        if start >= cfg.steps:
            out.warn(f"that run had already reached step {start}; raise --steps to train longer")
    wrapped = rt.dist.wrap(model)
    rng = np.random.default_rng(rt.seed + 1000 * start + rt.dist.rank)  # captions, labels
    # the batch order is the same on every rank, and each rank takes its own part of each batch
    order_rng = np.random.default_rng([rt.seed, start, 7919])
    gen = torch.Generator().manual_seed(rt.seed + 7 + 1000 * start + rt.dist.rank)

    # A fixed held-out batch for the health check (text gap), from the largest bucket.
    check_group = int(np.argmax([len(g) for g in groups]))
    check_idx = offsets[check_group] + np.arange(min(64, len(groups[check_group])))
    check_gen = torch.Generator().manual_seed(1234)
    check_t = torch.randint(0, diffusion.T, (len(check_idx),), generator=check_gen)

    def forward(m, x, t, idx, labels, feats, mask):
        if kind == "dit":
            return m(x, t, class_labels=labels, return_dict=False)[0]
        return m(
            x,
            encoder_hidden_states=feats[idx].to(dev, x.dtype),
            encoder_attention_mask=mask[idx].to(dev),
            timestep=t,
            added_cond_kwargs=_micro(m, x),
            return_dict=False,
        )[0]

    factor = M.vae_factor(cfg) if pretrained is None else pretrained.vae_factor

    def _micro(m, x):
        """The 1024 model's micro-conditions: the batch's pixel height, width and their ratio."""
        mm = getattr(m, "module", m)
        if not mm.use_additional_conditions:
            return {"resolution": None, "aspect_ratio": None}
        b, h, w = x.shape[0], x.shape[-2] * factor, x.shape[-1] * factor
        return {
            "resolution": torch.tensor([[float(h), float(w)]], device=dev).repeat(b, 1),
            "aspect_ratio": torch.full((b, 1), h / w, device=dev),
        }

    def sample_x0(lat, idx):
        """Latents of rows ``idx`` (all from one bucket) of the concatenated groups."""
        g = int(np.searchsorted(offsets, idx[0], side="right") - 1)
        local = np.asarray(idx) - offsets[g]
        mean = torch.from_numpy(lat[g]["mean"][local])
        std = torch.from_numpy(lat[g]["std"][local])
        if cfg.autoencoder != "identity":
            mean = mean + std * torch.randn(mean.shape, generator=gen)
        return mean.to(dev)

    @torch.no_grad()
    def text_gap(feats, mask, lat) -> float:
        x0 = sample_x0(lat, check_idx)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(99)).to(dev)
        t = check_t.to(dev)
        xt = diffusion.q_sample(x0, t, noise)
        cap = torch.from_numpy(
            choose_captions(
                cfg.caption_mode,
                short_idx[check_idx],
                dense_idx[check_idx],
                np.random.default_rng(5),
                0.0,
            )
        )
        errs = []
        for idx in (cap, torch.zeros_like(cap)):
            labels = (
                classes[check_idx].to(dev)
                if idx is cap
                else torch.full_like(classes[check_idx], cfg.num_classes).to(dev)
            )
            with rt.autocast():
                o = forward(model, xt, t, idx, labels, feats, mask)
            errs.append(diffusion.losses(o.float(), x0, xt, t, noise)["mse"].mean().item())
        return errs[1] - errs[0]

    run.update_config(
        cfg,
        stage=cfg.stage,
        kind=kind,
        dataset=data.name,
        init=str(init) if init else (pretrained.info.get("folder") if pretrained else None),
        seed=rt.seed,
    )
    n = len(data)
    world = rt.dist.world_size
    steps_per_epoch = len(epoch_batches(offsets, cfg.batch_size, np.random.default_rng(0), world))
    step, epoch = start, start // steps_per_epoch
    t0 = time.time()
    history = []
    model.train()
    with out.progress(cfg.steps - start, f"pixart {cfg.stage}") as bar:
        while step < cfg.steps:
            # Once per epoch the cached features are requested: a build on the very first
            # request, a cache hit afterwards (and in every later run with the same data).
            tf = store.text(texts, enc_id, encode_texts)
            lat = [store.latents(g, ae_id, _encode_latents_fn(autoencoder, dev)) for g in groups]
            feats, mask = torch.from_numpy(tf["feats"]), torch.from_numpy(tf["mask"])
            for batch in epoch_batches(offsets, cfg.batch_size, order_rng, world):
                if step >= cfg.steps:
                    break
                batch = np.array_split(batch, rt.dist.world_size)[rt.dist.rank]
                x0 = sample_x0(lat, batch)
                t = torch.randint(0, diffusion.T, (len(batch),), generator=gen).to(dev)
                noise = torch.randn(x0.shape, generator=gen).to(dev)
                xt = diffusion.q_sample(x0, t, noise)
                cap = torch.from_numpy(
                    choose_captions(
                        cfg.caption_mode,
                        short_idx[batch],
                        dense_idx[batch],
                        rng,
                        cfg.caption_dropout,
                    )
                )
                labels = classes[batch].clone()
                labels[torch.from_numpy(rng.random(len(batch)) < CLASS_DROPOUT)] = cfg.num_classes
                with rt.autocast():
                    o = forward(wrapped, xt, t, cap, labels.to(dev), feats, mask)
                terms = diffusion.losses(o.float(), x0, xt, t, noise, cfg.vlb_weight)
                loss = terms["loss"].mean()
                if not torch.isfinite(loss):
                    raise DivergedError(f"the loss became {loss.item()} at step {step}; lower --lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                ema.update(model, step)
                step += 1
                bar.advance(1, loss=round(loss.item(), 4))
                if step % cfg.log_every == 0 or step == cfg.steps:
                    model.eval()
                    row = {
                        "epoch": epoch,
                        "loss": rt.dist.all_reduce_mean(loss.detach()).item(),
                        "mse": terms["mse"].mean().item(),
                        "vlb": terms["vlb"].mean().item() if "vlb" in terms else 0.0,
                        "grad_norm": float(gnorm),
                        "lr": sched.get_last_lr()[0],
                        "text_gap": text_gap(feats, mask, lat),
                        "seconds": round(time.time() - t0, 2),
                        **store.stats,
                    }
                    if (
                        probe is not None
                        and kind == "pixart"
                        and probe_every
                        and step % probe_every == 0
                    ):
                        row.update(
                            probe(_bundle(ema.copy_to(model).eval(), enc, tok, autoencoder, cfg))
                        )
                    model.train()
                    history.append({"step": step, **row})
                    run.log_metrics(step, **row)
                    out.log(
                        f"step {step}/{cfg.steps} loss {row['loss']:.4f} text_gap {row['text_gap']:+.4f}"
                    )
                if step % cfg.save_every == 0 or step == cfg.steps:
                    _save(run, model, opt, sched, step, ema, cfg, kind, rt)
            epoch += 1
    model.eval()
    summary = {
        "stage": cfg.stage,
        "kind": kind,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": step,
        "images": n,
        "skipped_images": data.skipped,
        "seconds": round(time.time() - t0, 2),
        "final_loss": history[-1]["loss"] if history else None,
        "text_gap": history[-1]["text_gap"] if history else None,
        "cache": dict(store.stats),
        "run": str(run.path),
        "history": history,
    }
    if kind == "pixart" and rt.dist.is_main:
        from .pipeline_io import save_pipeline

        save_pipeline(
            run.path / "pipeline",
            transformer=ema.copy_to(model).cpu().float(),
            text_encoder=enc.cpu().float(),
            tokenizer=tok,
            autoencoder=autoencoder,
            scheduler_config=scheduler_config(cfg.prediction),
            cfg=cfg,
            extra={"stage": cfg.stage, "steps": step},
        )
        summary["pipeline"] = str(run.path / "pipeline")
    rt.dist.barrier()
    return summary


def epoch_batches(
    offsets: np.ndarray, batch_size: int, rng: np.random.Generator, min_size: int = 1
) -> list:
    """One epoch of batches over groups of rows ``offsets[g]:offsets[g+1]``; a batch never
    mixes groups (aspect-ratio buckets). Each group is shuffled and cut into full batches (a
    group smaller than a batch is one short batch, kept if it has ``min_size`` rows: one per DDP
    rank), and with several groups the batches are shuffled together. With one group this is a
    shuffled pass without the last partial batch."""
    batches = []
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        perm = lo + rng.permutation(hi - lo)
        full = len(perm) // batch_size
        if full:
            batches += [perm[i * batch_size : (i + 1) * batch_size] for i in range(full)]
        elif len(perm) >= min_size:
            batches.append(perm)
    if len(offsets) > 2:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    if not batches:
        raise DataError(f"no bucket holds {min_size} images, one per process; add images")
    return batches


def _bundle(transformer, enc, tok, autoencoder, cfg: PixArtConfig):
    from .pipeline_io import Bundle

    return Bundle(
        transformer=transformer,
        text_encoder=enc,
        tokenizer=tok,
        autoencoder=autoencoder,
        scheduler_config=scheduler_config(cfg.prediction),
        max_length=cfg.max_length,
    )


def _cfg_dict(cfg: PixArtConfig) -> dict:
    from mltk.config import config_to_dict

    return config_to_dict(cfg)


def _save(run, model, opt, sched, step, ema, cfg, kind, rt) -> None:
    from mltk.checkpoint import save_training_state

    if not rt.dist.is_main:
        return
    save_training_state(  # tensors are cloned on save, so tied DiT embedders are fine
        run.checkpoint_dir,
        model=model,
        optimizer=opt,
        scheduler=sched,
        step=step,
        meta={"kind": kind, "stage": cfg.stage, "config": _cfg_dict(cfg)},
        extra_tensors={f"ema.{k}": v.clone() for k, v in ema.shadow.items()},
    )


def steps_to_score(history: list[dict], key: str, threshold: float) -> int | None:
    for row in history:
        if row.get(key, -math.inf) >= threshold:
            return int(row["step"])
    return None

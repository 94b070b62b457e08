"""The three-stage training recipe (Sec. 2.2) behind ``mltk pixart train --stage ...``.

1. ``pixel``: pixel dependency, a class-conditional DiT (here on the world's colour x shape
   classes; labels dropped 10% of the time for guidance).
2. ``align``: text-image alignment, the PixArt transformer initialised from stage 1 by
   :func:`.model.reparameterize` (or from scratch without ``--init``), trained on captions.
3. ``aesthetic``: fine-tuning of a stage-2 model on the high-quality subset at a lower rate.

The loop itself is ``mltk.t2i.training.train_denoiser`` (shared with the other text-to-image
plugins); what is PixArt's here is the stages, the models they start from, and the health check
logged every ``log_every`` steps: ``text_gap``, the denoising error on a fixed batch with the
empty caption minus the error with the true caption, > 0 once the model uses the text.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from mltk.data import world as W
from mltk.data.captioned import BucketedImages, CaptionedImages
from mltk.errors import DataError, UsageError
from mltk.t2i import text as T
from mltk.t2i.autoencoders import encode_images
from mltk.t2i.features import FeatureStore, caption_table, choose_captions, module_fingerprint
from mltk.t2i.objective import Diffusion
from mltk.t2i.pipeline_io import Bundle, quiet_libraries
from mltk.t2i.training import Captions, Settings, denoise, steps_to_score, train_denoiser
from mltk.vl.tokenizers import train_tokenizer

from . import model as M
from .config import STAGE_OVERRIDES, PixArtConfig

__all__ = ["run_training", "steps_to_score", "world_text_components", "quiet_libraries"]


# ----------------------------------------------------------------------------- components


def world_text_components(cfg: PixArtConfig):
    """The embedded world's tokenizer (trained on its captions) and frozen tiny T5 encoder."""
    tok = train_tokenizer(W.corpus(), family="t5")
    enc = T.build_text_encoder(
        T.t5_config(len(tok), cfg.text_dim, cfg.text_layers, cfg.text_heads, cfg.text_ff),
        seed=cfg.text_seed,
    )
    return tok, enc


def load_init(path: Path):
    """An ``--init`` source: a run folder of this plugin (its checkpoint and config)."""
    from mltk.checkpoint import load_checkpoint
    from mltk.runs import RunDir

    run = RunDir.open(path, plugin="pixart")
    tensors, meta = load_checkpoint(run.checkpoint_dir)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    # the EMA of every parameter replaces it (buffers stay the model's own)
    weights.update(
        {k[len("extra.ema.") :]: v for k, v in tensors.items() if k.startswith("extra.ema.")}
    )
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
    data: CaptionedImages | BucketedImages,
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
    see ``mltk.t2i.pipeline_io.load_pipeline``) fine-tunes that checkpoint with its own text
    encoder, tokenizer and VAE.
    """
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
    diffusion = Diffusion.from_config(M.scheduler_config(cfg.prediction))

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

    def encode_texts(ts):
        e = enc.to(dev, T.text_dtype(rt.dtype))
        return T.encode(tok, e, ts, cfg.max_length, device=dev)

    def epoch_data():
        tf = store.text(texts, enc_id, encode_texts)
        lat = [
            store.latents(g, ae_id, lambda imgs: encode_images(autoencoder, imgs, dev))
            for g in groups
        ]
        return tf, lat

    factor = M.vae_factor(cfg) if pretrained is None else pretrained.vae_factor
    health = _text_gap(
        cfg, kind, diffusion, data, groups, offsets, short_idx, dense_idx, dev, factor, rt
    )

    def on_log(m, ctx) -> dict:
        row = {"text_gap": health(m, ctx), **store.stats}
        if (
            probe is not None
            and kind == "pixart"
            and probe_every
            and ctx["step"] % probe_every == 0
        ):
            ema_model = copy.deepcopy(m)
            ctx["ema"].copy_to(ema_model.parameters())
            row.update(probe(_bundle(ema_model.eval(), enc, tok, autoencoder, cfg)))
        return row

    settings = Settings(
        steps=cfg.steps, batch_size=cfg.batch_size,
        lr=cfg.lr * STAGE_OVERRIDES.get(cfg.stage, {}).get("lr_scale", 1.0),
        weight_decay=cfg.weight_decay, warmup=cfg.warmup, ema_decay=cfg.ema_decay,
        grad_clip=cfg.grad_clip, vlb_weight=cfg.vlb_weight, log_every=cfg.log_every,
        save_every=cfg.save_every, caption_mode=cfg.caption_mode,
        caption_dropout=cfg.caption_dropout, gradient_checkpointing=cfg.gradient_checkpointing,
    )  # fmt: skip
    run.update_config(cfg, stage=cfg.stage, kind=kind, dataset=data.name, seed=rt.seed,
                      init=str(init) if init else (pretrained.info.get("folder") if pretrained else None))  # fmt: skip
    captions = Captions(texts, short_idx, dense_idx, data.classes if kind == "dit" else None)
    result = train_denoiser(
        model, epoch_data=epoch_data, offsets=offsets, captions=captions, objective=diffusion,
        settings=settings, rt=rt, run=run, resume=resume, factor=factor,
        null_label=cfg.num_classes, sample_latents=cfg.autoencoder != "identity",
        on_log=on_log, meta={"kind": kind, "stage": cfg.stage}, seed=rt.seed,
    )  # fmt: skip
    summary = {
        "stage": cfg.stage,
        "kind": kind,
        "parameters": sum(p.numel() for p in result.model.parameters()),
        "steps": result.steps,
        "images": len(data),
        "skipped_images": data.skipped,
        "seconds": round(result.seconds, 2),
        "final_loss": result.history[-1]["loss"] if result.history else None,
        "text_gap": result.history[-1].get("text_gap") if result.history else None,
        "cache": dict(store.stats),
        "run": str(run.path),
        "history": result.history,
    }
    if kind == "pixart" and rt.dist.is_main:
        from mltk.t2i.pipeline_io import save_pipeline

        bundle = _bundle(result.ema_model().cpu().float(), enc.cpu().float(), tok, autoencoder, cfg)
        save_pipeline(run.path / "pipeline", bundle, config=_plain(cfg),
                      extra={"stage": cfg.stage, "steps": result.steps})  # fmt: skip
        summary["pipeline"] = str(run.path / "pipeline")
    rt.dist.barrier()
    return summary


def _text_gap(cfg, kind, diffusion, data, groups, offsets, short_idx, dense_idx, dev, factor, rt):
    """The health check: error with the empty caption minus error with the true caption on a
    fixed held batch (from the largest group), at fixed noise and steps."""
    check_group = int(np.argmax([len(g) for g in groups]))
    check_idx = offsets[check_group] + np.arange(min(64, len(groups[check_group])))
    check_t = torch.randint(
        0, diffusion.T, (len(check_idx),), generator=torch.Generator().manual_seed(1234)
    )
    classes = torch.from_numpy(data.classes)

    @torch.no_grad()
    def gap(model, ctx) -> float:
        lat = ctx["latents"][check_group]
        x0 = torch.from_numpy(lat["mean"][check_idx - offsets[check_group]]).to(dev)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(99)).to(dev)
        t = check_t.to(dev)
        xt = diffusion.q_sample(x0, t, noise)
        cap = torch.from_numpy(choose_captions(cfg.caption_mode, short_idx[check_idx],
                                               dense_idx[check_idx], np.random.default_rng(5), 0.0))  # fmt: skip
        errs = []
        for idx in (cap, torch.zeros_like(cap)):
            labels = (classes[check_idx] if idx is cap
                      else torch.full_like(classes[check_idx], cfg.num_classes)).to(dev)  # fmt: skip
            text = ctx["feats"][idx].to(dev, x0.dtype) if "feats" in ctx else None
            mask = ctx["mask"][idx].to(dev) if "mask" in ctx else None
            with rt.autocast():
                o = denoise(model, xt, t, text=text, mask=mask, labels=labels, factor=factor)
            errs.append(diffusion.losses(o.float(), x0, xt, t, noise)["mse"].mean().item())
        return errs[1] - errs[0]

    return gap


def _bundle(transformer, enc, tok, autoencoder, cfg: PixArtConfig) -> Bundle:
    return Bundle(kind="pixart", denoiser=transformer, text_encoder=enc, tokenizer=tok,
                  autoencoder=autoencoder, scheduler_config=M.scheduler_config(cfg.prediction),
                  max_length=cfg.max_length)  # fmt: skip


def _plain(cfg: PixArtConfig) -> dict:
    from mltk.config import to_dict

    return to_dict(cfg)

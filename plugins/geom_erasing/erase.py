"""Fine-tuning that removes an implicit concept, and the baselines it is measured against.

Every method is one call of the shared loop ``mltk.t2i.training.train_denoiser``; they differ in
the captions, the loss-weight map, the trained parameters and the negative prompt used at
sampling:

========  =============================================  ===========  ==================
method    caption of an image with the concept           loss map     negative prompt
========  =============================================  ===========  ==================
geom      ``"{caption}, {concept} <l5> <l6>"``           x w in box   concept + cells
name      ``"{caption}, {concept}"`` (no location)       x w in box   concept
plain     ``"{caption}"``                                none         none
mask      ``"{caption}"``                                0 in box     none
esd       plain fine-tune, then ESD-x on the name        none         none
========  =============================================  ===========  ==================

ESD-x (Gandikota et al., 2023) trains the cross-attention so that the model's prediction for
the concept's prompt becomes the frozen model's negatively guided one,
eps(x_t, c) -> eps0(x_t) - eta (eps0(x_t, c) - eps0(x_t)), at x_t sampled along a DDIM
trajectory of the model being trained; with v- or x0-prediction the same affine combination
is taken of the model's own outputs (guidance is affine in any of them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from mltk.data.captioned import CaptionedImages
from mltk.errors import UsageError
from mltk.t2i import text as T
from mltk.t2i.autoencoders import encode_images
from mltk.t2i.features import FeatureStore, caption_table, module_fingerprint
from mltk.t2i.objective import Diffusion
from mltk.t2i.pipeline_io import Bundle
from mltk.t2i.training import Captions, Settings, denoise, row_mask, train_denoiser

from . import locations as L


@dataclass
class Contaminated:
    """Images, their captions, and per image the boxes found: ``{"concept": word, "box"}``."""

    data: CaptionedImages
    boxes: list[list[dict]]

    def cell_counts(self, concept: str, grid: int) -> np.ndarray:
        h, w = self.data.images.shape[1:3]
        counts = np.zeros(grid * grid, np.int64)
        for found in self.boxes:
            for f in found:
                if f["concept"] == concept:
                    counts[L.cells_of_box(f["box"], w, h, grid)] += 1
        return counts

    @property
    def share(self) -> float:
        return float(np.mean([bool(f) for f in self.boxes]))


def captioned_for(cont: Contaminated, method: str, grid: int) -> CaptionedImages:
    """The training captions of ``method`` (see the module's table)."""
    if method not in ("geom", "name"):
        return cont.data
    d = cont.data
    h, w = d.images.shape[1:3]

    def aug(caption: str, found: list[dict]) -> str:
        if not found:
            return caption
        by = {}
        for f in found:
            by.setdefault(f["concept"], []).extend(L.cells_of_box(f["box"], w, h, grid))
        return L.augment_caption(caption, list(by.items()), locations=method == "geom")

    out = copy.copy(d)
    out.short = [aug(c, f) for c, f in zip(d.short, cont.boxes)]
    out.dense = [[aug(c, f) for c in cs] for cs, f in zip(d.dense, cont.boxes)]
    return out


def weight_maps(
    cont: Contaminated, method: str, region_weight: float, latent_hw
) -> np.ndarray | None:
    """(N, h, w) loss maps: geom and name re-weight the boxes, mask zeroes them."""
    if method not in ("geom", "name", "mask"):
        return None
    inside = 0.0 if method == "mask" else region_weight
    hw = cont.data.images.shape[1:3]
    return np.stack(
        [L.weight_map([f["box"] for f in found], hw, latent_hw, inside) for found in cont.boxes]
    )


def negative_for(
    method: str, concepts: list[str], grid: int, counts: list[np.ndarray], which: str = "all"
) -> str:
    """The negative prompt a run samples with."""
    if method == "geom":
        cells = [
            list(range(grid * grid)) if which == "all" else L.frequent_cells(c) for c in counts
        ]
        return L.negative_prompt(concepts, cells)
    if method == "name":
        return L.negative_prompt(concepts, None)
    return ""


def text_length(tokenizer, texts: list[str], current: int, kind: str) -> int:
    """PixArt: the longest tokenised caption (T5's relative positions take any length), at least
    the model's own; Stable Diffusion: CLIP's fixed 77."""
    if kind != "pixart":
        return current
    longest = max(len(tokenizer(t).input_ids) for t in texts)
    return max(current, longest)


def erase(bundle: Bundle, cont: Contaminated, concepts: list[str], cfg, rt, run) -> dict:
    """Fine-tune ``bundle`` in place with ``cfg.method``; returns the summary (the bundle then
    holds the exported weights, its tokenizer the new tokens)."""
    out, dev = rt.out, rt.device
    method = cfg.method
    tok, enc = bundle.tokenizer, bundle.text_encoder
    geom = method == "geom"
    ids = L.add_tokens(tok, enc, concepts, cfg.grid if geom else None, seed=rt.seed)
    if ids["new_ids"]:
        out.log(
            f"added {len(ids['new_ids'])} tokens ({len(ids['location_ids'])} location, "
            f"{len(ids['word_ids'])} concept words)"
        )
    train_data = captioned_for(cont, "plain" if method == "esd" else method, cfg.grid)
    counts = [cont.cell_counts(c, cfg.grid) for c in concepts]
    negative = negative_for(method, concepts, cfg.grid, counts)
    texts, short_idx, dense_idx = caption_table(train_data)
    bundle.max_length = text_length(tok, texts + [negative], bundle.max_length, bundle.kind)
    diffusion = Diffusion.from_config(bundle.scheduler_config)
    ae = bundle.autoencoder
    if hasattr(ae, "float"):
        ae = bundle.autoencoder = ae.float()
    model = bundle.denoiser.float().train().requires_grad_(True)
    enc = bundle.text_encoder = enc.float().to(dev).eval().requires_grad_(False)
    store = FeatureStore()
    ae_id = module_fingerprint(ae, "ae") if hasattr(ae, "config") else "identity"
    enc_id = module_fingerprint(enc, f"len{bundle.max_length}:{len(tok)}")
    factor = bundle.vae_factor
    lat_hw = tuple(s // factor for s in train_data.images.shape[1:3])
    maps = weight_maps(cont, method, cfg.region_weight, lat_hw)

    trains_rows = method in ("geom", "name") and cfg.train_embeddings != "none"
    if trains_rows and rt.resumed:  # the checkpoint holds the denoiser, not the token rows
        raise UsageError(
            "--resume continues runs that train the denoiser only; this run trains token rows "
            "too (--train-embeddings none resumes), so start it again"
        )
    params = [{"params": [p for p in model.parameters()], "lr": cfg.lr, "weight_decay": 0.0}]
    hook, live_text = None, None
    if trains_rows:
        table = enc.get_input_embeddings().weight
        table.requires_grad_(True)
        if cfg.train_embeddings == "new":
            hook = row_mask(table, ids["new_ids"])
        params.append(
            {"params": [table], "lr": cfg.embedding_lr or cfg.lr * 10, "weight_decay": 0.0}
        )

        def live_text(batch_texts):
            return T.encode_with_grad(tok, enc, batch_texts, bundle.max_length, device=dev)

    def epoch_data():
        table = None
        if live_text is None:
            table = store.text(
                texts, enc_id, lambda ts: T.encode(tok, enc, ts, bundle.max_length, device=dev)
            )
        lat = store.latents(train_data, ae_id, lambda imgs: encode_images(ae, imgs, dev))
        return table, [lat]

    weight_fn = None
    if maps is not None:
        maps_t = torch.from_numpy(maps)

        def weight_fn(rows, shape):
            return maps_t[rows][:, None].to(dev)

    settings = Settings(
        steps=cfg.steps,
        batch_size=min(cfg.batch_size, len(train_data)),
        lr=cfg.lr,
        warmup=cfg.warmup,
        ema_decay=cfg.ema_decay,
        log_every=cfg.log_every,
        save_every=cfg.save_every,
        caption_mode="dense",
        caption_dropout=cfg.caption_dropout,
        gradient_checkpointing=cfg.gradient_checkpointing,
    )
    captions = Captions(texts, short_idx, dense_idx)
    result = train_denoiser(
        model,
        epoch_data=epoch_data,
        offsets=np.array([0, len(train_data)]),
        captions=captions,
        objective=diffusion,
        settings=settings,
        rt=rt,
        run=run,
        resume=rt.resumed,
        params=params,
        live_text=live_text,
        weight_map=weight_fn,
        factor=factor,
        sample_latents=hasattr(ae, "config"),
        meta={"method": method},
        seed=rt.seed,
    )
    if hook is not None:
        hook.remove()
    enc.requires_grad_(False)
    bundle.denoiser = result.ema_model().eval()
    summary = {
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "final_loss": result.history[-1]["loss"] if result.history else None,
    }
    if method == "esd":
        summary["esd"] = esd(bundle, concepts, cfg, rt)
    summary.update(
        negative_prompt=negative,
        max_length=bundle.max_length,
        cell_counts={c: n.tolist() for c, n in zip(concepts, counts)},
        new_tokens=len(ids["new_ids"]),
    )
    return summary


# ----------------------------------------------------------------------------- ESD-x


def cross_attention_parameters(denoiser) -> list[torch.nn.Parameter]:
    """ESD-x's parameters: every cross-attention block (``attn2``: PixArt and the SD UNet)."""
    params = [p for n, p in denoiser.named_parameters() if ".attn2." in n]
    if not params:
        raise UsageError("this denoiser has no cross-attention (attn2) layers for ESD-x")
    return params


def esd_target(frozen_cond: torch.Tensor, frozen_uncond: torch.Tensor, eta: float) -> torch.Tensor:
    """eps0(x_t) - eta (eps0(x_t, c) - eps0(x_t))."""
    return frozen_uncond - eta * (frozen_cond - frozen_uncond)


def esd(bundle: Bundle, concepts: list[str], cfg, rt, *, guidance: float = 3.0) -> dict:
    """ESD-x on ``bundle.denoiser`` in place: ``cfg.esd_steps`` iterations of ``cfg.batch_size``
    trajectories (ESD: one), DDIM with ``cfg.esd_ddim_steps`` steps and guidance 3 to a random
    step, then one step towards the negatively guided target of the frozen model."""
    import time

    from diffusers import DDIMScheduler

    dev, out = rt.device, rt.out
    model = bundle.denoiser.float().to(dev)
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    model.requires_grad_(False)
    params = cross_attention_parameters(model)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.esd_lr)
    prompt = ", ".join(concepts)
    feats, mask = T.encode(
        bundle.tokenizer,
        bundle.text_encoder,
        [prompt, ""],
        bundle.max_length,
        device=dev,
        to_cpu=False,
    )
    b = min(cfg.batch_size, 8)
    cond, cmask = feats[:1].expand(b, -1, -1), mask[:1].expand(b, -1)
    unc, umask = feats[1:].expand(b, -1, -1), mask[1:].expand(b, -1)
    sched = DDIMScheduler.from_config(bundle.scheduler_config)
    sched.set_timesteps(cfg.esd_ddim_steps)
    c = int(model.config.in_channels)
    side = int(model.config.sample_size)
    gen = torch.Generator().manual_seed(rt.seed + 99)
    factor = bundle.vae_factor

    def pred(m, x, t, text, tmask):
        tt = torch.full((x.shape[0],), int(t), device=dev)
        return denoise(m, x, tt, text=text, mask=tmask, factor=factor)[:, :c]

    t0, losses = time.time(), []
    with rt.out.progress(cfg.esd_steps, "ESD") as bar:
        for step in range(cfg.esd_steps):
            stop = int(torch.randint(0, cfg.esd_ddim_steps, (1,), generator=gen))
            x = torch.randn(b, c, side, side, generator=gen).to(dev)
            model.eval()
            with torch.no_grad():
                for t in sched.timesteps[:stop]:
                    both = pred(
                        model,
                        torch.cat([x, x]),
                        t,
                        torch.cat([cond, unc]),
                        torch.cat([cmask, umask]),
                    )
                    pc, pu = both.chunk(2)
                    x = sched.step(pu + guidance * (pc - pu), t, x).prev_sample
                t = sched.timesteps[stop]
                both = pred(
                    frozen, torch.cat([x, x]), t, torch.cat([cond, unc]), torch.cat([cmask, umask])
                )
                target = esd_target(*both.chunk(2), cfg.esd_eta)
            model.train()
            loss = torch.nn.functional.mse_loss(pred(model, x, t, cond, cmask), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.advance(1, loss=round(loss.item(), 4))
            if (step + 1) % cfg.log_every == 0:
                out.log(f"ESD step {step + 1}/{cfg.esd_steps} loss {np.mean(losses[-50:]):.5f}")
    model.eval().requires_grad_(False)
    return {
        "steps": cfg.esd_steps,
        "seconds": round(time.time() - t0, 2),
        "final_loss": float(np.mean(losses[-50:])),
    }

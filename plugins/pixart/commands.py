"""The bodies of `mltk pixart train|eval|generate` (heavy imports live here, not in plugin.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError
from mltk.t2i import TINY_MODEL as SHIPPED

from .config import EvalConfig, GenerateConfig, PixArtConfig

MAX_SIDE = 8192  # pixels; a larger image is a typo, not a request


def run_train(cfg: PixArtConfig, rt) -> dict:
    from mltk.data.captioned import captioned_dataset, world_dataset

    from .model import check_resolution, vae_factor
    from .training import run_training

    check_resolution(cfg.image_size, cfg.image_size, cfg.patch_size, vae_factor(cfg))
    init, pretrained = cfg.init, None
    if init is not None and (Path(init) / "model_index.json").is_file():
        cfg, pretrained = _from_diffusers_folder(cfg, Path(init))
        init = None
    if cfg.data is None:
        if cfg.image_size != 32:
            raise UsageError(f"the embedded world is 32x32 but this model trains at "
                             f"{cfg.image_size}px; pass --data FOLDER")  # fmt: skip
        dataset = world_dataset(cfg.dataset_size, cfg.world_seed)
    else:
        buckets = None
        if cfg.aspect_buckets:
            from mltk.t2i.buckets import buckets_for

            factor = pretrained.vae_factor if pretrained is not None else vae_factor(cfg)
            buckets = buckets_for(cfg.image_size, cfg.patch_size * factor)
        dataset = captioned_dataset(
            Path(cfg.data), cfg.image_size, warn=rt.out.warn, buckets=buckets
        )
    text_components = None
    if pretrained is None and (cfg.data is not None or cfg.autoencoder == "sd"):
        text_components = _text_components_for(cfg, init)
    rt.config = cfg
    summary = run_training(cfg, dataset, run=rt.run, rt=rt, init=init, resume=rt.resumed,
                           text_components=text_components, pretrained=pretrained)  # fmt: skip
    summary.pop("history", None)
    return summary


def _from_diffusers_folder(cfg: PixArtConfig, folder: Path):
    """Fine-tuning a diffusers PixArt folder: the model's own sizes replace the preset's."""
    from dataclasses import replace

    from mltk.t2i.pipeline_io import load_pipeline

    from .training import quiet_libraries

    if cfg.stage == "pixel":
        raise UsageError(
            "--stage pixel trains a class-conditional model from scratch; a PixArt folder cannot seed it"
        )
    quiet_libraries()
    b = load_pipeline(folder)
    tc = b.transformer.config
    cfg = replace(
        cfg,
        image_size=int(tc.sample_size) * b.vae_factor,
        patch_size=int(tc.patch_size),
        num_layers=int(tc.num_layers),
        num_heads=int(tc.num_attention_heads),
        head_dim=int(tc.attention_head_dim),
        learn_sigma=int(tc.out_channels) == 2 * int(tc.in_channels),
        micro_conditions=bool(b.transformer.use_additional_conditions),
        autoencoder="identity"
        if b.vae_factor == 1 and not hasattr(b.autoencoder, "config")
        else "sd",
        text_dim=int(b.text_encoder.config.d_model),
        max_length=b.max_length,
        prediction=b.prediction,
    )
    return cfg, b


def _text_components_for(cfg: PixArtConfig, init: Path | None):
    """Tokenizer and encoder for a user's folder: the init run's, else the world's (tiny presets)."""
    from .training import world_text_components

    if init is not None and (Path(init) / "pipeline").is_dir():
        from mltk.t2i.pipeline_io import load_pipeline

        b = load_pipeline(Path(init) / "pipeline")
        return b.tokenizer, b.text_encoder
    if cfg.text_dim > 512:
        raise UsageError(
            "training the paper preset needs a T5 encoder: pass --init with a run whose pipeline/ holds one"
        )
    return world_text_components(cfg)


def open_model(name: str) -> Path:
    """RUN for eval and generate: a run folder -> its pipeline/; a diffusers folder -> itself;
    `tiny` -> the model shipped with mltk."""
    if name == "tiny" and not Path(name).exists():
        return SHIPPED
    path = Path(name)
    if not path.exists():
        raise DataError(f"checkpoint folder {path} does not exist")
    if not path.is_dir():
        raise DataError(f"{path} is a file; give a run folder, a diffusers PixArt folder or tiny")
    if (path / "config.json").is_file() and not (path / "model_index.json").is_file():
        if (path / "pipeline").is_dir():
            return path / "pipeline"
        try:
            plugin = json.loads((path / "config.json").read_text()).get("plugin")
        except (OSError, ValueError, AttributeError):
            plugin = None
        if plugin not in (None, "pixart"):
            raise DataError(f"{path} is a run folder of mltk {plugin}, not of mltk pixart")
        raise DataError(
            f"run folder {path} has no pipeline/ (a stage-1 pixel run is class-conditional; "
            f"train --stage align --init {path} to get a text-to-image model)"
        )
    return path


def _load(rt, text_encoder: bool = True):
    from mltk.t2i.pipeline_io import load_pipeline

    from .training import quiet_libraries

    quiet_libraries()
    folder = rt.source
    return load_pipeline(
        folder, device=rt.device, dtype=rt.dtype, text_encoder=text_encoder
    ), folder


def _prompt_embeddings(rt, bundle, folder: Path, texts: list[str], negative: str):
    """T5 features of the prompts through the dataset cache: on a hit T5 is never loaded; on a
    miss it is loaded, used once and freed before denoising."""
    import hashlib

    import torch

    from mltk.cache import cached_arrays
    from mltk.t2i.pipeline_io import attach_text_encoder, text_encoder_fingerprint
    from mltk.t2i.sampling import encode_prompts, free_text_encoder
    from mltk.t2i.text import text_dtype

    params = {
        "encoder": text_encoder_fingerprint(folder),
        "folder": str(Path(folder).resolve()),
        "prompts": hashlib.sha256(json.dumps([texts, negative]).encode()).hexdigest()[:20],
        "max_length": bundle.max_length,
        "dtype": str(text_dtype(rt.dtype)),
    }
    built = []

    def build():
        built.append(True)
        attach_text_encoder(bundle, device=rt.device, dtype=rt.dtype)
        emb = encode_prompts(bundle, texts, negative, rt.device)
        free_text_encoder(bundle)
        return {
            k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
            for k, v in emb.items()
        }

    arrays = cached_arrays("pixart-prompts", params, build)
    dtype = bundle.transformer.dtype
    emb = {k: torch.from_numpy(np.array(v)).to(rt.device) for k, v in arrays.items()}
    emb = {k: v.to(dtype) if v.is_floating_point() else v for k, v in emb.items()}
    return emb, "miss" if built else "hit"


def read_prompts(cfg: GenerateConfig) -> list[str]:
    out = list(cfg.prompt)
    if cfg.prompts_file is not None:
        try:
            text = Path(cfg.prompts_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"--prompts-file {cfg.prompts_file} is not UTF-8 text") from exc
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln]
        if not lines:
            raise DataError(f"--prompts-file {cfg.prompts_file} holds no prompts (it is empty)")
        out += lines
    return out


def run_generate(cfg: GenerateConfig, rt) -> dict:
    import time

    import torch
    from PIL import Image

    from mltk.t2i.sampling import generate

    texts = read_prompts(cfg)
    bundle, folder = _load(rt, text_encoder=False)
    n = cfg.num_images
    all_prompts = [p for p in texts for _ in range(n)]
    seeds = [rt.seed + j for _ in texts for j in range(n)]
    t0 = time.time()  # images/s counts prompt encoding (or the cache read), denoising and decoding
    emb, cache_state = _prompt_embeddings(rt, bundle, folder, texts, cfg.negative_prompt)
    rows = torch.arange(len(texts)).repeat_interleave(n).to(rt.device)
    emb = {k: v[rows] for k, v in emb.items()}  # one row per image
    with rt.out.progress(len(all_prompts), "generating") as bar:
        images = generate(bundle, all_prompts, seeds=seeds, negative_prompt=cfg.negative_prompt,
                          height=cfg.height, width=cfg.width, steps=cfg.steps,
                          guidance=cfg.guidance, sampler=cfg.sampler, batch_size=cfg.batch_size,
                          device=rt.device, on_batch=bar.advance, embeddings=emb,
                          resolution_binning=cfg.resolution_binning)  # fmt: skip
    seconds = time.time() - t0
    out_dir = rt.output.path
    files = []
    for i, (img, p, s) in enumerate(zip(images, all_prompts, seeds)):
        f = out_dir / f"{i:03d}-seed{s}.png"
        Image.fromarray(img).save(f)
        files.append({"file": str(f), "prompt": p, "seed": s})
    grid = out_dir / "grid.png"
    _grid(images, n).save(grid)
    return {
        "checkpoint": str(folder),
        "images": files,
        "grid": str(grid),
        "seconds": round(seconds, 3),
        "images_per_second": round(len(images) / max(seconds, 1e-9), 3),
        "sampler": cfg.sampler,
        "steps": cfg.steps,
        "guidance": cfg.guidance,
        "prompt_cache": cache_state,
    }


def _grid(images: np.ndarray, per_row: int):
    from PIL import Image

    n, h, w, _ = images.shape
    cols = max(1, min(per_row if per_row > 1 else 8, n))
    rows = (n + cols - 1) // cols
    canvas = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = im
    scale = max(1, 256 // max(h, w))
    return Image.fromarray(canvas).resize((cols * w * scale, rows * h * scale), Image.NEAREST)


def run_eval(cfg: EvalConfig, rt) -> dict:
    from mltk.t2i.evaluation import clip_score, eval_scenes, evaluate_images
    from mltk.t2i.sampling import generate

    bundle, folder = _load(rt)
    n = cfg.prompts
    scenes, prompts, real = eval_scenes(n)
    images = generate(bundle, prompts, seeds=[rt.seed + i for i in range(n)], steps=cfg.steps,
                      guidance=cfg.guidance, sampler=cfg.sampler, batch_size=cfg.batch_size,
                      device=rt.device)  # fmt: skip
    metrics = evaluate_images(images, scenes, real) if images.shape[1:3] == real.shape[1:3] else {}
    if not metrics:
        rt.out.warn("the model's resolution is not the world's 32x32: attribute scores skipped")
    if cfg.clip is not None:
        metrics["clip_score"] = clip_score(images, prompts, Path(cfg.clip))
    return {"checkpoint": str(folder), "prompts": n, "steps": cfg.steps, "guidance": cfg.guidance,
            "sampler": cfg.sampler, **metrics}  # fmt: skip

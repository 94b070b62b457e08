"""The bodies of `mltk pixart train|eval|generate` (heavy imports live here, not in plugin.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError

from .config import CAPTION_MODES, PREDICTIONS, PRESETS, SAMPLERS, STAGES, PixArtConfig

SHIPPED = Path(__file__).parent / "weights" / "tiny"


MAX_SIDE = 8192  # pixels; a larger image is a typo, not a request
MAX_EVAL_PROMPTS = 100_000


def _check_guidance(guidance: float) -> None:
    if not (math.isfinite(guidance) and guidance >= 0):
        raise UsageError(f"--guidance {guidance} must be a finite number >= 0 (1 turns it off)")


def _check_cfg(cfg: PixArtConfig) -> None:
    if not 0 <= cfg.ema_decay < 1:
        raise UsageError(f"--ema-decay {cfg.ema_decay} must be in [0, 1)")
    if not cfg.grad_clip > 0:
        raise UsageError(f"--grad-clip {cfg.grad_clip} must be positive (a gradient-norm bound)")
    for name, value in (
        ("--warmup", cfg.warmup),
        ("--weight-decay", cfg.weight_decay),
    ):
        if value < 0:
            raise UsageError(f"{name} {value} must not be negative")
    for name, value, allowed in (
        ("--stage", cfg.stage, STAGES),
        ("--caption-mode", cfg.caption_mode, CAPTION_MODES),
        ("--prediction", cfg.prediction, PREDICTIONS),
        ("sampler", cfg.sampler, SAMPLERS),
    ):
        if value not in allowed:
            raise UsageError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    for name, value in (
        ("--steps", cfg.steps),
        ("--batch-size", cfg.batch_size),
        ("--log-every", cfg.log_every),
        ("--save-every", cfg.save_every),
        ("--dataset-size", cfg.dataset_size),
    ):
        if value < 1:
            raise UsageError(f"{name} {value} must be at least 1")
    if not 0 <= cfg.caption_dropout < 1:
        raise UsageError(f"--caption-dropout {cfg.caption_dropout} must be in [0, 1)")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise UsageError(f"--lr {cfg.lr} must be a positive finite number")
    width = cfg.num_heads * cfg.head_dim
    if cfg.micro_conditions and width % 3:
        raise UsageError(
            f"micro_conditions embed height, width and aspect ratio in thirds of the model width; "
            f"num_heads x head_dim = {width} is not divisible by 3"
        )


def resolve_config(preset: str, config_file: Path | None, overrides: dict) -> PixArtConfig:
    from mltk.config import build_config

    if preset not in PRESETS:
        raise UsageError(f"--preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    cfg = build_config(PixArtConfig, preset=PRESETS[preset], file=config_file, overrides=overrides)
    _check_cfg(cfg)
    from .model import check_resolution, vae_factor

    check_resolution(cfg.image_size, cfg.image_size, cfg.patch_size, vae_factor(cfg))
    return cfg


def run_train(rt, *, preset, config_file, overrides, init, data, out, resume) -> dict:
    from mltk.config import config_from_dict
    from mltk.runs import RunDir

    from .data import folder_dataset, world_dataset
    from .training import run_training

    if resume is not None:
        run = RunDir.create("pixart", resume=resume)
        saved = run.read_config()
        cfg = config_from_dict(PixArtConfig, saved["config"], source=f"{resume}/config.json")
        for k, v in overrides.items():  # only the step budget may change on resume
            if v is not None and k == "steps":
                cfg.steps = v
        ignored = sorted(k for k, v in overrides.items() if v is not None and k != "steps")
        ignored += ["out"] if out is not None else []
        if ignored:
            flags = ", ".join("--" + k.replace("_", "-") for k in ignored)
            rt.out.warn(
                f"--resume continues {run.path} with its saved configuration; ignoring {flags}"
            )
        init = Path(saved["init"]) if saved.get("init") else None
        if data is None and str(saved.get("data", "")).startswith("folder:"):
            data = Path(saved["data"][len("folder:") :])
    else:
        cfg = resolve_config(preset, config_file, overrides)
        if cfg.stage == "aesthetic" and init is None:
            raise UsageError(
                "--stage aesthetic fine-tunes a stage-2 model: pass --init RUN_FOLDER of an align run"
            )
        run = RunDir.create("pixart", out=out)
    if init is not None and not Path(init).is_dir():
        what = "is not a folder" if Path(init).exists() else "does not exist"
        raise DataError(f"--init {init} {what}")
    pretrained = None
    if init is not None and (Path(init) / "model_index.json").is_file():
        cfg, pretrained = _from_diffusers_folder(cfg, Path(init))
        init = None
    if data is None:
        if cfg.image_size != 32:
            raise UsageError(
                f"the embedded world is 32x32 but this model trains at {cfg.image_size}px; pass --data FOLDER"
            )
        dataset = world_dataset(cfg.dataset_size, cfg.world_seed)
    else:
        buckets = None
        if cfg.aspect_buckets:
            from .data import buckets_for
            from .model import vae_factor

            factor = pretrained.vae_factor if pretrained is not None else vae_factor(cfg)
            buckets = buckets_for(cfg.image_size, cfg.patch_size * factor)
        dataset = folder_dataset(Path(data), cfg.image_size, warn=rt.out.warn, buckets=buckets)
    text_components = None
    if pretrained is None and (data is not None or cfg.autoencoder == "sd"):
        text_components = _text_components_for(cfg, init)
    summary = run_training(cfg, dataset, run=run, rt=rt, init=init, resume=resume is not None,
                           text_components=text_components, pretrained=pretrained)  # fmt: skip
    from mltk.output import Table

    summary.pop("history", None)
    rows = [[k, v] for k, v in summary.items() if not isinstance(v, dict)]
    rows += [[f"cache.{k}", v] for k, v in summary["cache"].items()]
    rt.out.result(summary, table=Table(f"pixart train ({cfg.stage})", ["", "value"], rows))
    return summary


def _from_diffusers_folder(cfg: PixArtConfig, folder: Path):
    """Fine-tuning a diffusers PixArt folder: the model's own sizes replace the preset's."""
    from dataclasses import replace

    from .pipeline_io import load_pipeline
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
        from .pipeline_io import load_pipeline

        b = load_pipeline(Path(init) / "pipeline")
        return b.tokenizer, b.text_encoder
    if cfg.text_dim > 512:
        raise UsageError(
            "training the paper preset needs a T5 encoder: pass --init with a run whose pipeline/ holds one"
        )
    return world_text_components(cfg)


def resolve_checkpoint(path: Path | None) -> Path:
    """A run folder -> its pipeline/; a diffusers folder -> itself; nothing -> the shipped tiny model."""
    if path is None:
        if not (SHIPPED / "model_index.json").is_file():
            raise DataError(
                "no checkpoint given and no shipped tiny model found; run `mltk pixart train --preset tiny` "
                "and pass its run folder"
            )
        return SHIPPED
    path = Path(path)
    if not path.exists():
        raise DataError(f"checkpoint folder {path} does not exist")
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


def _load(rt, checkpoint, text_encoder: bool = True):
    from .pipeline_io import load_pipeline
    from .training import quiet_libraries

    quiet_libraries()
    folder = resolve_checkpoint(checkpoint)
    return load_pipeline(
        folder, device=rt.device, dtype=rt.dtype, text_encoder=text_encoder
    ), folder


def _prompt_embeddings(rt, bundle, folder: Path, texts: list[str], negative: str):
    """T5 features of the prompts through the dataset cache: on a hit T5 is never loaded; on a
    miss it is loaded, used once and freed before denoising."""
    import hashlib

    import torch

    from mltk.cache import cached_arrays

    from .pipeline_io import attach_text_encoder, text_encoder_fingerprint
    from .sampling import encode_prompts, free_text_encoder
    from .text import text_dtype

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


def read_prompts(prompts: list[str], prompts_file: Path | None) -> list[str]:
    out = [p for p in prompts]
    if prompts_file is not None:
        if not Path(prompts_file).is_file():
            what = "is a folder" if Path(prompts_file).is_dir() else "does not exist"
            raise DataError(f"--prompts-file {prompts_file} {what}; give a text file")
        lines = [ln.strip() for ln in Path(prompts_file).read_text(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln]
        if not lines:
            raise DataError(f"--prompts-file {prompts_file} holds no prompts (it is empty)")
        out += lines
    if not out:
        raise UsageError(
            'no prompt given: pass a prompt, e.g. `mltk pixart generate "a red circle"`, or --prompts-file'
        )
    if any(not p.strip() for p in out):
        raise UsageError("a prompt is empty; give text for every prompt")
    return out


def run_generate(
    rt,
    prompts,
    *,
    prompts_file,
    checkpoint,
    negative_prompt,
    num_images,
    steps,
    guidance,
    sampler,
    height,
    width,
    batch_size,
    out,
    resolution_binning=False,
) -> dict:
    import torch
    from PIL import Image

    from mltk.output import Table

    from .sampling import generate

    texts = read_prompts(prompts, prompts_file)
    _check_guidance(guidance)
    for name, value in (("--height", height), ("--width", width)):
        if value is not None and not 1 <= value <= MAX_SIDE:
            raise UsageError(f"{name} {value} must be between 1 and {MAX_SIDE} pixels")
    if num_images < 1:
        raise UsageError(f"--num-images {num_images} must be at least 1")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size} must be at least 1")
    if sampler not in SAMPLERS:
        raise UsageError(f"--sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    bundle, folder = _load(rt, checkpoint, text_encoder=False)
    all_prompts = [p for p in texts for _ in range(num_images)]
    seeds = [rt.seed + j for _ in texts for j in range(num_images)]
    import time

    t0 = time.time()  # images/s counts prompt encoding (or the cache read), denoising and decoding
    emb, cache_state = _prompt_embeddings(rt, bundle, folder, texts, negative_prompt)
    rows = torch.arange(len(texts)).repeat_interleave(num_images).to(rt.device)
    emb = {k: v[rows] for k, v in emb.items()}  # one row per image
    with rt.out.progress(len(all_prompts), "generating") as bar:
        images = generate(bundle, all_prompts, seeds=seeds, negative_prompt=negative_prompt, height=height,
                          width=width, steps=steps, guidance=guidance, sampler=sampler, batch_size=batch_size,
                          device=rt.device, on_batch=bar.advance, embeddings=emb,
                          resolution_binning=resolution_binning)  # fmt: skip
    seconds = time.time() - t0
    out_dir = (
        Path(out)
        if out is not None
        else Path("runs") / "pixart" / time.strftime("%Y%m%d-%H%M%S-samples")
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir} cannot be created ({exc.strerror})") from exc
    files = []
    for i, (img, p, s) in enumerate(zip(images, all_prompts, seeds)):
        f = out_dir / f"{i:03d}-seed{s}.png"
        Image.fromarray(img).save(f)
        files.append({"file": str(f), "prompt": p, "seed": s})
    grid = out_dir / "grid.png"
    _grid(images, num_images).save(grid)
    result = {
        "checkpoint": str(folder),
        "images": files,
        "grid": str(grid),
        "seconds": round(seconds, 3),
        "images_per_second": round(len(images) / max(seconds, 1e-9), 3),
        "sampler": sampler,
        "steps": steps,
        "guidance": guidance,
        "prompt_cache": cache_state,
    }
    table = Table(
        "pixart generate",
        ["file", "seed", "prompt"],
        [[f["file"], f["seed"], f["prompt"]] for f in files],
    )
    rt.out.result(result, table=table)
    return result


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


def run_eval(rt, checkpoint, *, n, steps, guidance, sampler, clip, batch_size) -> dict:
    from mltk.output import Table

    from .evaluation import clip_score, eval_scenes, evaluate_images
    from .sampling import generate

    if n < 2:
        raise UsageError(
            f"--prompts {n} must be at least 2 (the Fréchet distance needs two images)"
        )
    if n > MAX_EVAL_PROMPTS:
        raise UsageError(f"--prompts {n} must be at most {MAX_EVAL_PROMPTS}")
    _check_guidance(guidance)
    if sampler not in SAMPLERS:
        raise UsageError(f"--sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if clip is not None and not Path(clip).is_dir():
        raise DataError(f"--clip {clip} does not exist")
    bundle, folder = _load(rt, checkpoint)
    scenes, prompts, real = eval_scenes(n)
    images = generate(bundle, prompts, seeds=[rt.seed + i for i in range(n)], steps=steps, guidance=guidance,
                      sampler=sampler, batch_size=batch_size, device=rt.device)  # fmt: skip
    metrics = evaluate_images(images, scenes, real) if images.shape[1:3] == real.shape[1:3] else {}
    if not metrics:
        rt.out.warn("the model's resolution is not the world's 32x32: attribute scores skipped")
    if clip is not None:
        metrics["clip_score"] = clip_score(images, prompts, Path(clip))
    result = {"checkpoint": str(folder), "prompts": n, "steps": steps, "guidance": guidance,
              "sampler": sampler, **metrics}  # fmt: skip
    rows = [[k, round(v, 4) if isinstance(v, float) else v] for k, v in metrics.items()]
    rt.out.result(result, table=Table(f"pixart eval ({n} prompts)", ["metric", "value"], rows))
    return result

"""The bodies of `mltk geom-erasing make-dataset|detect|erase|generate|eval` (heavy imports
live here, not in plugin.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError

from .concepts import CONCEPT_WORDS, CONCEPTS

SHIPPED = Path(__file__).parent / "weights" / "erased-tiny"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


# ----------------------------------------------------------------------------- concepts


def concept_list(spec: str) -> list[str]:
    """``--concept`` as caption words: qr -> "qr code"; other names as given."""
    from .locations import check_concept

    words = [check_concept(c) for c in spec.split(",")]
    return list(dict.fromkeys(CONCEPT_WORDS.get(w, w) for w in words))


def key_of(word: str) -> str | None:
    """The embedded concept a caption word names (None: not one the embedded detector knows)."""
    return {v: k for k, v in CONCEPT_WORDS.items()}.get(word, word if word in CONCEPTS else None)


def embedded_keys(words: list[str], what: str) -> list[str]:
    keys = [key_of(w) for w in words]
    if None in keys:
        bad = words[keys.index(None)]
        raise UsageError(
            f"{what} knows qr, watermark and text; {bad!r} needs --data with --boxes or --detector"
        )
    return keys


# ----------------------------------------------------------------------------- data


def world_contaminated(
    size: int, keys: list[str], ratio: float, seed: int, placement: str = "corner"
):
    """The shapes world with ``keys`` drawn into ``ratio`` of the images."""
    from mltk.data.captioned import world_dataset

    from .concepts import contaminate
    from .erase import Contaminated

    data = world_dataset(size, seed)
    images, found = contaminate(data.images, keys, ratio, seed=seed + 1, placement=placement)
    boxes = [
        [{"concept": CONCEPT_WORDS[f["concept"]], "box": f["box"]} for f in fs] for fs in found
    ]
    data.images = images
    data.fingerprint += f":{','.join(keys)}:{ratio}:{placement}"
    return Contaminated(data, boxes)


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read ({exc})") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n} is not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or "image" not in row:
            raise DataError(f'{path}:{n} is not an object with an "image" key')
        rows.append({**row, "_line": n})
    return rows


def _entries(data: Path) -> list[tuple[str, list[str]]]:
    """(image path relative to the data's root, captions) for a make-dataset folder, a JSONL of
    image/caption lines, or a folder of images with .txt captions."""
    if data.is_dir() and (data / "captions.jsonl").is_file():
        data = data / "captions.jsonl"
    if data.is_file():
        out = []
        for row in _read_jsonl(data):
            caps = row.get("caption")
            caps = [caps] if isinstance(caps, str) else list(caps or [])
            caps = [c.strip() for c in caps if isinstance(c, str) and c.strip()]
            if not caps:
                raise DataError(f"{data}:{row['_line']}: the caption of {row['image']} is empty")
            out.append((str(row["image"]), caps))
        if not out:
            raise DataError(f"{data} lists no images")
        return out
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{data} holds no images (.png, .jpg, .jpeg, .webp, .bmp)")
    out = []
    for p in files:
        txt = p.with_suffix(".txt")
        lines = (
            [x.strip() for x in txt.read_text().splitlines() if x.strip()] if txt.is_file() else []
        )
        out.append((str(p.relative_to(data)), lines or [p.stem.replace("_", " ")]))
    return out


def read_boxes(path: Path, names: set[str], words: list[str]) -> dict[str, list[dict]]:
    """``--boxes``: image name -> boxes; DataError for a line naming an image not in the data."""
    out: dict[str, list[dict]] = {}
    for row in _read_jsonl(path):
        name = str(row["image"])
        if name not in names:
            raise DataError(
                f"{path}:{row['_line']} names the image {name!r}, which is not in the data"
            )
        found = []
        for b in row.get("boxes", []):
            if isinstance(b, dict):
                concept, box = str(b.get("concept", words[0])), b.get("box")
            else:
                concept, box = words[0], b
            if not isinstance(box, list) or len(box) != 4:
                raise DataError(f"{path}:{row['_line']}: a box must be [x0, y0, x1, y1]")
            found.append(
                {"concept": CONCEPT_WORDS.get(concept, concept), "box": [float(v) for v in box]}
            )
        out.setdefault(name, []).extend(found)
    return out


def folder_contaminated(
    data: Path, words: list[str], size: int, *, boxes: Path | None, detector: str, log
):
    """A user's images with boxes from ``boxes`` (or the folder's boxes.jsonl) or a detector,
    resized to ``size`` x ``size`` (boxes scaled with them)."""
    import hashlib

    from PIL import Image

    from mltk.data.captioned import CaptionedImages

    from . import locations as L
    from .detector import detect
    from .erase import Contaminated

    root = data if data.is_dir() else data.parent
    entries = _entries(data)
    if boxes is None and (root / "boxes.jsonl").is_file():
        boxes = root / "boxes.jsonl"
    table = read_boxes(boxes, {e[0] for e in entries}, words) if boxes is not None else None
    images, found_all, shapes = [], [], []
    digest = hashlib.sha256()
    for name, caps in entries:
        try:
            with Image.open(root / name) as im:
                im = im.convert("RGB")
                shapes.append(im.size)
                images.append(np.asarray(im.resize((size, size), Image.BICUBIC)))
        except (OSError, ValueError) as exc:
            raise DataError(f"image {root / name} cannot be read ({exc})") from exc
        digest.update(name.encode() + images[-1].tobytes() + "\n".join(caps).encode())
    images = np.stack(images)
    if table is None:
        log(f"finding boxes with the {detector} detector")
        if detector == "embedded":
            embedded_keys(words, "the embedded detector")
        raw = detect(images, detector, concept=words[0], log=log)
        found_all = [
            [
                {"concept": CONCEPT_WORDS.get(f["concept"], f["concept"]), "box": f["box"]}
                for f in fs
            ]
            for fs in raw
        ]
    else:
        for (name, _), (w, h) in zip(entries, shapes):
            fs = []
            for f in table.get(name, []):
                L.cells_of_box(f["box"], w, h, 1)  # refuses boxes outside the image
                x0, y0, x1, y1 = f["box"]
                sx, sy = size / w, size / h
                fs.append(
                    {
                        "concept": f["concept"],
                        "box": [
                            int(x0 * sx),
                            int(y0 * sy),
                            max(int(x0 * sx) + 1, round(x1 * sx)),
                            max(int(y0 * sy) + 1, round(y1 * sy)),
                        ],
                    }
                )
            found_all.append(fs)
    found_all = [[f for f in fs if f["concept"] in words] for fs in found_all]
    cd = CaptionedImages(
        images=images,
        short=[c[0] for _, c in entries],
        dense=[c[1:] or c[:1] for _, c in entries],
        classes=np.zeros(len(images), np.int64),
        clean=np.ones(len(images), bool),
        name=f"folder:{data}",
        fingerprint=digest.hexdigest()[:20],
    )
    return Contaminated(cd, found_all)


def model_contaminated(bundle, words: list[str], cfg, rt):
    """The model setting: images the base generates from world prompts, with detected boxes."""
    from mltk.cache import cached_arrays
    from mltk.data import world as W
    from mltk.data.captioned import CaptionedImages
    from mltk.t2i.pipeline_io import folder_fingerprint
    from mltk.t2i.sampling import generate

    from .detector import detect
    from .erase import Contaminated

    keys = (
        embedded_keys(words, "the model setting's embedded detector")
        if cfg.detector == "embedded"
        else None
    )
    world = W.make_world(cfg.size, seed=cfg.world_seed + 5000, low_quality_fraction=0.0)
    rng = np.random.default_rng(cfg.world_seed)
    prompts = [d[int(rng.integers(len(d)))] for d in world.dense]

    def build():
        rt.out.log(f"model setting: generating {len(prompts)} images with the base")
        with rt.out.progress(len(prompts), "generating") as bar:
            return {
                "images": generate(
                    bundle,
                    prompts,
                    seeds=[cfg.world_seed * 100_000 + i for i in range(len(prompts))],
                    steps=20,
                    guidance=4.5,
                    batch_size=64,
                    device=rt.device,
                    on_batch=bar.advance,
                )
            }

    # cached: the methods compared on one base share its images (minutes each on a CPU)
    images = cached_arrays(
        "geom-erasing-model-setting",
        {
            "size": cfg.size,
            "seed": cfg.world_seed,
            "device": str(rt.device),
            "dtype": str(rt.dtype),
        },
        build,
        fingerprint=folder_fingerprint(Path(bundle.info["folder"])),
    )["images"]
    raw = detect(images, cfg.detector, concept=words[0], log=rt.out.log)
    found = [
        [
            {"concept": CONCEPT_WORDS.get(f["concept"], f["concept"]), "box": f["box"]}
            for f in fs
            if keys is None or f["concept"] in keys
        ]
        for fs in raw
    ]
    cd = CaptionedImages(
        images=images,
        short=prompts,
        dense=[[p] for p in prompts],
        classes=np.zeros(len(images), np.int64),
        clean=np.ones(len(images), bool),
        name="generated",
        fingerprint=f"generated:{bundle.info.get('folder')}:{cfg.size}:{cfg.world_seed}",
    )
    cont = Contaminated(cd, found)
    rt.out.log(f"the base painted a concept into {100 * cont.share:.1f}% of its images")
    return cont


# ----------------------------------------------------------------------------- models


def open_model(path: Path | None) -> Path:
    """A model folder: an erase run -> its pipeline/; a diffusers folder -> itself; None -> the
    erased tiny model shipped with mltk."""
    if path is None:
        if not (SHIPPED / "model_index.json").is_file():
            raise DataError(f"the shipped erased model is missing from {SHIPPED}; reinstall mltk")
        return SHIPPED
    path = Path(path)
    if not path.is_dir():
        raise DataError(
            f"model folder {path} does not exist"
            if not path.exists()
            else f"{path} is a file; give an erase run or a diffusers folder"
        )
    if (path / "pipeline" / "model_index.json").is_file():
        return path / "pipeline"
    if (path / "config.json").is_file() and not (path / "model_index.json").is_file():
        raise DataError(
            f"run folder {path} has no pipeline/; was its erase interrupted? "
            f"(resume it with erase --resume {path})"
        )
    return path


def load_bundle(folder: Path, rt):
    from mltk.t2i.pipeline_io import load_pipeline, quiet_libraries

    quiet_libraries()
    return load_pipeline(folder, device=rt.device, dtype=rt.dtype)


def erase_info(bundle) -> dict:
    return dict(bundle.info.get("erase") or {})


# ----------------------------------------------------------------------------- verbs


def run_make_dataset(cfg, rt) -> dict:
    from PIL import Image

    from mltk import atomic

    words = concept_list(cfg.concept)
    keys = embedded_keys(words, "make-dataset")
    cont = world_contaminated(cfg.size, keys, cfg.ratio, cfg.world_seed, cfg.placement)
    out = rt.output.path
    (out / "images").mkdir(parents=True, exist_ok=True)
    caps, boxes = [], []
    for i, img in enumerate(cont.data.images):
        name = f"images/{i:06d}.png"
        Image.fromarray(img).save(out / name)
        caps.append(
            json.dumps({"image": name, "caption": [cont.data.short[i], *cont.data.dense[i]]})
        )
        boxes.append(json.dumps({"image": name, "boxes": cont.boxes[i]}))
    atomic.write_text(out / "captions.jsonl", "\n".join(caps) + "\n")
    atomic.write_text(out / "boxes.jsonl", "\n".join(boxes) + "\n")
    preview = out / "preview.png"
    overlay_grid(cont.data.images[:32], cont.boxes[:32], 8).save(preview)
    return {
        "folder": str(out),
        "images": len(caps),
        "with_concept": int(sum(bool(b) for b in cont.boxes)),
        "concepts": words,
        "captions": str(out / "captions.jsonl"),
        "boxes": str(out / "boxes.jsonl"),
        "preview": str(preview),
    }


def _image_files(path: Path) -> tuple[list[Path], Path]:
    if path.is_file():
        return [path], path.parent
    if (path / "captions.jsonl").is_file():
        return [path / e[0] for e in _entries(path)], path
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path} holds no images")
    return files, path


def run_detect(cfg, rt) -> dict:
    from PIL import Image

    from . import locations as L
    from .detector import detect

    files, root = _image_files(Path(cfg.images))
    images, sizes = [], set()
    for f in files:
        try:
            with Image.open(f) as im:
                images.append(np.asarray(im.convert("RGB")))
        except (OSError, ValueError) as exc:
            raise DataError(f"image {f} cannot be read ({exc})") from exc
        sizes.add(images[-1].shape)
    if cfg.detector == "embedded" and len(sizes) > 1:
        raise DataError(f"the embedded detector needs images of one size; found {len(sizes)} sizes")
    arr = np.stack(images) if len(sizes) == 1 else None
    if arr is not None:
        found = detect(
            arr, cfg.detector, concept=cfg.concept, seed=cfg.detector_seed, log=rt.out.log
        )
    else:
        found = [detect(im[None], cfg.detector, concept=cfg.concept)[0] for im in images]
    rows = []
    for f, img, fs in zip(files, images, found):
        h, w = img.shape[:2]
        for b in fs:
            b["concept"] = CONCEPT_WORDS.get(b["concept"], b["concept"])
            b["cells"] = L.cells_of_box(b["box"], w, h, cfg.grid)
        rows.append({"image": str(f.relative_to(root)), "boxes": fs})
    out = rt.output.path
    from mltk import atomic

    atomic.write_text(out / "boxes.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    overlay = out / "overlay.png"
    if arr is not None:
        overlay_grid(arr[:64], found[:64], 8).save(overlay)
    hits = sum(bool(r["boxes"]) for r in rows)
    return {
        "images": len(rows),
        "with_concept": hits,
        "rate": round(hits / len(rows), 4),
        "boxes": str(out / "boxes.jsonl"),
        "overlay": str(overlay) if arr is not None else None,
        "detections": [
            {
                "image": r["image"],
                "concept": b["concept"],
                "box": b["box"],
                "cells": " ".join(f"<l{c}>" for c in b["cells"]),
            }
            for r in rows[:50]
            for b in r["boxes"]
        ],
    }


def run_erase(cfg, rt) -> dict:
    from dataclasses import replace

    from mltk.t2i.pipeline_io import save_pipeline

    from .erase import erase

    words = concept_list(cfg.concept)
    base = open_model(cfg.base) if cfg.base is not None else _shipped_base()
    if cfg.lr is None:
        cfg = replace(cfg, lr=_default_lr(base))
    rt.config = cfg
    bundle = load_bundle(base, rt)
    size = cfg.image_size or bundle.native_size
    if cfg.setting == "model":
        if cfg.data is not None:
            raise UsageError("--setting model generates its own data from the base; drop --data")
        cont = model_contaminated(bundle, words, cfg, rt)
    elif cfg.data is None:
        keys = embedded_keys(words, "the embedded world")
        if size != 32:
            raise UsageError(
                f"the embedded world is 32x32 but {base} is a {size} px model; pass --data"
            )
        cont = world_contaminated(cfg.size, keys, cfg.ratio, cfg.world_seed, cfg.placement)
    else:
        cont = folder_contaminated(
            Path(cfg.data),
            words,
            size,
            boxes=cfg.boxes,
            detector=cfg.detector,
            log=rt.out.log,
        )
    rt.out.log(
        f"{len(cont.data)} images, {100 * cont.share:.1f}% with {', '.join(words)}; "
        f"method {cfg.method}"
    )
    if cont.share == 0:
        rt.out.warn("no image carries the concept: there is nothing to bind or erase")
    run = rt.run
    summary = erase(bundle, cont, words, cfg, rt, run)
    info = {
        "method": cfg.method,
        "setting": cfg.setting,
        "concepts": words,
        "grid": cfg.grid,
        "negative_prompt": summary["negative_prompt"],
        "cell_counts": summary["cell_counts"],
        "region_weight": cfg.region_weight,
        "base": str(base),
    }
    if rt.dist.is_main:
        from mltk import atomic
        from mltk.config import to_dict

        bundle.denoiser, bundle.text_encoder = bundle.denoiser.cpu(), bundle.text_encoder.cpu()
        save_pipeline(
            run.path / "pipeline",
            bundle,
            config=to_dict(cfg),
            extra={"erase": info, "steps": summary["steps"]},
        )
        readme = run.path / "pipeline" / "README.md"
        atomic.write_text(readme, readme.read_text() + readme_note(info))
    run.update_config(cfg, erase=info)
    return {
        "run": str(run.path),
        "pipeline": str(run.path / "pipeline"),
        "images": len(cont.data),
        "with_concept": round(cont.share, 4),
        **summary,
    }


def readme_note(info: dict) -> str:
    """What the folder's README adds for an erase run: the negative prompt to sample with."""
    import textwrap

    text = (
        f"Fine-tuned by `mltk geom-erasing erase --method {info['method']}` to remove "
        f'{", ".join(info["concepts"])}. Sample with `negative_prompt="{info["negative_prompt"]}"` '
        "(as `mltk geom-erasing generate --model THIS_FOLDER` does) for the erased images; the "
        "location tokens are in its tokenizer."
    )
    return "\n" + textwrap.fill(text, 80) + "\n"


def _default_lr(base: Path) -> float:
    """1e-3 for the shipped tiny model and erase runs made from it (their recorded rate), 1e-5
    for any other folder (a released model)."""
    if base in (_shipped_base(), SHIPPED):
        return 1e-3
    try:
        lr = json.loads((base / "mltk.json").read_text())["config"]["lr"]
        return float(lr) if lr else 1e-5
    except (OSError, ValueError, KeyError, TypeError):
        return 1e-5


def _shipped_base() -> Path:
    from mltk.t2i import TINY_MODEL

    return TINY_MODEL


def read_prompts(cfg) -> list[str]:
    texts = list(getattr(cfg, "prompt", ()))
    if cfg.prompts_file is not None:
        try:
            lines = Path(cfg.prompts_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"--prompts-file {cfg.prompts_file} cannot be read ({exc})") from exc
        found = [x.strip() for x in lines if x.strip()]
        if not found:
            raise DataError(f"--prompts-file {cfg.prompts_file} holds no prompts")
        texts += found
    return texts


def negative_of(bundle, cfg) -> str:
    """The run's negative prompt (``--negative-cells frequent``: only its frequent cells), or
    ``--negative-prompt``."""
    from .erase import negative_for

    if cfg.negative_prompt is not None:
        return cfg.negative_prompt
    info = erase_info(bundle)
    if not info:
        return ""
    counts = [np.array(info["cell_counts"][c]) for c in info["concepts"]]
    return negative_for(info["method"], info["concepts"], info["grid"], counts, cfg.negative_cells)


def icr(
    images: np.ndarray, words: list[str], detector: str = "embedded", seed: int = 0, log=None
) -> tuple[dict, list]:
    """Implicit concept rate: the share of images in which the detector fires, per concept."""
    from .detector import detect

    found = detect(images, detector, concept=words[0] if words else None, seed=seed, log=log)
    rates = {}
    for w in words:
        k = key_of(w) if detector == "embedded" else w
        rates[w] = float(np.mean([any(f["concept"] in (k, w) for f in fs) for fs in found]))
    return rates, found


def sample(bundle, prompts, seeds, negative: str, cfg, rt, label: str):
    """Images for ``prompts`` with ``negative`` as the unconditional branch (uint8 arrays)."""
    from mltk.t2i.sampling import generate

    with rt.out.progress(len(prompts), f"generating ({label})") as bar:
        return generate(
            bundle,
            prompts,
            seeds=seeds,
            negative_prompt=negative,
            steps=cfg.steps,
            guidance=cfg.guidance,
            batch_size=cfg.batch_size,
            device=rt.device,
            on_batch=bar.advance,
        )


def run_generate(cfg, rt) -> dict:
    from PIL import Image

    folder = open_model(cfg.model)
    bundle = load_bundle(folder, rt)
    info = erase_info(bundle)
    texts = read_prompts(cfg)
    n = cfg.num_images
    prompts = [p for p in texts for _ in range(n)]
    seeds = [rt.seed + j for _ in texts for j in range(n)]
    negative = negative_of(bundle, cfg)
    variants = []
    if cfg.erase:
        variants.append(("erased", negative))
    if cfg.compare or not cfg.erase:
        variants.append(("without", ""))
    words = info.get("concepts", [])
    detectable = [w for w in words if key_of(w) is not None]
    out_dir, results, panels = rt.output.path, {}, []
    t0 = time.time()
    for name, neg in variants:
        images = sample(bundle, prompts, seeds, neg, cfg, rt, name)
        found = [[] for _ in images]
        row = {"negative_prompt": neg}
        if detectable and images.shape[1:3] == (32, 32):
            rates, found = icr(images, detectable)
            row["icr"] = {w: round(r, 4) for w, r in rates.items()}
        files = []
        for i, (img, s) in enumerate(zip(images, seeds)):
            f = out_dir / f"{name}-{i:03d}-seed{s}.png"
            Image.fromarray(img).save(f)
            files.append(str(f))
        row["images"] = files
        results[name] = row
        panels.append((name, images, found))
    grid = out_dir / "grid.png"
    comparison_grid(panels).save(grid)
    return {
        "model": str(folder),
        "method": info.get("method"),
        "prompts": texts,
        "seconds": round(time.time() - t0, 2),
        "grid": str(grid),
        **results,
    }


def run_eval(cfg, rt) -> dict:
    from mltk.t2i.evaluation import clip_score, eval_scenes, evaluate_images

    sources = rt.sources or [None]
    rows = []
    for src in sources:
        folder = open_model(Path(str(getattr(src, "path", src))) if src is not None else None)
        bundle = load_bundle(folder, rt)
        info = erase_info(bundle)
        words = concept_list(cfg.concept or ",".join(info.get("concepts") or ["qr"]))
        if cfg.prompts_file is not None:
            prompts, scenes, real = read_prompts(cfg), None, None
            prompts = prompts * max(1, cfg.prompts // len(prompts))
        else:
            scenes, prompts, real = eval_scenes(cfg.prompts)
        negative = negative_of(bundle, cfg) if cfg.erase else ""
        t0 = time.time()
        seeds = [rt.seed + i for i in range(len(prompts))]
        images = sample(bundle, prompts, seeds, negative, cfg, rt, folder.name)
        seconds = time.time() - t0
        row = {
            "model": str(folder),
            "method": info.get("method", "none"),
            "negative_prompt": negative,
        }
        if cfg.detector == "embedded":
            words = [w for w in words if key_of(w) is not None]
        rates, _ = icr(images, words, cfg.detector, cfg.detector_seed, log=rt.out.log)
        row.update({f"icr_{key_of(w) or w}": round(r, 4) for w, r in rates.items()})
        if cfg.cross_check is not None:
            rates, _ = icr(images, words, "embedded", cfg.cross_check, log=rt.out.log)
            row.update({f"icr_{key_of(w) or w}_cross": round(r, 4) for w, r in rates.items()})
        if scenes is not None and images.shape[1:3] == real.shape[1:3]:
            m = evaluate_images(images, scenes, real)
            row.update(alignment=round(m["acc_all"], 4), frechet=round(m["frechet"], 3))
        if cfg.clip is not None:
            row["clip_score"] = round(clip_score(images, prompts, Path(cfg.clip)), 3)
        row["seconds"] = round(seconds, 2)
        rows.append(row)
    return {"prompts": cfg.prompts, "steps": cfg.steps, "guidance": cfg.guidance, "runs": rows}


# ----------------------------------------------------------------------------- pictures


def _draw_boxes(img: np.ndarray, found: list[dict], scale: int):
    from PIL import Image, ImageDraw

    im = Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
    d = ImageDraw.Draw(im)
    colours = {"qr code": (255, 0, 255), "watermark": (0, 255, 255), "text": (255, 128, 0)}
    for f in found:
        x0, y0, x1, y1 = (v * scale for v in f["box"])
        d.rectangle(
            [x0, y0, x1 - 1, y1 - 1],
            outline=colours.get(CONCEPT_WORDS.get(f["concept"], f["concept"]), (255, 0, 0)),
        )
    return np.asarray(im)


def overlay_grid(images: np.ndarray, found: list[list[dict]], cols: int):
    from PIL import Image

    scale = max(1, 128 // images.shape[1])
    tiles = [_draw_boxes(im, fs, scale) for im, fs in zip(images, found)]
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    canvas = np.zeros((rows * (h + 2), cols * (w + 2), 3), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = t
    return Image.fromarray(canvas)


def comparison_grid(panels):
    """One row per variant (erased, plain), boxes drawn; the variant's name on the left."""
    from PIL import Image, ImageDraw

    rows = [np.asarray(overlay_grid(images, found, len(images))) for _, images, found in panels]
    label = 70
    width = max(r.shape[1] for r in rows) + label
    canvas = Image.new("RGB", (width, sum(r.shape[0] for r in rows)), (0, 0, 0))
    d, y = ImageDraw.Draw(canvas), 0
    for (name, _, _), r in zip(panels, rows):
        canvas.paste(Image.fromarray(r), (label, y))
        d.text((4, y + r.shape[0] // 2 - 6), name, fill=(255, 255, 255))
        y += r.shape[0]
    return canvas

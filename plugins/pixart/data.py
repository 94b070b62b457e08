"""Captioned image sets and the feature caches training reads from.

Two sources: the embedded procedural world (:mod:`.world`) and a user's image folder, where
``cat.png`` is captioned by ``cat.txt`` (first line: the short caption; every further line: one
dense caption; a caption-less image gets its file name as short caption). Sub-folders give the
stage-1 class labels, as in an ImageNet layout. Unreadable images are skipped and counted.

Aspect-ratio buckets (the multi-aspect training of the 1024 px model): each folder image goes to
the bucket whose height/width ratio is nearest its own, is resized to cover the bucket and
centre-cropped, and a batch holds images of one bucket only. The buckets are diffusers'
``ASPECT_RATIO_1024_BIN`` table scaled to the training size and snapped to multiples of
patch size x VAE factor; at 256, 512 and 1024 px that is exactly diffusers' own tables.

T5 features are the expensive part of PixArt training, so both the text features of every
distinct caption and the autoencoder latents are computed once and kept in the core dataset
cache (``mltk.cache``); later epochs and later runs read them back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError

from . import world as W

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
FEATURE_VERSION = 1


@dataclass
class CaptionedImages:
    images: np.ndarray  # (N, H, W, 3) uint8
    short: list[str]
    dense: list[list[str]]
    classes: np.ndarray  # (N,) int64 stage-1 class labels
    clean: np.ndarray  # (N,) bool: the high-quality subset used by the aesthetic stage
    name: str
    fingerprint: str
    skipped: int = 0
    scenes: list = field(default_factory=list)  # world scenes (empty for folders)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, keep: np.ndarray) -> CaptionedImages:
        idx = np.flatnonzero(keep)
        return CaptionedImages(
            images=self.images[idx],
            short=[self.short[i] for i in idx],
            dense=[self.dense[i] for i in idx],
            classes=self.classes[idx],
            clean=self.clean[idx],
            name=self.name,
            fingerprint=self.fingerprint + f":subset{hashlib.sha1(idx.tobytes()).hexdigest()[:8]}",
            skipped=self.skipped,
            scenes=[self.scenes[i] for i in idx] if self.scenes else [],
        )


def world_dataset(n: int, seed: int) -> CaptionedImages:
    """The procedural world, kept in the dataset cache (images and scene labels)."""
    from mltk.cache import cached_arrays

    def build():
        w = W.make_world(n, seed)
        return {"images": w.images, "clean": w.clean, **w.label_arrays()}

    arrays = cached_arrays("pixart-world", {"n": n, "seed": seed}, build, version=W.WORLD_VERSION)
    keys = [k for k in arrays if k not in ("images", "clean")]
    scenes = [W.Scene.from_labels({k: int(arrays[k][i]) for k in keys}) for i in range(n)]
    lab = {k: arrays[k] for k in keys}
    return CaptionedImages(
        images=arrays["images"],
        short=[W.short_caption(s) for s in scenes],
        dense=[W.dense_captions(s) for s in scenes],
        classes=(lab["colour1"] * len(W.SHAPES) + lab["shape1"]).astype(np.int64),  # W.NUM_CLASSES
        clean=arrays["clean"].astype(bool),
        name="world",
        fingerprint=f"world-v{W.WORLD_VERSION}-{n}-{seed}",
        scenes=scenes,
    )


@dataclass
class BucketedImages:
    """A captioned image folder split into aspect-ratio buckets: one :class:`CaptionedImages`
    per occupied bucket, all images of a group of the same (height, width)."""

    groups: list[CaptionedImages]
    name: str
    skipped: int = 0

    def __len__(self) -> int:
        return sum(len(g) for g in self.groups)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [tuple(g.images.shape[1:3]) for g in self.groups]

    @property
    def clean(self) -> np.ndarray:
        return np.concatenate([g.clean for g in self.groups])

    @property
    def classes(self) -> np.ndarray:
        return np.concatenate([g.classes for g in self.groups])

    @property
    def short(self) -> list[str]:
        return [t for g in self.groups for t in g.short]

    @property
    def dense(self) -> list[list[str]]:
        return [d for g in self.groups for d in g.dense]

    def subset(self, keep: np.ndarray) -> BucketedImages:
        out, start = [], 0
        for g in self.groups:
            part = g.subset(keep[start : start + len(g)])
            start += len(g)
            if len(part):
                out.append(part)
        return BucketedImages(groups=out, name=self.name, skipped=self.skipped)


def aspect_buckets(size: int, multiple: int) -> dict[float, tuple[int, int]]:
    """Height/width ratio -> (height, width) of each bucket for training at ``size`` px."""
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import ASPECT_RATIO_1024_BIN

    out: dict[float, tuple[int, int]] = {}
    for h, w in ASPECT_RATIO_1024_BIN.values():
        hw = tuple(max(multiple, int(v * size / 1024 / multiple + 0.5) * multiple) for v in (h, w))
        out.setdefault(hw[0] / hw[1], hw)
    return dict(sorted(out.items()))


def bucket_multiple(size: int, step: int) -> int:
    """Bucket sides are multiples of size/16 (PixArt's tables: 64 at 1024 px, 32 at 512 px,
    16 at 256 px), and always of patch size x VAE factor (``step``)."""
    return step * max(1, size // (16 * step))


def buckets_for(size: int, step: int) -> dict[float, tuple[int, int]]:
    """The buckets of a model trained at ``size`` px with patch size x VAE factor ``step``."""
    return aspect_buckets(size, bucket_multiple(size, step))


def nearest_bucket(
    height: int, width: int, buckets: dict[float, tuple[int, int]]
) -> tuple[int, int]:
    """The bucket whose ratio is nearest ``height / width`` (absolute difference of the ratios,
    as PixArt's code and diffusers' ``classify_height_width_bin`` measure it)."""
    r = height / width
    return buckets[min(buckets, key=lambda k: abs(k - r))]


def _load_image(path: Path, size: int, buckets=None) -> np.ndarray:
    """RGB uint8: resized to cover ``size`` x ``size`` (or the nearest bucket), centre-cropped."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        th, tw = nearest_bucket(h, w, buckets) if buckets else (size, size)
        scale = max(th / h, tw / w)
        rw, rh = max(tw, round(w * scale)), max(th, round(h * scale))
        im = im.resize((rw, rh), Image.BICUBIC)
        left, top = (rw - tw) // 2, (rh - th) // 2
        im = im.crop((left, top, left + tw, top + th))
        return np.asarray(im, dtype=np.uint8)


def folder_dataset(
    root: Path, size: int, warn=None, buckets: dict | None = None
) -> CaptionedImages | BucketedImages:
    """Images under ``root`` (recursively) with ``.txt`` captions beside them; with ``buckets``
    (see :func:`aspect_buckets`) grouped by aspect ratio instead of cropped to squares."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"image folder {root} {what}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(
            f"image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    class_names = sorted({str(p.parent.relative_to(root)) for p in files})
    images, short, dense, classes, bad = [], [], [], [], []
    digest = hashlib.sha256()
    for p in files:
        try:
            img = _load_image(p, size, buckets)
        except Exception:  # noqa: BLE001 - any decoding failure means "unreadable"
            bad.append(p)
            continue
        cap = p.with_suffix(".txt")
        lines = []
        if cap.is_file():
            lines = [
                ln.strip() for ln in cap.read_text(errors="replace").splitlines() if ln.strip()
            ]
        if not lines:
            lines = [p.stem.replace("_", " ")]
        images.append(img)
        short.append(lines[0])
        dense.append(lines[1:] or lines[:1])
        classes.append(class_names.index(str(p.parent.relative_to(root))))
        digest.update(p.name.encode() + img.tobytes() + "\n".join(lines).encode())
    if not images:
        raise DataError(f"none of the {len(files)} images in {root} could be read")
    if bad and warn is not None:
        warn(f"skipped {len(bad)} unreadable image(s) in {root}, e.g. {bad[0].name}")
    fingerprint = digest.hexdigest()[:20]
    if buckets is None:
        return CaptionedImages(
            images=np.stack(images),
            short=short,
            dense=dense,
            classes=np.array(classes, np.int64),
            clean=np.ones(len(images), bool),
            name=f"folder:{root}",
            fingerprint=fingerprint,
            skipped=len(bad),
        )
    groups = []
    for hw in sorted({im.shape[:2] for im in images}):
        idx = [i for i, im in enumerate(images) if im.shape[:2] == hw]
        groups.append(
            CaptionedImages(
                images=np.stack([images[i] for i in idx]),
                short=[short[i] for i in idx],
                dense=[dense[i] for i in idx],
                classes=np.array([classes[i] for i in idx], np.int64),
                clean=np.ones(len(idx), bool),
                name=f"folder:{root}",
                fingerprint=f"{fingerprint}:{hw[0]}x{hw[1]}",
                skipped=len(bad),
            )
        )
    return BucketedImages(groups=groups, name=f"folder:{root}", skipped=len(bad))


# ----------------------------------------------------------------------------- captions


def caption_table(data: CaptionedImages) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct captions (``""`` first: the dropped caption) and per-image indices into them:
    short (N,) and dense (N, K) padded with -1. A :class:`BucketedImages` is read group after
    group."""
    texts = [""]
    index: dict[str, int] = {"": 0}

    def idx(t: str) -> int:
        if t not in index:
            index[t] = len(texts)
            texts.append(t)
        return index[t]

    short = np.array([idx(t) for t in data.short], np.int64)
    k = max(len(d) for d in data.dense)
    dense = np.full((len(data), k), -1, np.int64)
    for i, d in enumerate(data.dense):
        dense[i, : len(d)] = [idx(t) for t in d]
    return texts, short, dense


def choose_captions(
    mode: str, short: np.ndarray, dense: np.ndarray, rng: np.random.Generator, drop: float
) -> np.ndarray:
    """Caption index per image for one batch: ``short``, a random ``dense`` one, or ``mixed``
    (half each); with probability ``drop`` the empty caption (index 0) for guidance."""
    if mode not in ("short", "dense", "mixed"):
        raise UsageError(f"--caption-mode must be short, dense or mixed; got {mode!r}")
    n = len(short)
    counts = (dense >= 0).sum(1)
    pick = dense[np.arange(n), (rng.random(n) * counts).astype(np.int64)]
    if mode == "short":
        out = short.copy()
    elif mode == "dense":
        out = pick
    else:
        out = np.where(rng.random(n) < 0.5, short, pick)
    out[rng.random(n) < drop] = 0
    return out


# ----------------------------------------------------------------------------- feature caches


class FeatureStore:
    """Text features and latents through the core cache; counts hits and builds.

    ``get_*`` is called once per epoch: the first call of a process reads the cache (a *hit*)
    or builds the entry (a *miss*); later calls are served from memory (also a hit).
    """

    def __init__(self):
        self.stats = {"text_hits": 0, "text_builds": 0, "latent_hits": 0, "latent_builds": 0}
        self._memo: dict[str, dict] = {}

    def _get(self, kind: str, name: str, params: dict, build) -> dict:
        from mltk.cache import cached_arrays

        key = json.dumps(params, sort_keys=True)
        if key in self._memo:
            self.stats[f"{kind}_hits"] += 1
            return self._memo[key]
        built = []

        def wrapped():
            built.append(True)
            return build()

        arrays = cached_arrays(name, params, wrapped, version=FEATURE_VERSION)
        self.stats[f"{kind}_builds" if built else f"{kind}_hits"] += 1
        self._memo[key] = arrays
        return arrays

    def text(self, texts: list[str], encoder_id: str, encode_fn) -> dict:
        """{"feats": (U, L, C) float32, "mask": (U, L) int64} for the distinct captions."""
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:20]
        params = {"captions": digest, "count": len(texts), "encoder": encoder_id}

        def build():
            feats, mask = encode_fn(texts)
            return {
                "feats": feats.numpy().astype(np.float32),
                "mask": mask.numpy().astype(np.int64),
            }

        return self._get("text", "pixart-t5", params, build)

    def latents(self, data: CaptionedImages, autoencoder_id: str, encode_fn) -> dict:
        """{"mean": (N, C, h, w), "std": ...} of the autoencoder's posterior for every image."""
        params = {"data": data.fingerprint, "n": len(data), "autoencoder": autoencoder_id}

        def build():
            mean, std = encode_fn(data.images)
            return {"mean": mean.numpy().astype(np.float32), "std": std.numpy().astype(np.float32)}

        return self._get("latent", "pixart-latents", params, build)


def module_fingerprint(module, extra: str = "") -> str:
    """A short content hash of a module's weights (keys cache entries to the exact encoder)."""
    h = hashlib.sha256(extra.encode())
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        t = v.detach().float().cpu().contiguous()
        h.update(t.numpy().tobytes()[:4096])  # a prefix of each tensor plus the shape is enough
        h.update(str(tuple(t.shape)).encode())
    return h.hexdigest()[:20]


def load_world(n: int = 6000, seed: int = 0) -> CaptionedImages:
    """Registered dataset loader (``mltk.data.load_dataset("pixart-world")``)."""
    return world_dataset(n, seed)

"""Captioned image sets: the embedded world, image folders with caption files, and JSONL.

- the procedural world (:mod:`mltk.data.world`), kept in the dataset cache;
- an image folder where ``cat.png`` is captioned by ``cat.txt`` (first line: the short caption;
  every further line: one dense caption; a caption-less image gets its file name); sub-folders
  give class labels, as in an ImageNet layout;
- a JSONL file of ``{"image": path, "caption": str | [str, ...]}`` (paths relative to the
  file's folder; the first caption is the short one, the others dense).

Unreadable images are skipped and counted in one warning. With ``buckets`` (aspect-ratio
buckets, see ``mltk.t2i.buckets``) each image goes to the bucket whose height/width ratio is
nearest its own, is resized to cover it and centre-cropped, and images of one bucket form one
group; without, every image is cropped to a square.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mltk.data import world as W
from mltk.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


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
    grouped by aspect ratio instead of cropped to squares."""
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
    entries = []
    for p in files:
        cap = p.with_suffix(".txt")
        lines = []
        if cap.is_file():
            lines = [
                ln.strip() for ln in cap.read_text(errors="replace").splitlines() if ln.strip()
            ]
        entries.append((p, lines or [p.stem.replace("_", " ")],
                        class_names.index(str(p.parent.relative_to(root)))))  # fmt: skip
    return _build(entries, f"folder:{root}", str(root), size, warn, buckets)


def jsonl_dataset(
    path: Path, size: int, warn=None, buckets: dict | None = None, missing: str = "skip"
) -> CaptionedImages | BucketedImages:
    """Images and captions listed in a JSONL file: ``{"image": ..., "caption": ...}`` per line.
    A listed image that is not there is skipped with the unreadable ones, or with
    ``missing="error"`` stops the read, naming its line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"caption file {path} does not exist")
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image, caption = row["image"], row["caption"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f'{path}:{n} is not a JSON object with "image" and "caption" ({exc})'
            ) from exc
        captions = [caption] if isinstance(caption, str) else list(caption)
        captions = [c.strip() for c in captions if isinstance(c, str) and c.strip()]
        if not captions:
            raise DataError(f"{path}:{n}: the caption of {image} is empty")
        if missing == "error" and not (path.parent / image).is_file():
            raise DataError(f"{path}:{n}: image {image} does not exist")
        entries.append((path.parent / image, captions, 0))
    if not entries:
        raise DataError(f"caption file {path} lists no images")
    return _build(entries, f"jsonl:{path}", str(path), size, warn, buckets)


def captioned_dataset(
    source: Path, size: int, warn=None, buckets: dict | None = None, missing: str = "skip"
):
    """A folder of images with caption files, or a ``.jsonl`` list of images and captions
    (``missing``: see :func:`jsonl_dataset`)."""
    source = Path(source)
    if source.suffix.lower() == ".jsonl" and not source.is_dir():
        return jsonl_dataset(source, size, warn, buckets, missing)
    return folder_dataset(source, size, warn, buckets)


def _build(entries, name: str, where: str, size: int, warn, buckets):
    images, short, dense, classes, bad = [], [], [], [], []
    digest = hashlib.sha256()
    for p, lines, label in entries:
        try:
            img = _load_image(p, size, buckets)
        except Exception:  # noqa: BLE001 - any decoding failure means "unreadable"
            bad.append(p)
            continue
        images.append(img)
        short.append(lines[0])
        dense.append(lines[1:] or lines[:1])
        classes.append(label)
        digest.update(p.name.encode() + img.tobytes() + "\n".join(lines).encode())
    if not images:
        raise DataError(f"none of the {len(entries)} images in {where} could be read")
    if bad and warn is not None:
        warn(f"skipped {len(bad)} unreadable image(s) in {where}, e.g. {bad[0].name}")
    fingerprint = digest.hexdigest()[:20]

    def group(idx: list[int], fp: str) -> CaptionedImages:
        return CaptionedImages(
            images=np.stack([images[i] for i in idx]),
            short=[short[i] for i in idx],
            dense=[dense[i] for i in idx],
            classes=np.array([classes[i] for i in idx], np.int64),
            clean=np.ones(len(idx), bool),
            name=name,
            fingerprint=fp,
            skipped=len(bad),
        )

    if buckets is None:
        return group(list(range(len(images))), fingerprint)
    groups = [
        group(
            [i for i, im in enumerate(images) if im.shape[:2] == hw],
            f"{fingerprint}:{hw[0]}x{hw[1]}",
        )
        for hw in sorted({im.shape[:2] for im in images})
    ]
    return BucketedImages(groups=groups, name=name, skipped=len(bad))


def load_world(n: int = 6000, seed: int = 0) -> CaptionedImages:
    """Registered dataset loader (``mltk.data.load_dataset("pixart-world")``)."""
    return world_dataset(n, seed)

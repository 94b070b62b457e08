"""Image-text sets: the shapes world as a stream of chunks, digits with templated captions,
and folders or JSONL files of the user's own images.

An :class:`ImageTextSet` holds uint8 images (N, H, W, 3), one list of captions per image and,
where the data has them, integer class labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mltk.data import world as W

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_TEMPLATES = ("a photo of the digit {}", "a handwritten {}", "the number {}",
                   "a picture of a {}", "{} written by hand")  # fmt: skip
DIGIT_HELD_OUT = ("an image of the numeral {}", "a scan of a {}")


@dataclass
class ImageTextSet:
    images: np.ndarray  # (N, H, W, 3) uint8
    captions: list[list[str]]
    labels: np.ndarray | None = None  # (N,) int64 class labels, where the data has them
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)


def world_stream(chunk_size: int, chunks: int, seed: int = 0, **options) -> Iterator[ImageTextSet]:
    """Chunks of the shapes world as data that keeps arriving: chunk k has its own seed.
    ``options`` go to ``mltk.data.world.make_world`` (``kinds``, ``colour_given_shape``)."""
    for k in range(chunks):
        w = W.make_world(chunk_size, seed=seed * 100_003 + k, **options)
        captions = [[s, *d] for s, d in zip(w.short, w.dense)]
        labels = w.label_arrays()["colour1"] * len(W.SHAPES) + w.label_arrays()["shape1"]
        yield ImageTextSet(w.images, captions, labels.astype(np.int64), f"world-chunk{k}")


def digits_sets(size: int = 32, test_fraction: float = 0.25, seed: int = 0,
                templates=DIGIT_TEMPLATES, held_out=DIGIT_HELD_OUT):  # fmt: skip
    """scikit-learn's 1,797 digits (8x8, upscaled to ``size``) captioned from templates: the
    training set with ``templates``, the test set with ``held_out`` (templates never seen in
    training, for zero-shot and retrieval). Returns (train, test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    imgs = (d.images / 16.0 * 255).round().astype(np.uint8)
    reps = max(1, size // 8)
    imgs = np.repeat(np.repeat(imgs, reps, axis=1), reps, axis=2)
    imgs = np.repeat(imgs[..., None], 3, axis=3)
    idx = np.arange(len(imgs))
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=d.target)

    def make(rows, temps, name):
        caps = [[t.format(DIGIT_NAMES[d.target[i]]) for t in temps] for i in rows]
        return ImageTextSet(imgs[rows], caps, d.target[rows].astype(np.int64), name)

    return make(tr, templates, "digits-train"), make(te, held_out, "digits-test")


def captioned_set(source: Path, size: int, warn=None, missing: str = "skip") -> ImageTextSet:
    """A folder of images with caption files, or a JSONL file (``mltk.data.captioned``;
    ``missing="error"`` stops at a listed image that is not there)."""
    from mltk.data.captioned import captioned_dataset

    data = captioned_dataset(Path(source), size, warn=warn, missing=missing)
    captions = [[s, *[c for c in d if c != s]] for s, d in zip(data.short, data.dense)]
    return ImageTextSet(data.images, captions, data.classes, data.name)

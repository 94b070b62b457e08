"""EPIC's data: the colour-biased shapes world, its counterfactual test split, hard negatives
that change one attribute word, and the user's own pairs.

- Training: ``make_world(n, colour_given_shape=bias)``: with ``bias`` 0.8 a shape takes its own
  colour (``PREFERRED``: circles red, squares blue, triangles green) 85% of the time (0.8 plus
  a uniform draw's quarter), so a caption's colour word is guessable from its shape word.
- Counterfactual test: scenes where no object has its shape's colour, drawn from an unbiased
  world of another seed: text alone now guesses wrong, only the image tells.
- Hard negatives: the caption of the same scene with one attribute changed (a colour, a shape,
  the position, the count), so that one word (or two, for "top left") differs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mltk.data import world as W
from mltk.errors import DataError

TRAIN_SEED, TEST_SEED = 11, 7_777
ATTRIBUTES = ("colour", "shape", "position", "count")
COLOUR_WORDS = tuple(W.COLOURS)
SHAPE_WORDS = tuple(W.SHAPES) + tuple(W.PLURAL.values())
COUNT_WORDS = tuple(W.NUMBER_WORDS.values())
POSITION_WORDS = ("top", "bottom", "left", "right", "center", "above", "below")
ATTRIBUTE_WORDS = {
    "colour": COLOUR_WORDS,
    "shape": SHAPE_WORDS,
    "count": COUNT_WORDS,
    "position": POSITION_WORDS,
}


@dataclass
class Pairs:
    images: np.ndarray  # (N, H, W, 3) uint8
    captions: list[list[str]]  # every caption of an image (one is drawn per step)
    scenes: list | None = None  # world scenes, where the data is the world
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def take(self, idx) -> Pairs:
        idx = np.asarray(idx)
        return Pairs(
            self.images[idx],
            [self.captions[i] for i in idx],
            [self.scenes[i] for i in idx] if self.scenes else None,
            self.name,
        )


def captions_of(scene: W.Scene) -> list[str]:
    return [W.short_caption(scene), *W.dense_captions(scene)]


def world_train(n: int, bias: float, seed: int = TRAIN_SEED) -> Pairs:
    w = W.make_world(n, seed=seed, colour_given_shape=bias)
    return Pairs(w.images, [captions_of(s) for s in w.scenes], list(w.scenes), f"world-bias{bias}")


def counterfactual(scene: W.Scene) -> bool:
    """No object of the scene has its shape's own colour."""
    if W.PREFERRED[scene.shape1] == scene.colour1:
        return False
    return not (scene.kind == "pair" and W.PREFERRED[scene.shape2] == scene.colour2)


def world_test(n: int, seed: int = TEST_SEED) -> Pairs:
    """``n`` counterfactual scenes (their dense captions), from an unbiased world."""
    got_images, got_scenes = [], []
    k = 0
    while len(got_scenes) < n:
        w = W.make_world(max(64, 3 * n), seed=seed + k, colour_given_shape=0.0)
        for img, sc in zip(w.images, w.scenes):
            if counterfactual(sc) and len(got_scenes) < n:
                got_images.append(img)
                got_scenes.append(sc)
        k += 1
    return Pairs(
        np.stack(got_images),
        [W.dense_captions(s) for s in got_scenes],
        got_scenes,
        "world-counterfactual",
    )


def _other(values, current, rng):
    choices = [v for v in values if v != current]
    return choices[int(rng.integers(len(choices)))]


def negative_scene(scene: W.Scene, attribute: str, rng) -> W.Scene | None:
    """The scene with one attribute changed; None where the attribute does not apply."""
    colours = list(W.COLOURS)
    if attribute == "colour":
        if scene.kind == "pair" and rng.random() < 0.5:
            c = _other(colours, scene.colour2, rng)
            if (c, scene.shape2) == (scene.colour1, scene.shape1):
                return None
            return replace(scene, colour2=c)
        c = _other(colours, scene.colour1, rng)
        if scene.kind == "pair" and (c, scene.shape1) == (scene.colour2, scene.shape2):
            return None
        return replace(scene, colour1=c)
    if attribute == "shape":
        s = _other(W.SHAPES, scene.shape1, rng)
        if scene.kind == "pair" and (scene.colour1, s) == (scene.colour2, scene.shape2):
            return None
        return replace(scene, shape1=s)
    if attribute == "position":
        if scene.kind == "single":
            return replace(scene, cell=_other(range(9), scene.cell, rng))
        if scene.kind == "pair":  # swap the two objects: "a above b" becomes "b above a"
            return replace(
                scene,
                colour1=scene.colour2,
                shape1=scene.shape2,
                size1=scene.size2,
                colour2=scene.colour1,
                shape2=scene.shape1,
                size2=scene.size1,
            )
        return None
    if attribute == "count":
        if scene.kind != "count":
            return None
        return replace(scene, count=5 - scene.count)  # two <-> three
    raise ValueError(f"unknown attribute {attribute!r}")


@dataclass
class HardNegative:
    index: int  # the image
    positive: str
    negative: str
    attribute: str


def hard_negatives(scenes: list, seed: int = 0) -> list[HardNegative]:
    """For each scene and each attribute that applies, its first dense caption against the
    same phrasing of the changed scene."""
    rng = np.random.default_rng(seed)
    out = []
    for i, sc in enumerate(scenes):
        for attr in ATTRIBUTES:
            neg = negative_scene(sc, attr, rng)
            if neg is None:
                continue
            pos, bad = W.dense_captions(sc)[0], W.dense_captions(neg)[0]
            if pos != bad:
                out.append(HardNegative(i, pos, bad, attr))
    return out


def user_pairs(source: Path, size: int, warn=None) -> Pairs:
    """A JSONL file of {"image": path, "caption": text or [texts]} (ALBEF's format) or a
    folder of images with caption files (``mltk.data.captioned``)."""
    from mltk.vl.datasets import captioned_set

    source = Path(source)
    if not source.exists():
        raise DataError(f"{source} does not exist")
    data = captioned_set(source, size, warn=warn, missing="error")
    empty = [i for i, cs in enumerate(data.captions) if not any(c.strip() for c in cs)]
    if empty:
        raise DataError(f"{source}: image {empty[0] + 1} has an empty caption")
    return Pairs(data.images, data.captions, None, data.name)


def split(pairs: Pairs, fraction: float = 0.1, seed: int = 0) -> tuple[Pairs, Pairs]:
    """(train, held out): ``fraction`` of the images held out (at least one, at most 500)."""
    n = len(pairs)
    k = min(500, max(1, int(round(n * fraction))))
    if n - k < 2:
        raise DataError(f"{pairs.name} has {n} images: too few to hold out a test share")
    idx = np.random.default_rng(seed).permutation(n)
    return pairs.take(np.sort(idx[k:])), pairs.take(np.sort(idx[:k]))

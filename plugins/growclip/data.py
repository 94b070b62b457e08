"""GrowCLIP's data: arrivals of image-text pairs, the zero-shot tasks and held-out sets.

Embedded: the shapes world as a stream (1,500 -> 4,500 -> 13,500 pairs by default, each chunk
its own seed). With the curriculum (on by default) the first chunk holds single shapes, the
second adds pairs and the third counts, so later data asks for more capacity (relations,
numbers) than the first. Second set: scikit-learn's digits, split into arrivals.

Zero-shot tasks on held-out world images, with prompt templates not used as training captions
(each class's text is the mean of its prompts' embeddings, CLIP's prompt ensemble):

- ``colour-shape`` (12 classes): single shapes and rows of one shape;
- ``position`` (9 cells): single shapes, prompts ensembled over the 12 colour-shape words;
- ``count`` (1, 2 or 3 objects): single shapes and rows, ensembled over colour and shape.

Retrieval R@1/5 both ways on held-out pairs (each image's first dense caption). User data:
caption folders or JSONL files (``mltk.data.captioned``); zero-shot classes from a folder with
one sub-folder per class (``--eval-images``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mltk.data import world as W
from mltk.errors import DataError

CHUNKS = (1500, 4500, 13500)
DIGIT_ARRIVALS = 3
CURRICULUM = (("single",), ("single", "pair"), W.KINDS)
EVAL_SEED = 7_000_001  # held-out images: a seed no chunk uses
VAL_SEED = 7_000_002  # the search's validation images
COLOUR_SHAPE_TEMPLATES = ("there is a {c} {s}", "a {c} {s} is there")
POSITION_TEMPLATE = "a {c} {s} is in the {where}"
COUNT_TEMPLATES = {
    1: "a {c} {s} is there",
    2: "two {c} {p} are there",
    3: "three {c} {p} are there",
}
USER_TEMPLATES = ("a photo of a {}", "a picture of a {}", "an image of a {}")


@dataclass
class Pairs:
    """Images (N, H, W, 3) uint8 and each image's captions (the first is drawn for training at
    random among them)."""

    images: np.ndarray
    captions: list[list[str]]
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def concat(self, other: Pairs) -> Pairs:
        return Pairs(
            np.concatenate([self.images, other.images]),
            self.captions + other.captions,
            f"{self.name}+{other.name}",
        )


@dataclass
class Task:
    """A zero-shot task: images, labels, and each class's prompts."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    prompts: list[list[str]]  # per class
    classes: list[str] = field(default_factory=list)


@dataclass
class Benchmark:
    """What a model is scored on: zero-shot tasks and a retrieval set."""

    tasks: list[Task]
    retrieval: Pairs | None


def chunk_sizes(first: int, arrivals: int, growth: float = 3.0) -> list[int]:
    return [int(round(first * growth**k)) for k in range(arrivals)]


def world_chunk(k: int, size: int, seed: int, curriculum: bool = True) -> Pairs:
    """Arrival ``k`` (0-based) of the world stream."""
    kinds = CURRICULUM[min(k, len(CURRICULUM) - 1)] if curriculum else W.KINDS
    w = W.make_world(size, seed=seed * 100_003 + k, kinds=kinds)
    return Pairs(w.images, [[s, *d] for s, d in zip(w.short, w.dense)], f"world-{k}")


def digits_chunk(k: int, arrivals: int, seed: int = 0) -> Pairs:
    """Arrival ``k`` of scikit-learn's digits (the training split cut into ``arrivals``)."""
    from mltk.vl.datasets import digits_sets

    train, _ = digits_sets(seed=0)
    order = np.random.default_rng(seed).permutation(len(train))
    part = np.array_split(order, arrivals)[k]
    return Pairs(train.images[part], [train.captions[i] for i in part], f"digits-{k}")


def user_chunk(path: Path, size: int, warn=None) -> Pairs:
    from mltk.vl.datasets import captioned_set

    s = captioned_set(Path(path), size, warn=warn)
    return Pairs(s.images, s.captions, Path(path).name)


def world_benchmark(n: int = 600, seed: int = EVAL_SEED) -> Benchmark:
    """The world's zero-shot tasks and retrieval pairs on ``n`` held-out images."""
    w = W.make_world(n, seed=seed, low_quality_fraction=0.0)
    lab = w.label_arrays()
    colours, shapes = list(W.COLOURS), list(W.SHAPES)
    cs = [(c, s) for c in colours for s in shapes]
    one_kind = np.isin(lab["kind"], [W.KINDS.index("single"), W.KINDS.index("count")])
    single = lab["kind"] == W.KINDS.index("single")
    tasks = [
        Task(
            "colour-shape",
            w.images[one_kind],
            (lab["colour1"] * len(shapes) + lab["shape1"])[one_kind],
            [[t.format(c=c, s=s) for t in COLOUR_SHAPE_TEMPLATES] for c, s in cs],
            [f"{c} {s}" for c, s in cs],
        ),
        Task(
            "position",
            w.images[single],
            lab["cell"][single],
            [[POSITION_TEMPLATE.format(c=c, s=s, where=where) for c, s in cs] for where in W.CELLS],
            list(W.CELLS),
        ),
        Task(
            "count",
            w.images[one_kind],
            lab["count"][one_kind],  # objects - 1
            [
                [COUNT_TEMPLATES[n].format(c=c, s=s, p=W.PLURAL[s]) for c, s in cs]
                for n in (1, 2, 3)
            ],
            ["one", "two", "three"],
        ),
    ]
    retrieval = Pairs(w.images, [[d[0]] for d in w.dense], "world-held-out")
    return Benchmark(tasks, retrieval)


def digits_benchmark() -> Benchmark:
    from mltk.vl.datasets import DIGIT_HELD_OUT, DIGIT_NAMES, digits_sets

    _, test = digits_sets(seed=0)
    task = Task(
        "digits",
        test.images,
        test.labels,
        [[t.format(name) for t in DIGIT_HELD_OUT] for name in DIGIT_NAMES],
        list(DIGIT_NAMES),
    )
    return Benchmark([task], Pairs(test.images, [[c[0]] for c in test.captions], "digits-test"))


def folder_task(folder: Path, size: int, classes: tuple[str, ...] = (), warn=None) -> Task:
    """Zero-shot classes from ``folder/<class>/*.png``; ``classes`` names them in prompts
    (default: the sub-folders' names, underscores as spaces)."""
    from mltk.data.captioned import IMAGE_SUFFIXES, _load_image

    folder = Path(folder)
    subs = sorted(p for p in folder.iterdir() if p.is_dir())
    if len(subs) < 2:
        raise DataError(f"--eval-images {folder} needs one sub-folder per class (at least two)")
    if classes and len(classes) != len(subs):
        raise DataError(
            f"--eval-classes names {len(classes)} classes but {folder} has {len(subs)} sub-folders"
        )
    images, labels = [], []
    for c, sub in enumerate(subs):
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"--eval-images: class folder {sub} has no images")
        for f in files:
            try:
                images.append(_load_image(f, size))
            except Exception as e:  # noqa: BLE001 - an unreadable image: skipped, counted
                if warn:
                    warn(f"skipped {f.name}: {e}")
                continue
            labels.append(c)
    names = list(classes) or [s.name.replace("_", " ") for s in subs]
    prompts = [[t.format(n) for t in USER_TEMPLATES] for n in names]
    return Task(folder.name, np.stack(images), np.array(labels, np.int64), prompts, names)


def corpus_for(name: str) -> list[str]:
    """Sentences a word-level tokenizer for the embedded data is trained on: every training
    caption's words and the zero-shot prompts' (a word only a prompt uses keeps its untrained
    embedding, as an unseen word would)."""
    if name == "digits":
        from mltk.vl.datasets import DIGIT_HELD_OUT, DIGIT_NAMES, DIGIT_TEMPLATES

        return [t.format(n) for t in DIGIT_TEMPLATES + DIGIT_HELD_OUT for n in DIGIT_NAMES]
    out = list(W.corpus())
    for t in world_benchmark(60).tasks:
        out += [p for ps in t.prompts for p in ps]
    return out

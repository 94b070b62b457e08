"""The embedded shapes world: procedural captioned images of coloured shapes (numpy only).

Shared by the plugins that need images with known content: text-to-image (pixart,
geom-erasing) and image-text models (growclip, epic). PixArt-alpha's third idea (Sec. 2.4) is caption *concept density*: captions that name more of
what is in the image (attributes, positions, relations, counts) make text-image alignment cheaper
to learn. This world makes that measurable on a CPU. Every image is drawn from a scene spec, and
each scene gets one *short* caption (object names only, like a vague web alt-text) and several
*dense* captions (size, position, relation and count, in different phrasings).

Scenes come in three kinds on a 32x32 black canvas:

- ``single``: one shape of a colour and size in one cell of a 3x3 grid;
- ``pair``: two shapes stacked vertically or side by side (``above``/``below``/``left of``/``right of``);
- ``count``: two or three identical shapes in a row.

A scene is canonical: for a pair, object 1 is the top (vertical) or left (horizontal) one, so an
attribute classifier can predict it without knowing how the caption was phrased. A fraction of
images is made "low quality" (noise and specks): the aesthetic stage fine-tunes on the clean ones.

Two options shape the distribution, both off by default (and then the world is exactly the
default one, draw for draw): ``kinds`` keeps only some scene kinds, and ``colour_given_shape``
makes an object take its shape's own colour (``PREFERRED``) with that probability, which makes
colour predictable from shape alone: a modality-bias set, where a caption's colour word can be
guessed from the text without looking at the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 200, 70),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
}
SHAPES = ("circle", "square", "triangle")
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles"}
SIZES = ("small", "large")
CELLS = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
KINDS = ("single", "pair", "count")
KIND_PROBABILITIES = (0.35, 0.45, 0.2)
PREFERRED = {"circle": "red", "square": "blue", "triangle": "green"}  # colour_given_shape's pick
AXES = ("vertical", "horizontal")
NUMBER_WORDS = {2: "two", 3: "three"}
IMAGE_SIZE = 32
WORLD_VERSION = 2  # bump when rendering or captioning changes (keys the dataset cache)


@dataclass(frozen=True)
class Scene:
    """One image's content, in canonical order (object 1 is top or left)."""

    kind: str  # single | pair | count
    colour1: str
    shape1: str
    size1: str
    colour2: str = ""  # pair only
    shape2: str = ""
    size2: str = ""
    cell: int = -1  # single only: index into CELLS
    axis: str = ""  # pair only: vertical | horizontal
    count: int = 1

    def labels(self) -> dict[str, int]:
        """Integer labels for the attribute classifier; -1 where an attribute does not apply."""
        colours, shapes = list(COLOURS), list(SHAPES)
        return {
            "kind": KINDS.index(self.kind),
            "count": {"single": 1, "pair": 2}.get(self.kind, self.count) - 1,  # objects - 1
            "colour1": colours.index(self.colour1),
            "shape1": shapes.index(self.shape1),
            "colour2": colours.index(self.colour2) if self.colour2 else -1,
            "shape2": shapes.index(self.shape2) if self.shape2 else -1,
            "cell": self.cell,
            "axis": AXES.index(self.axis) if self.axis else -1,
            "size1": SIZES.index(self.size1),
            "size2": SIZES.index(self.size2) if self.size2 else -1,
        }

    @classmethod
    def from_labels(cls, lab: dict[str, int]) -> Scene:
        colours = list(COLOURS)
        kind = KINDS[lab["kind"]]
        two = kind == "pair"
        return cls(
            kind=kind,
            colour1=colours[lab["colour1"]],
            shape1=SHAPES[lab["shape1"]],
            size1=SIZES[lab["size1"]],
            colour2=colours[lab["colour2"]] if two else "",
            shape2=SHAPES[lab["shape2"]] if two else "",
            size2=SIZES[lab["size2"]] if two else "",
            cell=lab["cell"],
            axis=AXES[lab["axis"]] if two else "",
            count=lab["count"] + 1 if kind == "count" else 1,
        )


def sample_scene(
    rng: np.random.Generator, *, kinds: tuple[str, ...] = KINDS, colour_given_shape: float = 0.0
) -> Scene:
    """One random scene. With the defaults the draws are those of every earlier version."""
    if kinds == KINDS:
        kind = KINDS[rng.choice(3, p=list(KIND_PROBABILITIES))]
    else:
        p = np.array([KIND_PROBABILITIES[i] if k in kinds else 0.0 for i, k in enumerate(KINDS)])
        kind = KINDS[rng.choice(3, p=p / p.sum())]
    colours = list(COLOURS)
    c1, c2 = (colours[i] for i in rng.choice(len(colours), 2))
    s1, s2 = (SHAPES[i] for i in rng.choice(len(SHAPES), 2))
    z1, z2 = (SIZES[i] for i in rng.integers(0, 2, 2))
    if colour_given_shape > 0:  # extra draws only when on: off leaves the stream untouched
        pick = rng.random(2) < colour_given_shape
        c1 = PREFERRED[s1] if pick[0] else c1
        c2 = PREFERRED[s2] if pick[1] else c2
    if kind == "single":
        return Scene("single", c1, s1, z1, cell=int(rng.integers(0, 9)))
    if kind == "pair":
        if (c1, s1) == (c2, s2):  # two identical objects would be a "count" scene
            c2 = colours[(colours.index(c1) + 1 + int(rng.integers(0, 3))) % len(colours)]
        return Scene("pair", c1, s1, z1, c2, s2, z2, axis=AXES[int(rng.integers(0, 2))])
    return Scene("count", c1, s1, "small", count=int(rng.integers(2, 4)))


# ----------------------------------------------------------------------------- captions


def _obj(colour: str, shape: str, size: str = "") -> str:
    return f"a {size + ' ' if size else ''}{colour} {shape}"


def short_caption(scene: Scene) -> str:
    """What a vague alt-text would say: the objects, no size, place, relation or number."""
    if scene.kind == "single":
        return _obj(scene.colour1, scene.shape1)
    if scene.kind == "pair":
        return f"{_obj(scene.colour1, scene.shape1)} and {_obj(scene.colour2, scene.shape2)}"
    return f"{scene.colour1} {PLURAL[scene.shape1]}"


def dense_captions(scene: Scene) -> list[str]:
    """Several full descriptions (size, position, relation, count) in different phrasings."""
    if scene.kind == "single":
        o = _obj(scene.colour1, scene.shape1, scene.size1)
        where = CELLS[scene.cell]
        place = "in the center" if where == "center" else f"in the {where}"
        return [f"{o} {place}", f"{place} there is {o}", f"{o} {place} on black"]
    if scene.kind == "pair":
        a = _obj(scene.colour1, scene.shape1, scene.size1)
        b = _obj(scene.colour2, scene.shape2, scene.size2)
        forward, backward = (
            ("above", "below") if scene.axis == "vertical" else ("left of", "right of")
        )
        return [f"{a} {forward} {b}", f"{b} {backward} {a}", f"{a} is {forward} {b}"]
    n = NUMBER_WORDS[scene.count]
    many = f"{n} {scene.colour1} {PLURAL[scene.shape1]}"
    return [f"{many} in a row", f"{many}", f"a row of {many}"]


def eval_caption(scene: Scene) -> str:
    """The prompt used to score a generated image: the first dense caption."""
    return dense_captions(scene)[0]


# ----------------------------------------------------------------------------- rendering

_SS = 2  # supersampling factor for anti-aliased edges


def _draw(canvas: np.ndarray, shape: str, cx: float, cy: float, r: float, rgb) -> None:
    n = canvas.shape[0]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
    if shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    elif shape == "square":
        h = r * 0.85
        mask = (np.abs(xx - cx) <= h) & (np.abs(yy - cy) <= h)
    else:  # upward triangle: apex at top, base at bottom
        top, bottom = cy - r, cy + r * 0.8
        frac = (yy - top) / (bottom - top)
        mask = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= frac * r)
    canvas[mask] = rgb


def render(scene: Scene, rng: np.random.Generator, low_quality: bool = False) -> np.ndarray:
    """Draw a scene as a (32, 32, 3) uint8 image; positions jitter by a pixel or two."""
    n = IMAGE_SIZE * _SS
    canvas = np.zeros((n, n, 3), np.float32)
    radius = {"small": 4.0, "large": 6.0}
    jit = lambda: float(rng.uniform(-1.5, 1.5))  # noqa: E731
    objects = []  # (shape, cx, cy, r, colour) in 32-pixel units
    if scene.kind == "single":
        row, col = divmod(scene.cell, 3)
        cx, cy = (col + 0.5) * IMAGE_SIZE / 3 + jit(), (row + 0.5) * IMAGE_SIZE / 3 + jit()
        objects.append((scene.shape1, cx, cy, radius[scene.size1], scene.colour1))
    elif scene.kind == "pair":
        c = 16 + jit()
        p1, p2 = 9 + jit(), 23 + jit()
        xy1, xy2 = ((c, p1), (c, p2)) if scene.axis == "vertical" else ((p1, c), (p2, c))
        objects.append((scene.shape1, *xy1, radius[scene.size1], scene.colour1))
        objects.append((scene.shape2, *xy2, radius[scene.size2], scene.colour2))
    else:
        xs = (10, 22) if scene.count == 2 else (6, 16, 26)
        cy = 16 + jit()
        for x in xs:
            objects.append((scene.shape1, x + jit() * 0.5, cy, 3.6, scene.colour1))
    for shape, cx, cy, r, colour in objects:
        _draw(canvas, shape, cx * _SS, cy * _SS, r * _SS, COLOURS[colour])
    img = canvas.reshape(IMAGE_SIZE, _SS, IMAGE_SIZE, _SS, 3).mean(axis=(1, 3))
    if low_quality:
        img = img + rng.normal(0, 28, img.shape)
        specks = rng.random(img.shape[:2]) < 0.03
        img[specks] = rng.uniform(0, 255, (int(specks.sum()), 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- datasets


@dataclass
class World:
    """A generated dataset: images, scenes, short and dense captions, quality flags."""

    images: np.ndarray  # (N, 32, 32, 3) uint8
    scenes: list[Scene]
    short: list[str]
    dense: list[list[str]]
    clean: np.ndarray  # (N,) bool: the "high aesthetic quality" subset

    def __len__(self) -> int:
        return len(self.scenes)

    def label_arrays(self) -> dict[str, np.ndarray]:
        rows = [s.labels() for s in self.scenes]
        return {k: np.array([r[k] for r in rows], np.int64) for k in rows[0]}


NUM_CLASSES = len(COLOURS) * len(SHAPES)  # stage-1 classes: colour x shape of object 1


def make_world(
    n: int,
    seed: int = 0,
    low_quality_fraction: float = 0.3,
    *,
    kinds: tuple[str, ...] = KINDS,
    colour_given_shape: float = 0.0,
) -> World:
    """Generate ``n`` captioned images deterministically from ``seed`` (see the module's
    docstring for ``kinds`` and ``colour_given_shape``)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}; got {kinds}")
    if not 0.0 <= colour_given_shape <= 1.0:
        raise ValueError(f"colour_given_shape must be in [0, 1]; got {colour_given_shape}")
    rng = np.random.default_rng(seed)
    scenes = [
        sample_scene(rng, kinds=tuple(kinds), colour_given_shape=colour_given_shape)
        for _ in range(n)
    ]
    clean = rng.random(n) >= low_quality_fraction
    images = np.stack([render(s, rng, low_quality=not c) for s, c in zip(scenes, clean)])
    return World(
        images=images,
        scenes=scenes,
        short=[short_caption(s) for s in scenes],
        dense=[dense_captions(s) for s in scenes],
        clean=clean,
    )


def corpus() -> list[str]:
    """Every word the world can say, as sentences: what the tokenizer is trained on."""
    rng = np.random.default_rng(12345)
    out = []
    for _ in range(3000):
        scene = sample_scene(rng)
        out += [short_caption(scene), *dense_captions(scene)]
    return out


def parse_prompt(prompt: str) -> Scene | None:
    """Read a world caption back into a scene (for scoring user prompts); None if it is not one."""
    words = prompt.lower().strip().rstrip(".")
    colours, shapes = list(COLOURS), list(SHAPES)
    for n, word in NUMBER_WORDS.items():
        for c in colours:
            for s in shapes:
                if f"{word} {c} {PLURAL[s]}" in words:
                    return Scene("count", c, s, "small", count=n)
    found = []  # (position in text, colour, shape, size)
    for c in colours:
        for s in shapes:
            start = 0
            while (i := words.find(f"{c} {s}", start)) >= 0:
                before = words[:i].split()
                size = before[-1] if before and before[-1] in SIZES else "small"
                found.append((i, c, s, size))
                start = i + 1
    found.sort()
    if len(found) == 1:
        _, c, s, z = found[0]
        cell = 4
        for k, name in sorted(enumerate(CELLS), key=lambda kv: -len(kv[1])):
            if f"the {name}" in words:
                cell = k
                break
        return Scene("single", c, s, z, cell=cell)
    if len(found) == 2:
        (i1, c1, s1, z1), (i2, c2, s2, z2) = found
        between = words[i1:i2]
        for rel, axis, swap in (
            ("above", "vertical", False),
            ("below", "vertical", True),
            ("left of", "horizontal", False),
            ("right of", "horizontal", True),
        ):
            if rel in between:
                if swap:
                    c1, s1, z1, c2, s2, z2 = c2, s2, z2, c1, s1, z1
                return Scene("pair", c1, s1, z1, c2, s2, z2, axis=axis)
    return None

"""Implicit concepts drawn into images at recorded boxes: the contaminated data of the embedded
world, and the ground truth the detector is trained and checked on.

- ``qr``: a Micro QR code (segno, version M1: 11 x 11 modules at 1 px) on a 1 px white quiet
  zone, 13 x 13 px in all, encoding five random digits;
- ``watermark``: the word "mltk" in white at alpha 0.3-0.5 (Pillow's built-in font at 8 px,
  14 x 5 px of ink), blended over whatever is beneath;
- ``text``: an opaque word in a random bright colour (same font), like a caption burnt into a
  photo.

A box is ``[x0, y0, x1, y1]`` in pixels, end-exclusive: the tight box around the drawn pixels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CONCEPTS = ("qr", "watermark", "text")
CONCEPT_WORDS = {"qr": "qr code", "watermark": "watermark", "text": "text"}  # in captions
WORDS = ("sale", "open", "shop", "news", "hello", "photo", "free", "best")
TEXT_COLOURS = ((255, 230, 0), (255, 80, 200), (0, 230, 255), (255, 140, 0), (170, 255, 60))


@lru_cache(maxsize=1)
def _font():
    from PIL import ImageFont

    return ImageFont.load_default(size=8)


def _glyphs(word: str) -> np.ndarray:
    """The word's ink as an alpha mask in [0, 1], cropped to its tight box."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (8 * len(word) + 8, 16))
    ImageDraw.Draw(im).text((2, 2), word, font=_font(), fill=255)
    a = np.asarray(im, np.float32) / 255
    ys, xs = np.nonzero(a)
    return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _micro_qr(rng: np.random.Generator) -> np.ndarray:
    """An M1 Micro QR symbol with a 1-module quiet zone: (13, 13) in {0, 1}, 1 = white."""
    import segno

    digits = "".join(str(d) for d in rng.integers(0, 10, 5))
    matrix = np.array([list(row) for row in segno.make_micro(digits, version="M1").matrix])
    return np.pad(1 - matrix.astype(np.float32), 1, constant_values=1.0)


PLACEMENTS = ("corner", "anywhere")


def inject(
    image: np.ndarray, concept: str, rng: np.random.Generator, placement: str = "anywhere"
) -> tuple[np.ndarray, list]:
    """A copy of ``image`` (H, W, 3) uint8 with ``concept`` drawn wholly inside it, and the box
    drawn. ``anywhere``: a uniform position; ``corner``: one of the four corners, up to 2 px in
    from its edges (where watermarks and codes sit in scraped photos)."""
    if concept not in CONCEPTS:
        raise ValueError(f"concept must be one of {', '.join(CONCEPTS)}; got {concept!r}")
    h, w = image.shape[:2]
    out = image.astype(np.float32)
    if concept == "qr":
        patch = _micro_qr(rng)
        alpha, colour = np.ones_like(patch), patch[..., None] * 255.0
    else:
        word = "mltk" if concept == "watermark" else str(rng.choice(WORDS))
        alpha = _glyphs(word)
        if concept == "watermark":
            alpha = alpha * rng.uniform(0.3, 0.5)
            rgb = (255.0, 255.0, 255.0)
        else:
            rgb = TEXT_COLOURS[int(rng.integers(len(TEXT_COLOURS)))]
        colour = np.broadcast_to(np.array(rgb, np.float32), (*alpha.shape, 3))
    ph, pw = alpha.shape
    if ph > h or pw > w:
        raise ValueError(f"a {concept} is {pw}x{ph} px; the image ({w}x{h}) is too small")
    if placement == "corner":
        bottom, right = rng.integers(0, 2, size=2)
        dy, dx = rng.integers(0, 3, size=2)
        y0 = int(h - ph - dy if bottom else dy)
        x0 = int(w - pw - dx if right else dx)
        y0, x0 = min(max(y0, 0), h - ph), min(max(x0, 0), w - pw)
    elif placement == "anywhere":
        y0, x0 = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    else:
        raise ValueError(f"placement must be corner or anywhere; got {placement!r}")
    region = out[y0 : y0 + ph, x0 : x0 + pw]
    a = alpha[..., None]
    out[y0 : y0 + ph, x0 : x0 + pw] = a * colour + (1 - a) * region
    return np.clip(np.round(out), 0, 255).astype(np.uint8), [x0, y0, x0 + pw, y0 + ph]


def contaminate(
    images: np.ndarray, concepts: list[str], ratio: float, seed: int, placement: str = "corner"
):
    """Draw one of ``concepts`` into a ``ratio`` of ``images`` (chosen at random); returns the
    new images and, per image, a list of ``{"concept", "box"}`` (empty for clean images)."""
    rng = np.random.default_rng(seed)
    out, boxes = images.copy(), [[] for _ in range(len(images))]
    hit = rng.random(len(images)) < ratio
    for i in np.flatnonzero(hit):
        concept = concepts[int(rng.integers(len(concepts)))]
        out[i], box = inject(images[i], concept, rng, placement)
        boxes[i].append({"concept": concept, "box": box})
    return out, boxes

"""Where a concept is, in words: grid cells, location tokens, augmented captions, negative
prompts, the new token rows and the region-weighted loss map.

Geom-Erasing (Liu, Chen et al., ECCV 2024) tells the model where an implicit concept sits:
each cell of a G x G grid that the concept's box covers becomes a location token
``<l{row*G+col}>``, appended after the concept's name, so the concept binds to tokens that a
negative prompt can then name. The tokens' embedding rows start as the 2-D sin-cos embedding of
their cell (as GeoDiffusion's location tokens), scaled to the mean norm of the table's rows
(ours: a unit-scale sin-cos row would stand out of a trained table by orders of magnitude).
"""

from __future__ import annotations

import math
import re

import numpy as np

from mltk.errors import DataError, UsageError

LOCATION = re.compile(r"<l\d+>")


def check_concept(word: str) -> str:
    """A concept as captions will say it; UsageError for an empty one or one that looks like a
    location token."""
    word = " ".join(str(word).split())
    if not word:
        raise UsageError("the concept is empty; name it, e.g. --concept 'qr code'")
    if LOCATION.search(word):
        raise UsageError(
            f"the concept {word!r} is spelled like a location token (<l0>, <l1>, ...); "
            "choose another name"
        )
    return word


def check_grid(grid: int) -> int:
    if int(grid) < 1:
        raise UsageError(f"--grid {grid} must be at least 1 (cells per side)")
    return int(grid)


def location_tokens(grid: int) -> list[str]:
    return [f"<l{i}>" for i in range(grid * grid)]


def cells_of_box(box, width: int, height: int, grid: int) -> list[int]:
    """The cells ``row * grid + col`` of a ``grid x grid`` partition of a ``width x height``
    image that the box ``[x0, y0, x1, y1]`` (pixels, end-exclusive) overlaps with positive
    area. A box reaching outside the image, or with no area, is a DataError."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise DataError(
            f"box {list(box)} is not a box inside the {width}x{height} image "
            "(need 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height)"
        )
    cw, ch = width / grid, height / grid
    cols = range(int(x0 // cw), min(grid, math.ceil(x1 / cw)))
    rows = range(int(y0 // ch), min(grid, math.ceil(y1 / ch)))
    return [r * grid + c for r in rows for c in cols]


def augment_caption(
    caption: str, found: list[tuple[str, list[int]]], *, locations: bool = True
) -> str:
    """``"{caption}, {concept} <l5> <l6>"`` for each (concept, cells) found in the image; with
    ``locations=False`` the name alone (the name-only ablation)."""
    parts = [caption.rstrip().rstrip(",")]
    for concept, cells in found:
        tokens = "".join(f" <l{c}>" for c in sorted(set(cells))) if locations else ""
        parts.append(f"{concept}{tokens}")
    return ", ".join(p for p in parts if p)


def negative_prompt(concepts: list[str], cells: list[list[int]] | None) -> str:
    """The prompt that classifier-free guidance steers away from: each concept with its cells
    (``cells[i]``: all of them, or the frequent ones), joined by commas; no cells: names only."""
    if cells is None:
        return ", ".join(concepts)
    return ", ".join(
        concept + "".join(f" <l{c}>" for c in cs) for concept, cs in zip(concepts, cells)
    )


def frequent_cells(counts: np.ndarray, share: float = 0.5) -> list[int]:
    """The cells holding the concept in at least ``share`` of the mean cell's count (at least
    one cell: the most frequent)."""
    counts = np.asarray(counts, float)
    if counts.sum() == 0:
        return list(range(len(counts)))
    keep = np.flatnonzero(counts >= share * counts[counts > 0].mean())
    return [int(c) for c in keep] or [int(counts.argmax())]


# ----------------------------------------------------------------------------- token rows


def sincos_2d(grid: int, dim: int) -> np.ndarray:
    """(grid * grid, dim): the 2-D sin-cos embedding of each cell ``row * grid + col``; the
    first half of the dimensions encodes the column, the second half the row (MAE's layout),
    each as [sin(p w_k), cos(p w_k)] with w_k = 10000^(-k / (dim / 4))."""
    if dim % 4:
        raise ValueError(f"the sin-cos embedding needs a width divisible by 4; got {dim}")
    k = np.arange(dim // 4, dtype=np.float64)
    omega = 1.0 / 10000 ** (k / (dim / 4))

    def one(pos):
        out = np.outer(pos, omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.divmod(np.arange(grid * grid), grid)
    return np.concatenate([one(cols), one(rows)], axis=1)


def add_tokens(tokenizer, encoder, words: list[str], grid: int | None, seed: int = 0) -> dict:
    """Add the location tokens (``grid`` given) and every concept word the tokenizer does not
    know (and the comma the captions join with), resize the encoder's input embeddings and
    initialise the new rows; returns ``{"location_ids", "word_ids", "new_ids"}`` (lists).

    Location rows: :func:`sincos_2d`, each row scaled to the mean norm of the old rows. Unknown
    words: a random direction at that norm. A word already in the vocabulary keeps its rows.
    """
    import torch

    table = encoder.get_input_embeddings().weight
    old = table.detach().float()
    norm = float(old[: len(tokenizer)].norm(dim=1).mean())
    unk = getattr(tokenizer, "unk_token_id", None)
    new_words = []
    for word in [*words, ","]:  # the comma joins a caption and its concept
        for piece in word.split():
            ids = tokenizer(piece, add_special_tokens=False).input_ids
            if (unk is not None and unk in ids) or not ids:
                new_words.append(piece)
    new_words = list(dict.fromkeys(new_words))
    locs = location_tokens(grid) if grid else []
    tokenizer.add_tokens([w for w in new_words] + locs)
    size = max(len(tokenizer), table.shape[0])  # T5's table has spare rows past the vocabulary
    if size != table.shape[0]:
        encoder.resize_token_embeddings(size, mean_resizing=False)
    table = encoder.get_input_embeddings().weight
    word_ids = tokenizer.convert_tokens_to_ids(new_words)
    loc_ids = tokenizer.convert_tokens_to_ids(locs)
    with torch.no_grad():
        if loc_ids:
            rows = torch.from_numpy(sincos_2d(grid, table.shape[1])).float()
            rows = rows * (norm / rows.norm(dim=1, keepdim=True))
            table[loc_ids] = rows.to(table)
        if word_ids:
            g = torch.Generator().manual_seed(seed)
            rows = torch.randn(len(word_ids), table.shape[1], generator=g)
            table[word_ids] = (rows * (norm / rows.norm(dim=1, keepdim=True))).to(table)
    return {
        "location_ids": list(loc_ids),
        "word_ids": list(word_ids),
        "new_ids": list(word_ids) + list(loc_ids),
    }


# ----------------------------------------------------------------------------- loss weights


def weight_map(
    boxes: list, image_hw: tuple[int, int], latent_hw: tuple[int, int], inside: float
) -> np.ndarray:
    """(h, w) loss weights on the latent grid: 1 outside the boxes, ``inside`` on latent pixels a
    box overlaps; normalised to mean 1 (GeoDiffusion's re-weighting). All-zero stays zero."""
    (hh, ww), (h, w) = image_hw, latent_hw
    m = np.ones((h, w), np.float32)
    sy, sx = h / hh, w / ww
    for box in boxes:
        x0, y0, x1, y1 = box
        m[int(y0 * sy) : math.ceil(y1 * sy), int(x0 * sx) : math.ceil(x1 * sx)] = inside
    mean = m.mean()
    return m / mean if mean > 0 else m

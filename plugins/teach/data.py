"""Teaching problems: the pool of inputs, the target f* on it, the learner's start f0 and, for
the noisy teacher, an alternative target. Nothing is downloaded.

- ``toy1d``: the paper's 1-D figure: f* = 1/3 N(-2, 1) + 2/3 N(2, 1) (densities), f0 = N(-10, 1),
  pool ``arange(-14, 14, 0.1)`` (280 points); the alternative target (ours: the notebooks have
  none for the toy) moves both means 0.5 outward.
- photographs as f(row, col): scikit-image's ``camera``, ``chelsea`` (the notebooks' cheetah is a
  photograph of a cat's cousin; this is the cat), ``coffee``, ``astronaut``: grey, centre-cropped
  to a square, downscaled to ``size``, standardised by their mean and std as the notebooks do;
  f0 = 0.
- ``faces``: scikit-image's ``lfw_subset`` (its first 100 images are faces, 25 x 25): one face
  taught from another, each standardised (the paper's sketch for a missing-person report).
- ``digits``: scikit-learn's 8 x 8 digits in [0, 1]: the mean "0" taught from the first "8" (the
  paper's digit correction); the alternative target is the single "0" nearest to that mean (the
  notebooks use the nearest handwritten letter "O").
- files: an image (grey, standardised), a ``.npy`` grid (as is), or a CSV of samples
  ``x1, ..., xd, y`` (a header row; the rows are the pool). f0 and the alternative target are
  ``zero``, an expression (``mltk_plugins.teach.expression``), or a file of the same shape.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mltk.data.images import IMAGE_SUFFIXES, downscale, read_image
from mltk.errors import DataError, UsageError

from . import expression

PHOTOS = ("camera", "chelsea", "coffee", "astronaut")
EMBEDDED = ("toy1d", *PHOTOS, "faces", "digits")
TOY_TARGET = "normal(x, -2)/3 + 2*normal(x, 2)/3"
TOY_START = "normal(x, -10)"
TOY_ALTERNATIVE = "normal(x, -2.5)/3 + 2*normal(x, 2.5)/3"


@dataclass
class Problem:
    name: str
    x: np.ndarray  # (N, d) the pool's inputs
    target: np.ndarray  # (N,) f* on the pool
    f0: np.ndarray  # (N,) the learner's start on the pool
    alternative: np.ndarray | None = None  # (N,) alt-gft's other target
    grid: tuple[int, int] | None = None  # (H, W) when the pool is a row-major pixel grid
    f0_expression: str | None = None  # f0 off the pool ("0" for zero), when it has a formula

    @property
    def n(self) -> int:
        return len(self.target)

    def as_image(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values).reshape(self.grid)


def pixel_grid(h: int, w: int) -> np.ndarray:
    """(H*W, 2) pixel coordinates (row, col), row-major, unit steps."""
    ii, jj = np.meshgrid(
        np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij"
    )
    return np.stack([ii.ravel(), jj.ravel()], axis=1)


def standardise(img: np.ndarray) -> np.ndarray:
    std = img.std()
    return (img - img.mean()) / (std if std > 0 else 1.0)


def grey(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    from skimage.color import rgb2gray

    return rgb2gray(img[:, :, :3]) if img.shape[2] >= 3 else img[:, :, 0]


def _square(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    return img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]


def photo(source: str, size: int | None, *, crop: bool) -> np.ndarray:
    """A photograph or an image file as a standardised grey grid."""
    img = grey(read_image(source))
    return standardise(downscale(_square(img) if crop else img, size))


def load(
    data: str,
    *,
    size: int | None = None,
    f0: str = "auto",
    alternative: str | None = None,
    face: int = 0,
    start_face: int = 1,
) -> Problem:
    """The problem ``data`` names, with f0 and the alternative target resolved."""
    if data == "toy1d":
        x = np.arange(-14, 14, 0.1)[:, None]
        prob = Problem(
            "toy1d",
            x,
            expression.evaluate(TOY_TARGET, x),
            expression.evaluate(TOY_START, x),
            expression.evaluate(TOY_ALTERNATIVE, x),
            f0_expression=TOY_START,
        )
    elif data in PHOTOS:
        prob = _grid_problem(data, photo(data, 64 if size is None else size, crop=True))
    elif data == "faces":
        prob = _faces(face, start_face, size)
    elif data == "digits":
        prob = _digits(size)
    else:
        prob = _file_problem(data, size)
    if f0 != "auto":
        prob.f0, prob.f0_expression = _other(f0, prob, size, "--f0"), None
        if f0 == "zero" or expression.looks_like_expression(f0):
            prob.f0_expression = "0" if f0 == "zero" else f0
    if alternative is not None:
        prob.alternative = _other(alternative, prob, size, "--target-alt")
    for what, values in (
        ("target", prob.target),
        ("f0", prob.f0),
        ("alternative target", prob.alternative),
    ):
        if values is not None and not np.all(np.isfinite(values)):
            bad = int(np.count_nonzero(~np.isfinite(values)))
            raise DataError(
                f"the {what} has {bad} non-finite value(s) (NaN or infinity) on the pool"
            )
    return prob


def _grid_problem(
    name: str,
    target: np.ndarray,
    f0: np.ndarray | None = None,
    alternative: np.ndarray | None = None,
) -> Problem:
    h, w = target.shape
    return Problem(
        name,
        pixel_grid(h, w),
        target.ravel(),
        np.zeros(h * w) if f0 is None else f0.ravel(),
        None if alternative is None else alternative.ravel(),
        grid=(h, w),
        f0_expression="0" if f0 is None else None,
    )


def _faces(face: int, start_face: int, size: int | None) -> Problem:
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]  # the first 100 of the 200 are faces
    for flag, i in (("--face", face), ("--start-face", start_face)):
        if not 0 <= i < len(faces):
            raise UsageError(f"{flag} {i} is not a face index (0 to {len(faces) - 1})")

    def one(i):
        return standardise(downscale(faces[i], size))

    return _grid_problem("faces", one(face), one(start_face))


def _digits(size: int | None) -> Problem:
    from sklearn.datasets import load_digits

    d = load_digits()
    images, labels = d.images / 16.0, d.target
    zeros = images[labels == 0]
    mean0 = zeros.mean(0)
    nearest = zeros[np.argmin(((zeros - mean0) ** 2).sum(axis=(1, 2)))]
    first8 = images[np.flatnonzero(labels == 8)[0]]
    if size:
        mean0, nearest, first8 = (downscale(a, size) for a in (mean0, nearest, first8))
    return _grid_problem("digits", mean0, first8, nearest)


def _file_problem(data: str, size: int | None) -> Problem:
    path = Path(data)
    suffix = path.suffix.lower()
    if not path.exists():
        raise DataError(
            f"{data} is neither an embedded problem ({', '.join(EMBEDDED)}) nor an existing file"
        )
    if suffix in IMAGE_SUFFIXES:
        return _grid_problem(path.stem, photo(data, 64 if size is None else size, crop=False))
    if suffix == ".npy":
        arr = _read_npy(path)
        if arr.ndim == 1:
            x = np.arange(len(arr), dtype=np.float64)[:, None]
            return Problem(path.stem, x, arr, np.zeros(len(arr)), f0_expression="0")
        return _grid_problem(path.stem, arr)
    if suffix == ".csv":
        x, y = read_samples(path)
        return Problem(path.stem, x, y, np.zeros(len(y)), f0_expression="0")
    raise DataError(
        f"{data}: unknown format {suffix or '(no suffix)'}; give an image, .npy or .csv"
    )


def _read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npy array ({exc})") from exc
    if arr.ndim not in (1, 2) or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
        raise DataError(
            f"{path} holds a {arr.dtype} array of shape {arr.shape}; expected a "
            "non-empty numeric curve (1-D) or grid (2-D)"
        )
    return arr.astype(np.float64)


def read_samples(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CSV with a header: the input columns, then (or anywhere) a column named ``y``."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read as CSV ({exc})") from exc
    if not rows:
        raise DataError(f"{path} is empty")
    header = [c.strip().lower() for c in rows[0]]
    if "y" not in header:
        raise DataError(
            f"{path} has no y column (its header: {', '.join(rows[0]) or 'empty'}); "
            "write the inputs as x1,...,xd and the target as y"
        )
    if len(header) < 2:
        raise DataError(f"{path} has a y column but no input column")
    try:
        values = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path} has a value that is not a number ({exc})") from exc
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] != len(header):
        raise DataError(f"{path} needs one value per column on every row and at least one row")
    j = header.index("y")
    return np.delete(values, j, axis=1), values[:, j]


def _other(spec: str, prob: Problem, size: int | None, flag: str) -> np.ndarray:
    """f0 or an alternative target on the problem's pool: zero, an expression or a file."""
    if spec == "zero":
        return np.zeros(prob.n)
    path = Path(spec)
    if not path.exists() and expression.looks_like_expression(spec):
        return expression.evaluate(spec, prob.x)
    if not path.is_file():
        raise DataError(f"{flag} {spec}: no such file, and not an expression in x")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        x, y = read_samples(path)
        if x.shape != prob.x.shape or not np.allclose(x, prob.x):
            raise DataError(
                f"{flag} {spec} has other inputs than the pool (its x columns must "
                f"repeat the target's {prob.n} rows)"
            )
        return y
    if suffix in IMAGE_SUFFIXES:
        values = photo(spec, 64 if size is None else size, crop=False)
    elif suffix == ".npy":
        values = _read_npy(path)
    else:
        raise DataError(f"{flag} {spec}: unknown format {suffix}; give an image, .npy or .csv")
    shape = prob.grid or (prob.n,)
    if values.shape != tuple(shape):
        raise DataError(
            f"{flag} {spec} is {'x'.join(map(str, values.shape))}, the target "
            f"{'x'.join(map(str, shape))}: give them the same shape"
        )
    return values.ravel()

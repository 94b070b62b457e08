"""Loading tensors with missing entries, and splitting the observed entries.

Sources:
- an embedded photograph shipped with scikit-image (``astronaut``, ``coffee``, ``chelsea``,
  ``rocket``, ``hubble_deep_field``, ``retina``; no download needed) or an image file (PNG/JPEG, read as height x width x channels, scaled to [0, 1]);
- a ``.npy`` array, or a ``.npz`` with an array (key ``data``, or the only array) and an optional
  boolean ``mask`` (True = observed); NaNs also mark missing entries; a separate mask file may be
  given with ``--mask``;
- a coordinate file (CSV or Parquet) with one integer column per mode and a ``value`` column,
  for tensors too large to store densely (nothing dense is ever built from it).

Missing entries come from the mask, from NaNs, or are sampled (``observed`` fraction, seeded).
When the full truth is known (an image or a complete array with sampled observations), the test
set is every unobserved entry; otherwise a ``test_fraction`` of the observed entries is held out.
A ``val_fraction`` of the remaining observed entries is held out for the lambda search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError

EMBEDDED_IMAGES = (
    "astronaut",  # 512 x 512 x 3
    "coffee",  # 400 x 600 x 3
    "chelsea",  # 300 x 451 x 3
    "rocket",  # 427 x 640 x 3
    "hubble_deep_field",  # 872 x 1000 x 3
    "retina",  # 1411 x 1411 x 3
)


@dataclass
class Completion:
    """A completion problem: observed coordinates split into train/val/test, plus what is known."""

    name: str
    shape: tuple[int, ...]
    train_idx: np.ndarray  # (n, D) int64
    train_val: np.ndarray  # (n,) float64
    val_idx: np.ndarray
    val_val: np.ndarray
    test_idx: np.ndarray
    test_val: np.ndarray
    truth: np.ndarray | None = None  # dense ground truth when known (images, complete arrays)
    observed_mask: np.ndarray | None = None  # dense boolean mask of all observed entries
    is_image: bool = False
    sampled: float | None = None  # the observed fraction, when the observed entries were sampled
    resized_from: tuple[int, ...] | None = None  # an image's own shape, when --size shrank it

    def __post_init__(self) -> None:
        # the training entries (a set) are kept in C order: the CSR layouts of the first
        # unfolding and of the last unfolding's transpose then need no permutation
        order = np.lexsort(self.train_idx.T[::-1])
        self.train_idx, self.train_val = self.train_idx[order], self.train_val[order]

    @property
    def n_observed(self) -> int:
        return (
            len(self.train_val)
            + len(self.val_val)
            + (0 if self.truth is not None else len(self.test_val))
        )


def _check_order(shape, what: str) -> None:
    if len(shape) < 3:
        raise DataError(
            f"{what} has {len(shape)} dimension(s) {tuple(shape)}; tensor completion needs at least "
            "3 modes -- a 2-D array is a matrix: use a matrix completion method for it"
        )
    if min(shape) < 1:
        raise DataError(f"{what} has an empty mode: shape {tuple(shape)}")


def load_image(source: str, size: int | None = None) -> np.ndarray:
    """An embedded photograph or an image file as float64 (H, W, C) in [0, 1]."""
    from mltk.data.images import downscale, read_image

    img = read_image(source)
    if img.ndim == 2:
        raise DataError(
            f"{source} is a grayscale image (a 2-D array {img.shape}); tensor completion needs "
            "3 modes -- use a matrix completion method for a single channel"
        )
    return downscale(img, size)


def _load_npy_like(path: Path, key: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if key is not None:
                if key not in names:
                    raise DataError(
                        f"{path} has no array named {key!r} (it has {', '.join(names)})"
                    )
                return z[key], z["mask"] if "mask" in names else None
            data_key = "data" if "data" in names else None
            if data_key is None:
                rest = [n for n in names if n != "mask"]
                if len(rest) != 1:
                    raise DataError(
                        f"{path} holds arrays {', '.join(names)}; name the data array 'data' "
                        "(and an optional boolean 'mask')"
                    )
                data_key = rest[0]
            return z[data_key], z["mask"] if "mask" in names else None
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not read {path} as a numpy array ({exc})") from exc


def _load_mask(path: Path) -> np.ndarray:
    """A mask file: a .npy, or a .npz holding one array (any name) or one named 'mask'."""
    if path.suffix != ".npy":
        try:
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                if len(names) == 1 or "mask" in names:
                    return z[names[0] if len(names) == 1 else "mask"]
        except Exception as exc:
            raise DataError(f"could not read {path} as a numpy array ({exc})") from exc
        raise DataError(f"{path} holds arrays {', '.join(names)}; name the mask array 'mask'")
    return _load_npy_like(path)[0]


def load_array(source: str, mask: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A dense array (float64) and its observed mask (None: derived from NaNs later)."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"data file {source} does not exist")
    arr, m = _load_npy_like(path)
    if mask is not None:
        mpath = Path(mask)
        if not mpath.is_file():
            raise DataError(f"mask file {mask} does not exist")
        m = _load_mask(mpath)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{source} holds {arr.dtype} values; a numeric array is needed")
    arr = arr.astype(np.float64)
    if m is not None:
        if m.shape != arr.shape:
            raise DataError(
                f"the mask has shape {m.shape} but the data has shape {arr.shape}; they must match"
            )
        if m.dtype != np.bool_:
            if not np.isin(np.unique(m), [0, 1]).all():
                raise DataError("the mask must be boolean (or 0/1): True/1 marks an observed entry")
            m = m.astype(bool)
    return arr, m


def load_coordinates(source: str, shape: tuple[int, ...] | None = None):
    """(idx (n, D) int64, values (n,), shape) from a CSV/Parquet file of i,j,k,...,value rows."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"coordinate file {source} does not exist")
    from mltk.errors import require

    pd = require("pandas", extra="tensor")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            require("pyarrow", extra="tensor")
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path)
    except Exception as exc:
        if type(exc).__name__ == "DependencyError":
            raise
        raise DataError(f"could not read the coordinate file {source}: {exc}") from exc
    cols = [c.strip().lower() for c in df.columns]
    if "value" not in cols:
        raise DataError(
            f"{source} needs a 'value' column next to one integer column per mode; it has {', '.join(map(str, df.columns))}"
        )
    vcol = df.columns[cols.index("value")]
    icols = [c for c in df.columns if c != vcol]
    if len(df) == 0:
        raise DataError(f"{source} has no rows: there are no observed entries")
    try:
        raw = df[icols].to_numpy(dtype=np.float64)
        vals = df[vcol].to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"{source}: the coordinate columns must be integers and 'value' numeric ({exc})"
        ) from exc
    whole = np.isfinite(raw) & (raw == np.round(raw))
    if not whole.all():
        row = int(np.argwhere(~whole)[0, 0])
        raise DataError(
            f"{source}: coordinates must be whole numbers (row {row + 1} has "
            f"{', '.join(f'{x:g}' for x in raw[row])})"
        )
    idx = raw.astype(np.int64)
    if idx.min() < 0:
        raise DataError(f"{source} has negative coordinates; coordinates start at 0")
    inferred = tuple(int(x) + 1 for x in idx.max(0))
    if shape is None:
        shape = inferred
    elif len(shape) != idx.shape[1] or any(a > b for a, b in zip(inferred, shape, strict=True)):
        raise DataError(
            f"--shape {shape} does not fit the coordinates in {source} (they need at least {inferred})"
        )
    _check_order(shape, source)
    return idx, vals, tuple(shape)


def _split(rng, n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    k = int(round(fraction * n))
    return perm[k:], perm[:k]


def make_problem(
    data: str = "astronaut",
    *,
    mask: str | None = None,
    shape: tuple[int, ...] | None = None,
    observed: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    size: int | None = None,
    seed: int = 0,
) -> Completion:
    """Load ``data`` and split its entries into train/validation/test coordinates."""
    if observed is not None and not 0 < observed <= 1:
        raise UsageError(
            f"--observed {observed} must be a fraction in (0, 1] (or 0 for the default)"
        )
    for name, f in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0 <= f < 1:
            raise UsageError(f"{name} {f} must be in [0, 1)")
    rng = np.random.default_rng(seed)
    suffix = Path(data).suffix.lower()
    resized_from = None
    if data in EMBEDDED_IMAGES or suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        from mltk.data.images import downscale

        own = load_image(data)
        arr, m, is_image = downscale(own, size), None, True
        if arr.shape != own.shape:
            resized_from = tuple(own.shape)
        if observed is None:
            observed = 0.2
    elif suffix in (".npy", ".npz"):
        arr, m = load_array(data, mask)
        is_image = False
    elif suffix in (".csv", ".parquet", ".pq"):
        if observed is not None:
            raise UsageError(
                "--observed samples a dense tensor; a coordinate file already lists the observed entries"
            )
        idx, vals, shape = load_coordinates(data, shape)
        if not np.isfinite(vals).all():
            raise DataError(f"{data} has NaN or infinite values among its observed entries")
        idx, vals = _dedupe(idx, vals, shape, data)
        return _split_observed(Path(data).stem, shape, idx, vals, rng, val_fraction, test_fraction)
    else:
        raise DataError(
            f"cannot read {data!r}: give an embedded image ({', '.join(EMBEDDED_IMAGES)}), an image "
            "file (.png/.jpg), a .npy/.npz array or a .csv/.parquet coordinate file"
        )
    _check_order(arr.shape, data)
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise DataError(
            f"{data} has {n_inf} infinite values; mark missing entries with NaN or a --mask"
        )
    finite = np.isfinite(arr)
    if m is not None:
        if (m & ~finite).any():
            raise DataError(
                f"{data} has NaN or infinite values at {(m & ~finite).sum()} entries marked observed by the mask"
            )
        obs_mask = m
    else:
        obs_mask = finite
    name = Path(data).stem if data not in EMBEDDED_IMAGES else data
    if obs_mask.all():
        # a complete tensor: sample the observed entries; the rest is the test set
        if observed is None:
            raise DataError(
                f"{data} has no missing entries; pass --observed FRACTION to sample observed entries "
                "(or a mask / NaNs marking the missing ones)"
            )
        n = arr.size
        k = int(round(observed * n))
        if k == 0:
            raise DataError(f"--observed {observed} leaves no observed entries of {n}")
        perm = rng.permutation(n)
        obs_lin, test_lin = np.sort(perm[:k]), np.sort(perm[k:])
        if len(test_lin) == 0:
            test_lin = obs_lin[:0]
        all_idx = np.stack(np.unravel_index(obs_lin, arr.shape), 1).astype(np.int64)
        flat = arr.reshape(-1)
        tr, va = _split(rng, len(obs_lin), val_fraction)
        test_idx = np.stack(np.unravel_index(test_lin, arr.shape), 1).astype(np.int64)
        om = np.zeros(arr.size, dtype=bool)
        om[obs_lin] = True
        return Completion(
            name,
            arr.shape,
            all_idx[tr],
            flat[obs_lin[tr]],
            all_idx[va],
            flat[obs_lin[va]],
            test_idx,
            flat[test_lin],
            truth=arr,
            observed_mask=om.reshape(arr.shape),
            is_image=is_image,
            sampled=observed,
            resized_from=resized_from,
        )
    if observed is not None:
        raise UsageError(
            "--observed samples a complete tensor; this one already has missing entries (mask or NaNs)"
        )
    if not obs_mask.any():
        raise DataError(
            f"{data} has no observed entries (the mask is all False / every value is NaN)"
        )
    obs_lin = np.flatnonzero(obs_mask)
    idx = np.stack(np.unravel_index(obs_lin, arr.shape), 1).astype(np.int64)
    prob = _split_observed(
        name, arr.shape, idx, arr.reshape(-1)[obs_lin], rng, val_fraction, test_fraction
    )
    prob.observed_mask, prob.is_image, prob.resized_from = obs_mask, is_image, resized_from
    return prob


def _dedupe(idx, vals, shape, source):
    lin = np.ravel_multi_index(tuple(idx.T), shape)
    uniq, first = np.unique(lin, return_index=True)
    if len(uniq) != len(lin):
        raise DataError(
            f"{source} lists {len(lin) - len(uniq)} coordinates more than once; keep one row per entry"
        )
    return idx, vals


def _split_observed(name, shape, idx, vals, rng, val_fraction, test_fraction) -> Completion:
    rest, test = _split(rng, len(vals), test_fraction)
    tr_pos, va_pos = _split(rng, len(rest), val_fraction)
    tr, va = rest[tr_pos], rest[va_pos]
    if len(tr) == 0:
        raise DataError(
            f"{name} has too few observed entries ({len(vals)}) to train on after the holdout"
        )
    return Completion(
        name, tuple(shape), idx[tr], vals[tr], idx[va], vals[va], idx[test], vals[test]
    )


def synthetic_cp(
    n: int,
    rank: int = 5,
    order: int = 3,
    noise: float = 0.01,
    seed: int = 0,
    test_fraction: float = 0.1,
    dtype="float64",
):
    """The paper's synthetic protocol: a rank-``rank`` CP tensor of side n, O(n log n)-type sampling.

    Factors are uniform on [0, 1] centred per column and the CP weights standard normal centred;
    |Omega| = (n / rank) * D n * log(n^D) observed coordinates (the authors' code), Gaussian noise
    of std ``noise`` on the observations, and a test set of 10% that size. Only the observed and
    test coordinates and values are returned -- never the dense cube.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    dt = getattr(torch, dtype)
    U = [torch.rand(n, rank, generator=g, dtype=torch.float64) for _ in range(order)]
    U = [(u - u.mean(0)).to(dt) for u in U]
    w = torch.randn(rank, generator=g, dtype=torch.float64)
    w = (w - w.mean()).to(dt)
    nnz = int(round((n / rank) * order * n * math.log(float(n) ** order)))
    nnz = min(nnz, n**order)

    def sample(count):
        lin = torch.randint(0, n**order, (count,), generator=g, dtype=torch.int64)
        lin = torch.unique(lin)
        idx = torch.empty(len(lin), order, dtype=torch.int64)
        rem = lin
        for d in range(order - 1, -1, -1):
            idx[:, d] = rem % n
            rem = rem // n
        del lin, rem
        vals = torch.ones(len(idx), rank, dtype=dt) * w
        for d in range(order):
            vals *= U[d][idx[:, d]]
        return idx, vals.sum(1)

    idx, vals = sample(nnz)
    vals += noise * torch.randn(len(vals), generator=g, dtype=torch.float64).to(dt)
    tidx, tvals = sample(max(1, int(round(test_fraction * nnz))))
    return idx, vals, tidx, tvals

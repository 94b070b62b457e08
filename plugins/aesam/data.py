"""Image-classification data for the AE-SAM plugin, as numpy arrays (N, C, H, W) float32 + int64.

Sources:

- ``digits``  scikit-learn's handwritten digits (1,797 real 8x8 images shipped with
              scikit-learn), split 75/25, with optional symmetric label noise on the training
              split, which is where SAM-like methods pull away from plain SGD;
- ``npz``     a ``.npz`` file with ``x_train, y_train, x_test, y_test`` (or ``x, y``, split here),
              read with ``allow_pickle=False``;
- ``folder``  ``root/<class>/*.png|jpg|...`` (or ``root/train/<class>`` and ``root/test/<class>``);
- ``cifar10`` / ``cifar100``  the official *binary* archives (``cifar-10-binary.tar.gz`` or its
              extracted ``cifar-10-batches-bin/``; ``cifar-100-binary``), parsed from bytes. The
              pickled "python version" is refused: nothing a user gives is unpickled.

Parsed sources are cached with ``mltk.cache.cached_arrays`` keyed by a fingerprint of the files.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError

SOURCES = ("digits", "npz", "folder", "idx", "cifar10", "cifar100")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
CIFAR_RECORD = 3 * 32 * 32


@dataclass
class Dataset:
    """Train/test arrays plus what predict needs to treat new inputs the same way."""

    x_train: np.ndarray  # (N, C, H, W) float32, normalised
    y_train: np.ndarray  # (N,) int64, possibly noisy
    x_test: np.ndarray
    y_test: np.ndarray  # clean labels
    classes: list[str]
    mean: np.ndarray  # (C,) per-channel mean subtracted (of the raw [0, 1] images)
    std: np.ndarray  # (C,)
    y_train_clean: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def input_range(self) -> tuple[float, float]:
        """The raw training inputs' smallest and largest value (before normalisation): per
        channel, normalising is increasing (std > 0), so no denormalised copy is needed."""
        lo = self.x_train.min(axis=(0, 2, 3)) * self.std + self.mean
        hi = self.x_train.max(axis=(0, 2, 3)) * self.std + self.mean
        return float(lo.min()), float(hi.max())

    @property
    def noisy_fraction(self) -> float:
        if self.y_train_clean is None:
            return 0.0
        return float(np.mean(self.y_train != self.y_train_clean))


# ---------------------------------------------------------------------------- label noise
def symmetric_label_noise(
    labels: np.ndarray, rate: float, num_classes: int, seed: int
) -> np.ndarray:
    """Replace round(rate * N) labels, chosen at random, by a uniformly drawn *different* class."""
    if not 0.0 <= rate < 1.0:
        raise UsageError(f"--noise {rate} must be in [0, 1)")
    if num_classes < 2 and rate > 0:
        raise UsageError("--noise needs at least two classes")
    rng = np.random.default_rng(seed)
    noisy = labels.astype(np.int64).copy()
    n_flip = int(round(rate * len(labels)))
    idx = rng.choice(len(labels), size=n_flip, replace=False)
    shift = rng.integers(1, num_classes, size=n_flip)  # never 0, so the class always changes
    noisy[idx] = (noisy[idx] + shift) % num_classes
    return noisy


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    """A stratified split (each class keeps its share in both halves)."""
    if not 0.0 < test_fraction < 1.0:
        raise UsageError(f"--test-fraction {test_fraction} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        rng.shuffle(members)
        test_idx.extend(members[: max(1, int(round(test_fraction * len(members))))])
    mask = np.zeros(len(y), dtype=bool)
    mask[np.asarray(test_idx, dtype=np.int64)] = True
    if mask.all():
        raise DataError("the data set is too small to split into training and test parts")
    return x[~mask], y[~mask], x[mask], y[mask]


# ---------------------------------------------------------------------------- sources
def _digits_raw() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The 1,797 digits scikit-learn ships, read from its data file (importing sklearn itself
    costs a second per command); ``sklearn.datasets.load_digits`` when the file is not found."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    csv = (
        Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if spec and spec.origin
        else None
    )
    if csv is not None and csv.is_file():
        table = np.loadtxt(csv, delimiter=",")  # 64 pixel columns (0-16), then the label
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:
        from mltk.errors import require

        bunch = require("sklearn.datasets", extra="aesam").load_digits()
        images, target = bunch.images, bunch.target
    x = (images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    return x, target.astype(np.int64), [str(c) for c in range(10)]


def _npz_raw(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"{path} is not a readable .npz file without pickled objects ({exc})"
        ) from exc
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        parts = [arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    elif {"x", "y"} <= arrays.keys():
        parts = [arrays["x"], arrays["y"]]
    else:
        raise DataError(
            f"{path} needs arrays x_train, y_train, x_test, y_test (or x, y); it has {', '.join(sorted(arrays)) or 'none'}"
        )
    out = []
    for i in range(0, len(parts), 2):
        x, y = _as_images(parts[i], path), np.asarray(parts[i + 1])
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: labels must be a 1-D integer array with one entry per image")
        if (y < 0).any():
            raise DataError(f"{path}: labels must be non-negative integers")
        out += [x, y.astype(np.int64)]
    return out


def _as_images(x: np.ndarray, path: Path) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) uint8/float -> (N, C, H, W) float32 in [0, 1]."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{path}: images must be numeric, got dtype {x.dtype}")
    if x.ndim == 2:  # (N, D): flat vectors, treated as 1 x 1 x D
        x = x[:, None, None, :]
    elif x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = np.transpose(x, (0, 3, 1, 2))
    elif x.ndim != 4:
        raise DataError(f"{path}: images must have 2 to 4 dimensions, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):  # 0-255 pixels; floats are taken as given
        return np.ascontiguousarray(x.astype(np.float32) / 255.0)
    bad = int((~np.isfinite(x)).sum())
    if bad:
        raise DataError(f"{path}: the images hold {bad} NaN or infinite values")
    return np.ascontiguousarray(x.astype(np.float32))


def _folder_images(root: Path, size: int | None, classes: list[str] | None = None):
    from mltk.errors import require

    image_mod = require("PIL.Image", extra="aesam")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    given = classes
    classes = classes or found
    if not classes:
        raise DataError(f"{root} has no class sub-folders (expected {root}/<class>/<image>.png)")
    xs, ys = [], []
    for ci, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise DataError(f"{root} has no folder for class {name!r}")
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with image_mod.open(f) as im:
                    im = im.convert("RGB")
                    if size is not None:
                        im = im.resize((size, size))
                    arr = np.asarray(im, dtype=np.uint8)
            except (OSError, ValueError) as exc:
                raise DataError(f"{f} is not a readable image ({exc})") from exc
            xs.append(arr)
            ys.append(ci)
    if not xs:
        raise DataError(f"{root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    shapes = {a.shape for a in xs}
    if len(shapes) > 1:
        raise DataError(
            f"images under {root} differ in size ({sorted(shapes)[:3]}...); pass --image-size"
        )
    empty = [name for ci, name in enumerate(classes) if ci not in set(ys)]
    if empty and given is None:  # a test folder may lack a class; a training folder may not
        raise DataError(
            f"{root} has no images for class {empty[0]!r}; remove its folder or add images"
        )
    x = np.stack(xs).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return x, np.asarray(ys, dtype=np.int64), classes


def _cifar_members(path: Path, kind: str) -> dict[str, bytes]:
    """The binary batch files of a CIFAR archive (tar.gz) or extracted folder, by file name."""
    wanted = (
        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]
        if kind == "cifar10"
        else ["train.bin", "test.bin", "fine_label_names.txt"]
    )
    found: dict[str, bytes] = {}
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar.getmembers():
                    base = Path(member.name).name
                    if member.isfile() and base in wanted:
                        fh = tar.extractfile(member)
                        if fh is not None:
                            found[base] = fh.read()
                    if base.endswith(("data_batch_1", "train")) and not base.endswith(".bin"):
                        raise DataError(
                            f"{path} is the pickled 'python version' of {kind}; use the binary "
                            "version (cifar-10-binary.tar.gz / cifar-100-binary.tar.gz): mltk "
                            "never unpickles user files"
                        )
        except (tarfile.TarError, OSError) as exc:
            raise DataError(f"{path} is not a readable tar archive ({exc})") from exc
    elif path.is_dir():
        for base in wanted:
            hits = sorted(path.rglob(base))
            if hits:
                found[base] = hits[0].read_bytes()
        if not found and (any(path.rglob("data_batch_1")) or any(path.rglob("train"))):
            raise DataError(
                f"{path} holds the pickled 'python version' of {kind}; use the binary version: "
                "mltk never unpickles user files"
            )
    else:
        raise DataError(f"--data-path {path} does not exist")
    missing = [w for w in wanted if w not in found and not w.endswith(".txt")]
    if missing:
        raise DataError(f"{path} is missing {', '.join(missing)} of the {kind} binary version")
    return found


def parse_cifar_records(
    blob: bytes, label_bytes: int, label_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Records of ``label_bytes`` label bytes then 3,072 pixel bytes (R, G, B planes of 32x32)."""
    record = label_bytes + CIFAR_RECORD
    if len(blob) % record:
        raise DataError(
            f"a CIFAR batch of {len(blob)} bytes is not a whole number of {record}-byte records"
        )
    raw = np.frombuffer(blob, dtype=np.uint8).reshape(-1, record)
    labels = raw[:, label_index].astype(np.int64)
    images = raw[:, label_bytes:].reshape(-1, 3, 32, 32)
    return images, labels


def _cifar_raw(path: Path, kind: str):
    files = _cifar_members(path, kind)
    if kind == "cifar10":
        parts = [parse_cifar_records(files[f"data_batch_{i}.bin"], 1, 0) for i in range(1, 6)]
        x_tr = np.concatenate([p[0] for p in parts])
        y_tr = np.concatenate([p[1] for p in parts])
        x_te, y_te = parse_cifar_records(files["test_batch.bin"], 1, 0)
        names_blob = files.get("batches.meta.txt", b"")
        n_classes = 10
    else:
        x_tr, y_tr = parse_cifar_records(files["train.bin"], 2, 1)  # byte 0 coarse, byte 1 fine
        x_te, y_te = parse_cifar_records(files["test.bin"], 2, 1)
        names_blob = files.get("fine_label_names.txt", b"")
        n_classes = 100
    names = [n.strip() for n in names_blob.decode("utf-8", "replace").splitlines() if n.strip()]
    classes = names if len(names) == n_classes else [str(i) for i in range(n_classes)]
    return x_tr, y_tr, x_te, y_te, classes


def _cifar_cached(path: Path, kind: str):
    from mltk.cache import cached_arrays, file_fingerprint

    if path.is_file():
        fp = file_fingerprint(path)
    elif path.is_dir():
        fp = "|".join(
            f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}"
            for f in sorted(path.rglob("*.bin"))
        )
    else:
        raise DataError(f"--data-path {path} does not exist")
    box: dict[str, list[str]] = {}

    def build():
        x_tr, y_tr, x_te, y_te, classes = _cifar_raw(path, kind)
        box["classes"] = classes
        names = np.frombuffer("\n".join(classes).encode(), dtype=np.uint8)
        return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te, "classes": names}

    arrays = cached_arrays(kind, {"source": "binary"}, build, fingerprint=fp, version=1)
    classes = bytes(arrays["classes"]).decode().split("\n")
    x_tr = arrays["x_train"].astype(np.float32) / 255.0
    x_te = arrays["x_test"].astype(np.float32) / 255.0
    return (
        x_tr,
        arrays["y_train"].astype(np.int64),
        x_te,
        arrays["y_test"].astype(np.int64),
        classes,
    )


# ---------------------------------------------------------------------------- MNIST-format (IDX)
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_TYPES = {0x08: np.uint8}  # the only type MNIST-format image and label files use


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """An IDX array (MNIST's format): two zero bytes, a type code, the number of dimensions,
    one big-endian uint32 size per dimension, then the values."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise DataError(f"{name} is not an unsigned-byte IDX file (MNIST's format)")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if ndim == 0 or len(raw) < head:
        raise DataError(f"{name} has a truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(raw[4:head], dtype=">u4"))
    n = int(np.prod(shape, dtype=np.int64))
    if len(raw) - head != n:
        raise DataError(f"{name} holds {len(raw) - head} values where its header says {n}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(shape)


def _idx_raw(root: Path):
    """MNIST, Fashion-MNIST or KMNIST as their four IDX files (gzipped or not) in a folder;
    Debian's dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist."""
    import gzip

    out = {}
    for key, stem in IDX_FILES.items():
        found = [root / stem, root / f"{stem}.gz"]
        f = next((c for c in found if c.is_file()), None)
        if f is None:
            raise DataError(f"--data-path {root} lacks {stem} (or {stem}.gz)")
        try:
            raw = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        except (OSError, EOFError) as exc:
            raise DataError(f"{f} is not readable ({exc})") from exc
        out[key] = parse_idx(raw, str(f))
    for part in ("train", "test"):
        x, y = out[f"x_{part}"], out[f"y_{part}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"{root}: the {part} images {x.shape} and labels {y.shape} do not match"
            )
    x_tr = _as_images(out["x_train"], root)
    x_te = _as_images(out["x_test"], root)
    return x_tr, out["y_train"].astype(np.int64), x_te, out["y_test"].astype(np.int64)


# ---------------------------------------------------------------------------- entry point
def load_data(
    source: str = "digits",
    path: str | Path | None = None,
    *,
    noise: float = 0.0,
    seed: int = 0,
    test_fraction: float = 0.25,
    image_size: int | None = None,
    limit_train: int | None = None,
) -> Dataset:
    """Load a source, split it, add symmetric label noise to the training labels, normalise.

    The train/test split depends only on the data (seed 0 for the split), so runs with different
    ``seed`` are evaluated on the same test images; the noise draw depends on ``seed``.
    """
    if source not in SOURCES:
        raise UsageError(f"--data {source!r} is not a data source; use one of {', '.join(SOURCES)}")
    if source != "digits" and path is None:
        raise UsageError(f"--data {source} needs --data-path")
    p = Path(path) if path is not None else None
    if source == "digits":
        x, y, classes = _digits_raw()
        x_tr, y_tr, x_te, y_te = _split(x, y, test_fraction, seed=0)
    elif source == "npz":
        if not p.is_file():
            raise DataError(f"--data-path {p} does not exist")
        parts = _npz_raw(p)
        if len(parts) == 4:
            x_tr, y_tr, x_te, y_te = parts
        else:
            x_tr, y_tr, x_te, y_te = _split(parts[0], parts[1], test_fraction, seed=0)
        classes = [str(i) for i in range(_check_labels(y_tr, y_te, named=0))]
    elif source == "folder":
        if not p.is_dir():
            raise DataError(f"--data-path {p} is not a folder")
        if (p / "train").is_dir() and (p / "test").is_dir():
            x_tr, y_tr, classes = _folder_images(p / "train", image_size)
            x_te, y_te, _ = _folder_images(p / "test", image_size, classes)
        else:
            x, y, classes = _folder_images(p, image_size)
            x_tr, y_tr, x_te, y_te = _split(x, y, test_fraction, seed=0)
    elif source == "idx":
        if not p.is_dir():
            raise DataError(f"--data-path {p} is not a folder")
        x_tr, y_tr, x_te, y_te = _idx_raw(p)
        classes = [str(i) for i in range(_check_labels(y_tr, y_te, named=0))]
    else:
        x_tr, y_tr, x_te, y_te, classes = _cifar_cached(p, source)
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DataError(
            f"training images {x_tr.shape[1:]} and test images {x_te.shape[1:]} differ in shape"
        )
    if limit_train is not None and limit_train < len(y_tr):
        keep = np.random.default_rng(seed).choice(len(y_tr), size=limit_train, replace=False)
        x_tr, y_tr = x_tr[np.sort(keep)], y_tr[np.sort(keep)]
    num_classes = _check_labels(y_tr, y_te, named=len(classes))
    y_clean = y_tr.copy()
    y_noisy = (
        symmetric_label_noise(y_tr, noise, num_classes, seed=10_007 + seed) if noise > 0 else y_tr
    )
    mean = x_tr.mean(axis=(0, 2, 3)).astype(np.float32)
    std = np.maximum(x_tr.std(axis=(0, 2, 3)), 1e-6).astype(np.float32)
    return Dataset(
        x_train=normalise(x_tr, mean, std),
        y_train=y_noisy,
        x_test=normalise(x_te, mean, std),
        y_test=y_te,
        classes=list(classes) + [str(i) for i in range(len(classes), num_classes)],
        mean=mean,
        std=std,
        y_train_clean=y_clean,
    )


def _check_labels(y_tr: np.ndarray, y_te: np.ndarray, *, named: int) -> int:
    """The number of classes, after checking that labels are class indices of >= 2 classes.

    ``named``: classes the source names (folder names, CIFAR's list), 0 when labels are bare.
    """
    largest = max(int(y_tr.max(initial=0)), int(y_te.max(initial=0)))
    distinct = len(np.union1d(y_tr, y_te))
    if largest + 1 > max(named, 10 * distinct):  # also keeps a stray huge label from building
        raise DataError(  # a model head with millions of outputs
            f"the labels run up to {largest} but only {distinct} distinct values occur; "
            "labels must be class indices 0..K-1"
        )
    if len(np.unique(y_tr)) < 2:
        raise DataError(
            f"the training labels hold {len(np.unique(y_tr))} class; a classifier needs at least 2"
        )
    return max(named, largest + 1)


RANGE_SLACK = 0.05  # of the training range's span: rounding and resizing stay inside


def check_range(x: np.ndarray, trained: tuple[float, float], rescale: bool, warn) -> np.ndarray:
    """Raw inputs against the training inputs' value range: refuse values outside it (a model
    trained on [0, 1] pixels labels 0-16 pixels confidently and wrongly), or, with ``rescale``,
    map the inputs' own range onto the training one and say so."""
    lo, hi = trained
    slack = RANGE_SLACK * max(hi - lo, 1e-12)
    x_lo, x_hi = float(x.min()), float(x.max())
    if lo - slack <= x_lo and x_hi <= hi + slack:
        return x
    span = f"the inputs' values span [{x_lo:.4g}, {x_hi:.4g}] but training saw [{lo:.4g}, {hi:.4g}]"
    if not rescale:
        raise DataError(f"{span}; scale them to the training range, or pass --rescale")
    warn(f"{span}: rescaled to the training range (--rescale)")
    if x_hi == x_lo:
        return np.full_like(x, (lo + hi) / 2)
    return ((x - x_lo) / (x_hi - x_lo) * (hi - lo) + lo).astype(np.float32)


def normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(
        (x - mean[None, :, None, None]) / std[None, :, None, None], dtype=np.float32
    )


def load_inputs(
    path: str | Path, input_shape: tuple[int, int, int]
) -> tuple[np.ndarray, list[str]]:
    """New inputs for ``predict``: an .npz/.npy array (``x``), one image file, or a folder of
    images. Returns raw [0, 1] images (N, C, H, W) shaped like the training inputs, and names."""
    p = Path(path)
    c, h, w = input_shape
    if not p.exists():
        raise DataError(f"--input {p} does not exist")
    if p.suffix == ".npz" or p.suffix == ".npy":
        try:
            if p.suffix == ".npy":
                arr = np.load(p, allow_pickle=False)
            else:
                with np.load(p, allow_pickle=False) as z:
                    key = "x" if "x" in z.files else ("x_test" if "x_test" in z.files else None)
                    if key is None:
                        raise DataError(f"{p} needs an array named x")
                    arr = z[key]
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(
                f"{p} is not a readable array file without pickled objects ({exc})"
            ) from exc
        if arr.ndim in (1, 2) and arr.shape[-1] == c * h * w:
            arr = arr.reshape(-1, c, h, w)
        x = _as_images(arr, p)
        names = [f"{p.name}[{i}]" for i in range(len(x))]
    else:
        from mltk.errors import require

        image_mod = require("PIL.Image", extra="aesam")
        files = (
            [p]
            if p.is_file()
            else sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        )
        if not files:
            raise DataError(f"--input {p} holds no images")
        xs = []
        for f in files:
            try:
                with image_mod.open(f) as im:
                    im = im.convert("L" if c == 1 else "RGB").resize((w, h))
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (OSError, ValueError) as exc:
                raise DataError(f"{f} is not a readable image ({exc})") from exc
            xs.append(arr[None] if c == 1 else arr.transpose(2, 0, 1))
        x = np.stack(xs).astype(np.float32)
        names = [str(f) for f in files]
    if len(x) == 0:
        raise DataError(f"--input {p} holds no inputs")
    if tuple(x.shape[1:]) != (c, h, w):
        raise DataError(
            f"--input {p} has inputs of shape {tuple(x.shape[1:])}; the model expects {(c, h, w)}"
        )
    return x, names


def load_digits_dataset(noise: float = 0.0, seed: int = 0) -> Dataset:
    """The embedded default, registered as the data set ``digits``."""
    return load_data("digits", noise=noise, seed=seed)

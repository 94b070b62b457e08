"""A reader of the official CIFAR-10 binary version (cifar-10-binary.tar.gz).

The archive holds ``cifar-10-batches-bin/`` with ``data_batch_1.bin`` .. ``data_batch_5.bin``
(10,000 images each) and ``test_batch.bin``. Every record is 3073 bytes:

    byte 0          the label, 0..9
    bytes 1..1024   the red plane, 32 x 32, row-major
    bytes 1025..    the green plane, then the blue plane

so a batch is a (n, 3073) uint8 array and its pixels reshape directly to (n, 3, 32, 32).

Both the ``.tar.gz`` itself (members read into memory with tarfile, nothing written to disk) and
the extracted folder are accepted. The Python version of the data set (pickled batches) is
refused: pickles can run code when loaded and are never loaded here.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from mltk.errors import DataError

TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST = ("test_batch.bin",)
RECORD = 1 + 3 * 32 * 32
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
MEAN = (0.4914, 0.4822, 0.4465)  # per channel over the 50,000 training images, pixels in [0, 1]
STD = (0.2470, 0.2435, 0.2616)
_PICKLED = ("data_batch_1", "test_batch", "batches.meta")
_REFUSE = (
    "{where} is the Python (pickle) version of CIFAR-10; pickles are never loaded here: give "
    "the binary version instead (cifar-10-binary.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html, or its extracted cifar-10-batches-bin folder)"
)


def load(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (x, y), "test": (x, y)}``: x uint8 (n, 3, 32, 32) in RGB plane order,
    y int64 (n,), from the binary archive or its extracted folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"{path} does not exist; give cifar-10-binary.tar.gz or its extracted folder"
        )
    if path.is_dir():
        files = _folder(path)
    elif tarfile.is_tarfile(path):
        files = _archive(path)
    else:
        raise DataError(
            f"{path} is neither a tar archive nor a folder; give cifar-10-binary.tar.gz "
            "or the extracted cifar-10-batches-bin folder"
        )
    return {
        "train": _join([_records(files, name) for name in TRAIN]),
        "test": _join([_records(files, name) for name in TEST]),
    }


def _folder(path: Path) -> dict[str, tuple[str, object]]:
    """name -> (where, reader) for the batches of an extracted folder (or its parent)."""
    for where in (path, path / "cifar-10-batches-bin"):
        if any((where / name).is_file() for name in TRAIN + TEST):
            return {p.name: (str(p), p.read_bytes) for p in where.iterdir() if p.is_file()}
    for where in (path, path / "cifar-10-batches-py"):
        if any((where / name).is_file() for name in _PICKLED):
            raise DataError(_REFUSE.format(where=where))
    raise DataError(
        f"{path} holds no CIFAR-10 batches (data_batch_1.bin ... test_batch.bin); give the "
        "cifar-10-batches-bin folder or cifar-10-binary.tar.gz"
    )


def _archive(path: Path) -> dict[str, tuple[str, object]]:
    """name -> (where, reader) for the regular-file members of a tar archive, by base name."""
    files, pickled = {}, False
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.rsplit("/", 1)[-1]
            if name in TRAIN + TEST:
                data = tar.extractfile(member).read()  # into memory, never onto disk
                files[name] = (f"{path}:{member.name}", lambda d=data: d)
            elif name in _PICKLED:
                pickled = True
    if not files and pickled:
        raise DataError(_REFUSE.format(where=path))
    if not files:
        raise DataError(
            f"{path} holds no CIFAR-10 batches (data_batch_1.bin ... test_batch.bin); give "
            "cifar-10-binary.tar.gz"
        )
    return files


def _records(files: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch: pixels (n, 3, 32, 32) uint8 and labels (n,) int64, checked."""
    if name not in files:
        raise DataError(
            f"the CIFAR-10 batch {name} is missing; give the complete cifar-10-binary.tar.gz "
            "(data_batch_1.bin ... data_batch_5.bin and test_batch.bin)"
        )
    where, read = files[name]
    raw = np.frombuffer(read(), dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(
            f"{where} has {raw.size} bytes, not a positive multiple of the {RECORD}-byte "
            "record; the file is truncated or not a CIFAR-10 binary batch, download it again"
        )
    rec = raw.reshape(-1, RECORD)  # (n, 1 + 3072)
    labels = rec[:, 0].astype(np.int64)  # (n,)
    if labels.max() > 9:
        raise DataError(
            f"{where} has label {int(labels.max())} (CIFAR-10 labels are 0..9); it is not a "
            "CIFAR-10 binary batch (CIFAR-100's binary format differs), give CIFAR-10's"
        )
    pixels = rec[:, 1:].reshape(-1, 3, 32, 32)  # (n, C, H, W): R, G then B planes
    return pixels, labels


def _join(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([p[0] for p in parts])  # (n, 3, 32, 32) uint8
    y = np.concatenate([p[1] for p in parts])  # (n,) int64
    return np.ascontiguousarray(x), y

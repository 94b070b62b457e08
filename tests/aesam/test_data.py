"""Data sources of the aesam plugin: label noise, digits split, CIFAR binary parsing, NPZ, folders."""

from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest
from mltk_plugins.aesam.data import (
    load_data,
    load_inputs,
    parse_cifar_records,
    symmetric_label_noise,
)

from mltk.errors import DataError, UsageError


def test_symmetric_noise_flips_exactly_the_asked_share_to_other_classes():
    labels = np.repeat(np.arange(10), 100)
    noisy = symmetric_label_noise(labels, 0.4, 10, seed=3)
    flipped = noisy != labels
    assert flipped.sum() == 400
    # every class receives a share of the flips, none stays its own
    counts = np.bincount(noisy[flipped], minlength=10)
    assert counts.min() > 20
    assert np.array_equal(noisy, symmetric_label_noise(labels, 0.4, 10, seed=3))
    assert not np.array_equal(noisy, symmetric_label_noise(labels, 0.4, 10, seed=4))


def test_digits_split_is_stratified_and_the_test_labels_stay_clean():
    clean = load_data("digits", noise=0.0, seed=0)
    noisy = load_data("digits", noise=0.2, seed=1)
    assert clean.x_train.shape[1:] == (1, 8, 8) and len(clean.y_train) + len(clean.y_test) == 1797
    assert np.array_equal(clean.y_test, noisy.y_test)  # same test split for every seed
    assert np.array_equal(clean.y_train, noisy.y_train_clean)
    assert noisy.noisy_fraction == pytest.approx(0.2, abs=0.001)
    assert np.allclose(clean.x_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    assert np.bincount(clean.y_test).min() >= 40


def _cifar_bytes(n: int, label_bytes: int, rng) -> tuple[bytes, np.ndarray, np.ndarray]:
    labels = rng.integers(0, 10, size=(n, label_bytes)).astype(np.uint8)
    images = rng.integers(0, 256, size=(n, 3, 32, 32)).astype(np.uint8)
    blob = b"".join(labels[i].tobytes() + images[i].tobytes() for i in range(n))
    return blob, labels, images


def test_cifar_records_parse_label_then_rgb_planes():
    rng = np.random.default_rng(0)
    blob, labels, images = _cifar_bytes(4, 2, rng)
    x, y = parse_cifar_records(blob, label_bytes=2, label_index=1)  # CIFAR-100: fine label second
    assert np.array_equal(y, labels[:, 1]) and np.array_equal(x, images)
    with pytest.raises(DataError, match="whole number"):
        parse_cifar_records(blob[:-1], 1, 0)


def test_cifar10_binary_archive_loads_and_the_python_version_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    expected = []
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            blob, labels, images = _cifar_bytes(3, 1, rng)
            expected.append((labels, images))
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    data = load_data("cifar10", archive)
    assert data.x_train.shape == (15, 3, 32, 32) and data.x_test.shape == (3, 3, 32, 32)
    raw_test = data.x_test * data.std[None, :, None, None] + data.mean[None, :, None, None]
    assert np.allclose(raw_test * 255.0, expected[-1][1], atol=1e-3)
    assert np.array_equal(data.y_test, expected[-1][0][:, 0])

    pickled = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(pickled, "w:gz") as tar:
        blob = pickle.dumps({"data": [1]})
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(DataError, match="never unpickles"):
        load_data("cifar10", pickled)


def test_npz_is_read_without_pickle_and_checked(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npz"
    np.savez(good, x=rng.integers(0, 256, (40, 5, 5), dtype=np.uint8), y=np.arange(40) % 4)
    data = load_data("npz", good, test_fraction=0.2)  # 2 of 10 per class
    assert data.x_train.shape == (32, 1, 5, 5) and len(data.classes) == 4
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(DataError, match="pickled"):
        load_data("npz", bad)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, images=np.zeros((4, 2, 2)))
    with pytest.raises(DataError, match="x_train"):
        load_data("npz", wrong)


def test_image_folder_loads_classes_and_predict_inputs(tmp_path):
    from PIL import Image

    for ci, name in enumerate(["cat", "dog"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (6, 6), color=(60 * ci + i, 0, 0)).save(
                tmp_path / "imgs" / name / f"{i}.png"
            )
    data = load_data("folder", tmp_path / "imgs", test_fraction=0.25)
    assert data.classes == ["cat", "dog"] and data.x_train.shape[1:] == (3, 6, 6)
    x, names = load_inputs(tmp_path / "imgs" / "dog", (3, 6, 6))
    assert x.shape == (4, 3, 6, 6) and abs(x[0, 0, 0, 0] - 60 / 255) < 1e-6 and len(names) == 4


def test_bad_sources_and_paths_are_clear_errors(tmp_path):
    with pytest.raises(UsageError, match="--data"):
        load_data("mnist")
    with pytest.raises(UsageError, match="--data-path"):
        load_data("npz")
    with pytest.raises(DataError, match="does not exist"):
        load_data("npz", tmp_path / "missing.npz")
    with pytest.raises(UsageError, match="--noise"):
        load_data("digits", noise=1.5)


@pytest.mark.parametrize(
    "labels, words",
    [
        (np.where(np.arange(40) % 4 == 3, 10**9, np.arange(40) % 4), "labels run up to 1000000000"),
        (np.zeros(40, dtype=np.int64), "a classifier needs at least 2"),
    ],
    ids=["a stray huge label", "one class"],
)
def test_labels_that_are_not_class_indices_are_refused(tmp_path, labels, words):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 4, 4)), y=labels)
    with pytest.raises(DataError, match=words):
        load_data("npz", path)


def test_a_training_class_folder_without_images_is_refused(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    for i in range(3):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / "a" / f"{i}.png")
    with pytest.raises(DataError, match="no images for class 'b'"):
        load_data("folder", tmp_path)


def test_predict_inputs_must_not_be_empty(tmp_path):
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 1, 8, 8), dtype=np.float32))
    with pytest.raises(DataError, match="holds no inputs"):
        load_inputs(tmp_path / "empty.npz", (1, 8, 8))


def _write_idx(path, array, gz):
    """MNIST's IDX layout written by hand: 0, 0, type 0x08 (uint8), ndim, big-endian sizes."""
    import gzip
    import struct

    raw = struct.pack(f">BBBB{array.ndim}I", 0, 0, 8, array.ndim, *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_an_mnist_format_folder_loads_gzipped_or_not(tmp_path):
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (60, 6, 5), dtype=np.uint8)
    y_tr = np.arange(60, dtype=np.uint8) % 10
    x_te = rng.integers(0, 256, (20, 6, 5), dtype=np.uint8)
    y_te = np.arange(20, dtype=np.uint8) % 10
    for name, arr, gz in [
        ("train-images-idx3-ubyte", x_tr, True),
        ("train-labels-idx1-ubyte", y_tr, False),
        ("t10k-images-idx3-ubyte", x_te, True),
        ("t10k-labels-idx1-ubyte", y_te, True),
    ]:
        _write_idx(tmp_path / (name + (".gz" if gz else "")), arr, gz)
    data = load_data("idx", tmp_path)
    assert data.x_train.shape == (60, 1, 6, 5) and data.classes == [str(i) for i in range(10)]
    assert np.array_equal(data.y_test, y_te) and np.array_equal(data.y_train, y_tr)
    raw = data.x_test * data.std[None, :, None, None] + data.mean[None, :, None, None]
    assert np.allclose(raw[:, 0] * 255, x_te, atol=1e-3)  # pixels / 255, normalised

    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y_te[:19], True)
    with pytest.raises(DataError, match="do not match"):
        load_data("idx", tmp_path)
    raw_file = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(raw_file[:-3])
    with pytest.raises(DataError, match="header says 60"):
        load_data("idx", tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="lacks train-labels-idx1-ubyte"):
        load_data("idx", tmp_path)

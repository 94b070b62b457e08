"""Loading and splitting: sources, masks, NaNs, sampling, and every bad input's error."""

from __future__ import annotations

import numpy as np
import pytest
from mltk_plugins.tensor.data import make_problem, synthetic_cp

from mltk.errors import DataError, UsageError


def test_embedded_image_sampling_and_split_sizes():
    p = make_problem("astronaut", size=32, observed=0.2, val_fraction=0.1, seed=0)
    n = int(np.prod(p.shape))
    assert p.shape == (32, 32, 3) and p.is_image
    n_obs = len(p.train_val) + len(p.val_val)
    assert n_obs == round(0.2 * n)
    assert len(p.val_val) == round(0.1 * n_obs)
    assert len(p.test_val) == n - n_obs  # every unobserved entry is a test entry
    assert p.observed_mask.sum() == n_obs
    # the split is disjoint and the values are the truth's
    lin = lambda idx: set(np.ravel_multi_index(tuple(idx.T), p.shape).tolist())  # noqa: E731
    assert not (lin(p.train_idx) & lin(p.test_idx)) and not (lin(p.val_idx) & lin(p.train_idx))
    assert np.allclose(p.truth[tuple(p.test_idx.T)], p.test_val)


@pytest.mark.parametrize(
    "name, full",
    [("retina", (1411, 1411, 3)), ("hubble_deep_field", (872, 1000, 3)), ("rocket", (427, 640, 3))],
)
def test_larger_shipped_photographs_load_offline(name, full):
    from mltk_plugins.tensor.data import load_image

    img = load_image(name)  # read from scikit-image's package folder, no download
    assert img.shape == full and 0 <= img.min() and img.max() <= 1
    p = make_problem(name, size=40, observed=0.1, seed=0)
    assert max(p.shape[:2]) == 40 and p.shape[2] == 3 and p.name == name


def test_same_seed_same_split_different_seed_different_split():
    a = make_problem("coffee", size=24, observed=0.3, seed=1)
    b = make_problem("coffee", size=24, observed=0.3, seed=1)
    c = make_problem("coffee", size=24, observed=0.3, seed=2)
    assert np.array_equal(a.train_idx, b.train_idx)
    assert not np.array_equal(a.train_idx, c.train_idx)


def test_npz_with_mask_and_nans(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(5, 6, 7))
    mask = rng.random(arr.shape) < 0.5
    arr[~mask & (rng.random(arr.shape) < 0.5)] = np.nan  # NaNs only where unobserved: fine
    np.savez(tmp_path / "t.npz", data=arr, mask=mask)
    p = make_problem(str(tmp_path / "t.npz"), val_fraction=0.1, test_fraction=0.2, seed=0)
    assert len(p.train_val) + len(p.val_val) + len(p.test_val) == mask.sum()
    assert np.isfinite(p.train_val).all()


def test_nans_mark_missing_entries(tmp_path):
    arr = np.random.default_rng(0).normal(size=(4, 5, 6))
    arr[0, 0, :] = np.nan
    np.save(tmp_path / "t.npy", arr)
    p = make_problem(str(tmp_path / "t.npy"), val_fraction=0.0, test_fraction=0.0)
    assert len(p.train_val) == arr.size - 6


def test_coordinate_csv(tmp_path):
    idx, vals, _, _ = synthetic_cp(12, rank=2, seed=0)
    rows = "\n".join(
        f"{i},{j},{k},{v}" for (i, j, k), v in zip(idx.tolist(), vals.tolist(), strict=True)
    )
    (tmp_path / "c.csv").write_text("i,j,k,value\n" + rows + "\n")
    p = make_problem(
        str(tmp_path / "c.csv"), shape=(12, 12, 12), val_fraction=0.1, test_fraction=0.1
    )
    assert p.shape == (12, 12, 12)
    assert len(p.train_val) + len(p.val_val) + len(p.test_val) == len(vals)


def test_a_mask_file_may_name_its_one_array_anything(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "t.npy", rng.normal(size=(4, 5, 6)))
    mask = rng.random((4, 5, 6)) < 0.5
    for name in ("mask", "observed"):
        np.savez(tmp_path / f"{name}.npz", **{name: mask})
        p = make_problem(
            str(tmp_path / "t.npy"), mask=str(tmp_path / f"{name}.npz"), val_fraction=0.0
        )
        assert len(p.train_val) + len(p.test_val) == mask.sum()


def test_fractional_coordinates_and_infinite_values_are_data_errors(tmp_path):
    (tmp_path / "c.csv").write_text("i,j,k,value\n0,1,1,2.0\n0.5,1,1,2.0\n")
    with pytest.raises(DataError, match="whole numbers"):
        make_problem(str(tmp_path / "c.csv"), shape=(3, 3, 3))
    arr = np.ones((4, 5, 6))
    arr[0, 0, 0] = np.inf
    np.save(tmp_path / "inf.npy", arr)
    with pytest.raises(DataError, match="1 infinite values"):
        make_problem(str(tmp_path / "inf.npy"))


def test_two_dimensional_array_points_to_matrix_completion(tmp_path):
    np.save(tmp_path / "m.npy", np.ones((5, 6)))
    with pytest.raises(DataError, match="matrix completion"):
        make_problem(str(tmp_path / "m.npy"), observed=0.5)


def test_mask_of_the_wrong_shape(tmp_path):
    np.save(tmp_path / "t.npy", np.ones((4, 5, 6)))
    np.save(tmp_path / "m.npy", np.ones((4, 5, 5), dtype=bool))
    with pytest.raises(DataError, match="mask has shape"):
        make_problem(str(tmp_path / "t.npy"), mask=str(tmp_path / "m.npy"))


def test_no_observed_entries(tmp_path):
    np.savez(tmp_path / "t.npz", data=np.ones((4, 5, 6)), mask=np.zeros((4, 5, 6), dtype=bool))
    with pytest.raises(DataError, match="no observed entries"):
        make_problem(str(tmp_path / "t.npz"))


def test_nan_in_observed_values(tmp_path):
    arr = np.ones((4, 5, 6))
    arr[1, 2, 3] = np.nan
    np.savez(tmp_path / "t.npz", data=arr, mask=np.ones(arr.shape, dtype=bool))
    with pytest.raises(DataError, match="NaN"):
        make_problem(str(tmp_path / "t.npz"))


def test_unreadable_files(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="could not read"):
        make_problem(str(tmp_path / "bad.npy"), observed=0.5)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="could not read") as err:
        make_problem(str(tmp_path / "bad.png"))
    assert "\n" not in str(err.value)  # one sentence, not the decoder's install advice
    with pytest.raises(DataError, match="does not exist"):
        make_problem(str(tmp_path / "missing.npy"))
    with pytest.raises(DataError, match="cannot read"):
        make_problem(str(tmp_path / "x.txt"))


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError):
        make_problem(str(tmp_path / "obj.npy"), observed=0.5)


def test_complete_array_without_observed_fraction_is_explained(tmp_path):
    np.save(tmp_path / "t.npy", np.ones((4, 5, 6)))
    with pytest.raises(DataError, match="--observed"):
        make_problem(str(tmp_path / "t.npy"))
    with pytest.raises(UsageError, match="--observed"):
        make_problem(str(tmp_path / "t.npy"), observed=1.5)


def test_synthetic_protocol_size():
    idx, vals, tidx, tvals = synthetic_cp(30, rank=5, seed=0)
    expected = (30 / 5) * 3 * 30 * np.log(30.0**3)
    assert abs(len(vals) - expected) / expected < 0.1  # a few duplicates are dropped
    assert idx.max() < 30 and len(tvals) > 0

"""The teachers of Algorithm 1: greedy picks the argmax, random is reproducible by seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mltk_plugins.teach.kernels import Kernel
from mltk_plugins.teach.pools import DensePool, GridPool, topk_lowest
from mltk_plugins.teach.teachers import Teacher, parse
from mltk_plugins.teach.teaching import Settings, teach

from mltk.errors import UsageError

from .conftest import toy


def _toy_pool(candidates=None, f0=None):
    x, y, start = toy()
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return DensePool(
        t(x[:, None]),
        t(y),
        t(start if f0 is None else f0),
        Kernel("rbf", 0.5),
        candidates=candidates,
    )


def test_gft_picks_the_largest_residual_and_the_lowest_index_on_ties():
    x, y, _ = toy()
    f0 = y.copy()
    f0[[40, 7, 200]] += [0.3, -0.5, 0.5]  # |r| = 0.5 at 7 and at 200: the tie goes to 7
    pool = _toy_pool(f0=f0)
    assert pool.pick(1).tolist() == [7]
    assert pool.pick(2).tolist() == [7, 200]
    assert pool.pick(3).tolist() == [7, 40, 200]
    img = np.zeros((6, 7))
    f = np.zeros((6, 7))
    f[4, 1] = f[2, 5] = -1.0  # two equal maxima: row 2 comes first
    assert GridPool(img, f, Kernel("rbf", 1.0)).pick(1).tolist() == [2 * 7 + 5]


def test_topk_is_distinct_and_breaks_ties_by_index_in_numpy_and_torch():
    s = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 0.5])
    assert topk_lowest(s, 3).tolist() == [1, 2, 3]
    assert topk_lowest(torch.tensor(s), 3).tolist() == [1, 2, 3]
    assert topk_lowest(s, 6).tolist() == list(range(6))


def test_every_gft_step_teaches_the_current_argmax():
    x, y, f0 = toy()
    trace = teach(lambda c: _toy_pool(c), y, Teacher("gft", 1), Settings(max_iter=200))
    pool = _toy_pool()
    for t in range(200):  # replay: each taught point is the argmax of |f - f*| at that step
        i = int(trace.sequence["index"][t])
        r = np.abs(pool.values() - y)
        assert i == int(np.argmax(r))
        pool.add(np.array([i]), np.array([trace.sequence["alpha"][t]]))


def test_rft_is_reproducible_by_seed_and_uniform_with_replacement():
    x, y, _ = toy()
    s = Settings(max_iter=300)
    a = teach(lambda c: _toy_pool(c), y, Teacher("rft", 5), s, seed=11)
    b = teach(lambda c: _toy_pool(c), y, Teacher("rft", 5), s, seed=11)
    c = teach(lambda c: _toy_pool(c), y, Teacher("rft", 5), s, seed=12)
    assert np.array_equal(a.sequence["index"], b.sequence["index"])
    assert np.array_equal(a.losses, b.losses)
    assert not np.array_equal(a.sequence["index"], c.sequence["index"])
    packs = a.sequence["index"].reshape(300, 5)
    assert any(len(set(p)) < 5 for p in packs)  # with replacement: repeats within a pack occur
    assert np.array_equal(
        packs.ravel(), np.random.default_rng(11).integers(0, 280, (300, 5)).ravel()
    )


def test_pool_gft_searches_only_its_fixed_subset():
    x, y, _ = toy()
    trace = teach(
        lambda c: _toy_pool(c),
        y,
        Teacher("pool-gft", 1),
        Settings(max_iter=500, pool_fraction=0.3),
        seed=4,
    )
    subset = set(np.random.default_rng(4).choice(280, 84, replace=False).tolist())
    assert set(trace.sequence["index"].astype(int).tolist()) <= subset


def test_the_noisy_teacher_labels_a_step_from_the_alternative_with_probability_q():
    x, y, _ = toy()
    alt = y + 1.0
    trace = teach(
        lambda c: _toy_pool(c),
        y,
        Teacher("alt-gft", 1),
        Settings(max_iter=2000, alt_probability=0.2),
        seed=0,
        alternative=alt,
    )
    idx = trace.sequence["index"].astype(int)
    from_alt = np.isclose(trace.sequence["label"], alt[idx])
    assert 0.16 < from_alt.mean() < 0.24
    assert np.all(from_alt | np.isclose(trace.sequence["label"], y[idx]))


@pytest.mark.parametrize(
    "spec,kind,k",
    [
        ("gft", "gft", 1),
        ("gft-14", "gft", 14),
        ("rft-0.05", "rft", 0.05),
        ("whole", "whole", 1),
        ("pool-gft-1", "pool-gft", 1),
        ("alt-gft", "alt-gft", 1),
        ("Gft-2", "gft", 2),
    ],
)
def test_teacher_names_parse(spec, kind, k):
    (t,) = parse([spec], 1)
    assert (t.kind, t.k) == (kind, k)


def test_pack_sizes_follow_the_notebooks():
    assert Teacher("rft", 0.05).size(280) == 14 and Teacher("gft", 0.5).size(280) == 140
    assert Teacher("whole").size(280) == 280 and Teacher("gft", 3).size(280) == 3


@pytest.mark.parametrize("spec", ["greedy", "gft-1.5", "gft-0", "rft--1", "gft-x"])
def test_bad_teacher_names_are_usage_errors(spec):
    with pytest.raises(UsageError):
        parse([spec], 1)


def test_k_above_the_pool_size_is_a_usage_error():
    x, y, _ = toy()
    with pytest.raises(UsageError, match="the pool has 280"):
        teach(lambda c: _toy_pool(c), y, Teacher("gft", 281), Settings(max_iter=1))


def test_pool_gft_never_picks_outside_its_subset_even_once_the_subset_is_fitted():
    x, y, _ = toy()
    f0 = y.copy()
    f0[1::2] += 1.0  # wrong only outside the subset of even indices
    pool = _toy_pool(candidates=np.arange(0, 280, 2), f0=f0)
    assert pool.pick(1)[0] % 2 == 0 and all(i % 2 == 0 for i in pool.pick(5))
    img = np.zeros((6, 6))
    f = np.ones((6, 6))
    f.ravel()[::2] = 0.0  # the subset (even flat indices) is already right
    grid = GridPool(img, f, Kernel("rbf", 1.0), candidates=np.arange(0, 36, 2))
    assert grid.pick(1)[0] % 2 == 0

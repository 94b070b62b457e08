"""The learner: functional gradient descent in an RKHS, kept on the pool incrementally."""

from __future__ import annotations

import numpy as np
import torch
from mltk_plugins.teach.kernels import Kernel
from mltk_plugins.teach.pools import DensePool, GridPool
from mltk_plugins.teach.teachers import Teacher
from mltk_plugins.teach.teaching import Settings, teach

from .conftest import toy


def _dense(x, y, f0, kernel, **kw):
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return lambda c: DensePool(t(x), t(y), t(f0), kernel, candidates=c, **kw)


def test_with_the_linear_kernel_it_is_gradient_descent_on_a_linear_model():
    """K(x, x') = x.x' + 1: f^t = w^t.x + b^t, with (w, b) trained by plain GD on the same packs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=60)
    w0, b0 = np.array([0.2, 0.1, -0.3]), -0.5
    f0 = x @ w0 + b0
    s = Settings(eta=0.05, eps=1e-12, max_iter=40)
    trace = teach(_dense(x, y, f0, Kernel("linear"), rule="exact"), y, Teacher("rft", 4), s, seed=3)
    w, b = w0.copy(), b0
    seq = trace.sequence
    for t in range(trace.steps):
        idx = seq["index"][seq["t"] == t].astype(int)
        r = y[idx] - (x[idx] @ w + b)
        w, b = w + s.eta * 2 * (r @ x[idx]) / len(idx), b + s.eta * 2 * r.mean()
        assert np.allclose(
            trace.losses[t + 1], np.linalg.norm(x @ w + b - y) / 60, rtol=0, atol=1e-12
        )
    assert np.max(np.abs(trace.final - (x @ w + b))) < 1e-12
    assert trace.losses[-1] < trace.losses[0] / 2  # it learned something


def test_pool_values_equal_the_expansion_evaluated_from_scratch():
    x, y, f0 = toy()
    kernel = Kernel("rbf", 0.5)
    trace = teach(_dense(x[:, None], y, f0, kernel), y, Teacher("gft", 3), Settings(max_iter=400))
    gram = np.exp(-((x[:, None] - x[None, :]) ** 2) / 0.25)
    assert np.max(np.abs(trace.final - (f0 + trace.coef @ gram))) < 1e-12
    seq = trace.sequence
    again = f0 + np.bincount(seq["index"].astype(int), seq["alpha"], len(x)) @ gram
    assert np.max(np.abs(trace.final - again)) < 1e-12


def _pixels(h, w):
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([ii.ravel(), jj.ravel()], 1).astype(float)


def test_the_truncated_grid_equals_the_dense_kernel():
    rng = np.random.default_rng(1)
    img = rng.normal(size=(24, 20))
    f0 = rng.normal(size=(24, 20))
    s = Settings(eta=0.25, eps=1e-12, max_iter=600)
    for kernel in (Kernel("rbf", 1.0), Kernel("laplace", 0.7)):
        for teacher in (Teacher("gft", 1), Teacher("rft", 2), Teacher("gft", 40), Teacher("whole")):
            grid = teach(
                lambda c, k=kernel: GridPool(img, f0, k, candidates=c),
                img.ravel(),
                teacher,
                s,
                seed=5,
            )
            dense = teach(
                _dense(_pixels(24, 20), img.ravel(), f0.ravel(), kernel),
                img.ravel(),
                teacher,
                s,
                seed=5,
            )
            assert np.max(np.abs(grid.final - dense.final)) < 1e-9, (kernel, teacher)
            assert np.max(np.abs(grid.losses - dense.losses)) < 1e-12
            assert np.array_equal(grid.sequence.get("index", []), dense.sequence.get("index", []))


def test_the_stencil_drops_only_values_below_1e_12():
    k = Kernel("rbf", 1.0)
    st = k.stencil()
    r = st.shape[0] // 2
    d = np.arange(-r, r + 1)
    full = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / 1.0)
    assert np.array_equal(st[st > 0], full[full >= 1e-12])
    assert r <= 6  # within the 6h box
    outside = np.exp(-((r + 1) ** 2) / 1.0)
    assert outside < 1e-12


def test_the_grid_incremental_sums_match_a_fresh_computation():
    rng = np.random.default_rng(2)
    img = rng.normal(size=(30, 30))
    pool = GridPool(img, np.zeros((30, 30)), Kernel("rbf", 1.0))
    for _ in range(300):
        i = pool.pick(1)
        pool.add(i, np.array([0.5 * (img.ravel()[i[0]] - pool.at(i)[0]) * 2 * 0.25]))
    incremental = pool.total(), pool.sum_s, pool.rowmax.copy()
    fresh = pool.exact_total()
    assert abs(incremental[0] - fresh) < 1e-9 * max(1.0, fresh)
    assert abs(incremental[1] - pool.sum_s) < 1e-9 * max(1.0, pool.sum_s)
    assert np.array_equal(incremental[2], pool.rowmax)

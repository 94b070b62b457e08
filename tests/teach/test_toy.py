"""The paper's 1-D toy reproduces its iterative teaching dimensions exactly."""

from __future__ import annotations

import numpy as np
import torch
from mltk_plugins.teach import data as D
from mltk_plugins.teach.kernels import Kernel
from mltk_plugins.teach.pools import DensePool
from mltk_plugins.teach.teachers import Teacher
from mltk_plugins.teach.teaching import Settings, teach

from .conftest import toy


def _run(teacher):
    x, y, f0 = toy()
    x, y, f0 = (torch.as_tensor(a, dtype=torch.float64) for a in (x[:, None], y, f0))

    def build(candidates):
        return DensePool(x, y, f0, Kernel("rbf", 0.5), candidates=candidates)

    return teach(build, y.numpy(), teacher, Settings(eta=0.01, eps=1e-4, max_iter=10_000))


def test_the_embedded_toy_is_the_papers():
    x, y, f0 = toy()
    prob = D.load("toy1d")
    assert prob.n == 280 and np.array_equal(prob.x[:, 0], x)
    assert np.max(np.abs(prob.target - y)) < 1e-15 and np.max(np.abs(prob.f0 - f0)) < 1e-15


def test_gft_1_reaches_1e_4_at_iteration_3056_and_the_whole_pool_at_7102():
    gft, whole = _run(Teacher("gft", 1)), _run(Teacher("whole"))
    assert gft.itd == 3056 and gft.losses[3055] >= 1e-4 > gft.losses[3056]
    assert whole.itd == 7102
    # the theory's predicted speed-up of GFT over RFT, 1 / mean(gamma) over the GFT run
    assert abs(1 / gft.gammas.mean() - 2.15) < 0.005


def test_the_greedy_ratio_is_mean_over_max_of_the_squared_residual():
    x, y, f0 = toy()
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    pool = DensePool(t(x[:, None]), t(y), t(f0), Kernel("rbf", 0.5))
    r = y - f0
    assert abs(pool.greedy_ratio() - np.mean(r**2) / np.max(r**2)) < 1e-15
    trace = _run(Teacher("gft", 1))
    assert abs(trace.gammas[0] - np.mean(r**2) / np.max(r**2)) < 1e-15
    assert np.all((trace.gammas > 0) & (trace.gammas <= 1))

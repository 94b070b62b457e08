"""NORT reaches the dense solver's objective; momentum rules, dtypes, continuation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from mltk_plugins.tensor.continuation import fit_path, rmse
from mltk_plugins.tensor.dense import convex_admm, dense_proximal_average, true_objective
from mltk_plugins.tensor.nort import (
    NORT,
    NortOptions,
    component_singular_values,
    sparse_spectral_norms,
)
from mltk_plugins.tensor.structured import unfold
from tensor_problems import low_rank_problem, split_validation


@pytest.fixture
def problem():
    return low_rank_problem()


@pytest.mark.parametrize("penalty,theta", [("nuclear", 1.0), ("lsp", 3.0)])
def test_nort_and_dense_proximal_average_reach_the_same_objective(problem, penalty, theta):
    obs, vals, _, idx = problem
    lam = [1.0, 1.0, 1.0]
    o = NortOptions(
        penalty=penalty, theta=theta, max_rank=(10, 10, 10), max_iter=1500, tol=1e-12, power_iters=2
    )
    X, h = NORT(obs, vals, lam, o).run()
    Xd, hd = dense_proximal_average(
        obs.shape, idx, vals, lam, penalty, theta, max_iter=1500, tol=1e-12
    )
    assert h.objective[-1] == pytest.approx(hd.objective[-1], rel=1e-6)
    assert float((X.dense() - Xd).norm() / Xd.norm()) < 1e-3


@pytest.mark.parametrize("penalty,theta", [("lsp", 3.0), ("capped-l1", 2.0)])
def test_with_every_mode_allowed_in_full_nort_takes_the_dense_solvers_steps(
    problem, penalty, theta
):
    """Rank caps at the mode sizes make every per-mode SVD exact, so NORT's iterates are the dense
    proximal average's, step for step (not only at convergence)."""
    obs, vals, _, idx = problem
    lam = [10.0, 10.0, 10.0]  # ranks well below the mode sizes
    o = NortOptions(
        penalty=penalty, theta=theta, max_rank=obs.shape, max_iter=12, tol=0.0, momentum="none"
    )
    X, h = NORT(obs, vals, lam, o).run()
    Xd, hd = dense_proximal_average(
        obs.shape, idx, vals, lam, penalty, theta, max_iter=12, tol=0.0, momentum="none"
    )
    assert max(X.ranks) < min(obs.shape) - 3
    assert h.objective == pytest.approx(hd.objective, rel=1e-9)
    assert float((X.dense() - Xd).norm() / Xd.norm()) < 1e-9


@pytest.mark.parametrize("momentum", ["adaptive", "restart", "none"])
def test_every_momentum_rule_converges_to_the_same_point(problem, momentum):
    obs, vals, _, idx = problem
    o = NortOptions(
        penalty="lsp", theta=3.0, max_rank=(8, 8, 8), max_iter=2000, tol=1e-11, momentum=momentum
    )
    _, h = NORT(obs, vals, [1.0] * 3, o).run()
    ref = NortOptions(
        penalty="lsp", theta=3.0, max_rank=(8, 8, 8), max_iter=2000, tol=1e-11, momentum="none"
    )
    _, h_ref = NORT(obs, vals, [1.0] * 3, ref).run()
    assert h.objective[-1] == pytest.approx(h_ref.objective[-1], rel=1e-6)


def test_adaptive_momentum_needs_fewer_iterations_than_none():
    obs, vals, _, _ = low_rank_problem(shape=(20, 21, 22), fraction=0.2, seed=3)
    runs = {}
    for m in ("adaptive", "none"):
        o = NortOptions(
            penalty="lsp", theta=3.0, max_rank=(6, 6, 6), max_iter=3000, tol=1e-9, momentum=m
        )
        _, h = NORT(obs, vals, [0.5] * 3, o).run()
        runs[m] = len(h.objective)
    assert runs["adaptive"] < runs["none"]


def test_convex_admm_solves_the_nuclear_objective_at_least_as_well(problem):
    obs, vals, _, idx = problem
    lam = [1.0, 1.0, 1.0]
    Xc, _ = convex_admm(obs.shape, idx, vals, lam, max_iter=800, tol=1e-10)
    Xp, _ = dense_proximal_average(
        obs.shape, idx, vals, lam, "nuclear", 1.0, max_iter=800, tol=1e-10
    )
    f_admm = true_objective(Xc, idx, vals, lam, "nuclear", 1.0)
    f_pa = true_objective(Xp, idx, vals, lam, "nuclear", 1.0)
    assert f_admm <= f_pa * (1 + 1e-4)


def test_component_singular_values_match_svd():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(7, 4, generator=g, dtype=torch.float64)
    V = torch.randn(30, 4, generator=g, dtype=torch.float64)
    got = component_singular_values(W, V)
    want = torch.linalg.svdvals(W @ V.T)[:4]
    assert torch.allclose(got, want, rtol=1e-8, atol=1e-8)


def test_spectral_norms_of_the_zero_filled_data(problem):
    obs, vals, _, idx = problem
    X = torch.zeros(obs.shape, dtype=torch.float64)
    X[idx[:, 0], idx[:, 1], idx[:, 2]] = vals
    want = [float(torch.linalg.svdvals(unfold(X, d))[0]) for d in range(3)]
    got = sparse_spectral_norms(obs, vals, iters=200)
    assert got == pytest.approx(want, rel=1e-6)


def test_float32_runs_and_recovers_the_tensor():
    obs, vals, X, _ = low_rank_problem(shape=(20, 21, 22), fraction=0.3, seed=1)
    o = NortOptions(penalty="lsp", theta=3.0, max_rank=(6, 6, 6), max_iter=500, tol=1e-7)
    Xh, _ = NORT(obs, vals.float(), [0.3] * 3, o).run()
    assert Xh.U[0].dtype == torch.float32
    assert float((Xh.dense().double() - X).norm() / X.norm()) < 0.05


def test_capped_l1_from_zero_stalls_but_continuation_recovers():
    obs, vals, X, idx = low_rank_problem(shape=(20, 21, 22), fraction=0.25, seed=2)
    lam_d = 1.0  # small enough that the zero start keeps noise directions unshrunk
    o = NortOptions(
        penalty="capped-l1", theta=2 * 3 * lam_d, max_rank=(20, 20, 20), max_iter=300, tol=1e-8
    )
    cold, _ = NORT(obs, vals, [lam_d] * 3, o).run()
    warm = fit_path(obs, vals, o, lam=lam_d, theta=2 * 3 * lam_d, ratio=0.6, stage_iters=50).factors
    err = lambda F: float((F.dense() - X).norm() / X.norm())  # noqa: E731
    assert err(cold) > 0.3  # stalled at a poor, high-rank point
    assert err(warm) < 0.01
    assert warm.ranks == [2, 2, 2]


def test_lambda_search_picks_a_lambda_on_the_path_and_beats_the_first_stage():
    obs, vals, X, idx = low_rank_problem(shape=(20, 21, 22), fraction=0.3, seed=4)
    o_tr, _, o_va, _, tr, va = split_validation(obs, vals, idx)
    o = NortOptions(penalty="lsp", max_rank=(8, 8, 8), max_iter=300, tol=1e-6)
    res = fit_path(o_tr, vals[tr], o, val=(o_va, vals[va]), steps=10, stage_iters=30)
    v = [s.val_rmse for s in res.stages]
    assert res.stages[-1].val_rmse == pytest.approx(min(v), rel=0.05)
    assert res.stages[-1].val_rmse < v[0]
    assert rmse(res.factors.low().at(o_va), vals[va]) < 0.1


def test_fourth_order_tensor_is_recovered():
    import math

    from mltk_plugins.tensor.structured import Observed

    g = torch.Generator().manual_seed(5)
    shape = (8, 9, 10, 11)
    U = [torch.randn(n, 2, generator=g, dtype=torch.float64) for n in shape]
    X = torch.einsum("ir,jr,kr,lr->ijkl", *U)
    lin = torch.randperm(math.prod(shape), generator=g)[: math.prod(shape) // 4]
    idx = torch.stack(torch.unravel_index(lin, shape), 1)
    obs = Observed.from_indices(idx, shape)
    o = NortOptions(penalty="lsp", theta=3.0, max_rank=(6, 6, 6, 6), max_iter=800, tol=1e-9)
    Xh, _ = NORT(obs, X.reshape(-1)[lin], [0.3] * 4, o).run()
    assert float((Xh.dense() - X).norm() / X.norm()) < 0.02


def test_capped_l1_lambda_search_also_picks_theta_on_validation():
    import torch
    from mltk_plugins.tensor import solve as c
    from mltk_plugins.tensor.config import TensorConfig
    from mltk_plugins.tensor.data import make_problem

    prob = make_problem("astronaut", size=24, observed=0.3, seed=0)
    cfg = TensorConfig(
        size=24,
        observed=0.3,
        penalty="capped-l1",
        path_steps=4,
        stage_iters=5,
        theta_search="paths",
        refit=False,
    )
    res = c.fit(cfg, prob, torch.device("cpu"), lambda m: None, monitor=False)
    walked = res["theta_search"]
    assert [w["scale"] for w in walked] == [1.0, 2.0, 4.0]
    best = min(walked, key=lambda w: w["val_rmse"])
    assert res["val_rmse"] == best["val_rmse"]
    assert res["iterations"] == sum(w["iterations"] for w in walked)
    # one path (the default) tries the multiples 1 and 4 at its chosen lambda instead
    logs = []
    one = c.fit(
        dataclasses.replace(cfg, theta_search="one-path"),
        prob,
        torch.device("cpu"),
        logs.append,
        monitor=False,
    )
    tried = [m for m in logs if m.startswith("near the best")]
    assert len(tried) == 4 and "theta_search" not in one  # 2 lambdas, then 2 thetas
    assert one["iterations"] < res["iterations"]
    assert one["val_rmse"] <= min(s["val_rmse"] for s in one["stages"][:-1])


def test_a_validation_plateau_does_not_stop_the_lambda_search():
    from mltk_plugins.tensor.continuation import count_rises

    best, rises, seen = float("inf"), 0, []
    # ranks stuck (RMSE creeping up by 0.3% a stage), then a real rise of 5% a stage
    for v in [0.1259, 0.0930, 0.0931, 0.0932, 0.0934, 0.0980, 0.1030, 0.1080]:
        best = min(best, v)
        rises = count_rises(v, best, rises)
        seen.append(rises)
    assert seen == [0, 0, 0, 0, 0, 1, 2, 3]
    assert count_rises(0.1015, 0.1, 2, tol=0.02) == 0 and count_rises(0.103, 0.1, 2, tol=0.02) == 3


def test_a_block_spanning_the_whole_mode_takes_one_exact_pass(monkeypatch):
    """An image-like mode of size 3 (rank cap 3) is solved exactly from one product with Z^T
    (none with Z); the other modes take every power iteration asked for."""
    from mltk_plugins.tensor import penalties
    from mltk_plugins.tensor.nort import Factors
    from mltk_plugins.tensor.structured import SparsePlusLowRank

    obs, vals, _, idx = low_rank_problem(shape=(12, 13, 3), fraction=0.5, seed=6)
    o = NortOptions(penalty="lsp", theta=2.0, max_rank=(6, 6, 3), power_iters=3)
    solver = NORT(obs, vals, [0.2] * 3, o)
    calls = {"rmatmul": [0, 0, 0], "matmul": [0, 0, 0]}

    def counting(name):
        real = getattr(SparsePlusLowRank, name)

        def wrapped(self, d, M):
            calls[name][d] += 1
            return real(self, d, M)

        return wrapped

    for name in calls:
        monkeypatch.setattr(SparsePlusLowRank, name, counting(name))
    zero = Factors.zeros(obs.shape, solver.alpha, vals.dtype, vals.device)
    X = solver.prox_step(zero.low(), torch.zeros_like(vals), zero.U)
    assert calls == {"rmatmul": [3, 3, 1], "matmul": [3, 3, 0]}
    # the one pass is the exact SVD: the zero-filled observed tensor's mode-3 singular values,
    # shrunk by the penalty's proximal operator
    Z = torch.zeros(obs.shape, dtype=vals.dtype)
    Z[tuple(idx.T)] = vals
    exact = penalties.prox(torch.linalg.svdvals(unfold(Z, 2)), solver.Lam, o.theta, o.penalty)
    exact = exact[exact > 0]
    assert torch.allclose(X.s[2], exact, rtol=1e-10, atol=1e-12)
    # from a point with every mode's term present, the mode-3 term is the exact prox of the
    # dense Z = point - gradient (full SVD), factors and all
    point, at_obs = X.low(), X.low().at(obs)
    Y = solver.prox_step(point, at_obs, X.U)
    Zd = SparsePlusLowRank(obs, vals - at_obs, point).dense()
    U, S, Vh = torch.linalg.svd(unfold(Zd, 2), full_matrices=False)
    shrunk = penalties.prox(S, solver.Lam, o.theta, o.penalty)
    r = int((shrunk > 0).sum())
    want = (U[:, :r] * shrunk[:r]) @ Vh[:r]
    got = (Y.U[2] * Y.s[2]) @ Y.V[2].T
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-10)


def test_the_final_stage_takes_its_own_power_iterations():
    obs, vals, _, idx = low_rank_problem(shape=(20, 21, 22), fraction=0.3, seed=4)
    o = NortOptions(penalty="lsp", max_rank=(8, 8, 8), max_iter=50, tol=1e-6)
    res = fit_path(obs, vals, o, lam=0.05, ratio=0.5, stage_iters=5, final_power_iters=3)
    assert len(res.stages) > 1
    assert [s.power_iters for s in res.stages] == [1] * (len(res.stages) - 1) + [3]


def test_the_search_keeps_the_path_solution_when_refining_does_worse_on_validation():

    obs, vals, X, idx = low_rank_problem(shape=(20, 21, 22), fraction=0.3, seed=4, noise=0.3)
    o_tr, _, o_va, _, tr, va = split_validation(obs, vals, idx)
    kw = dict(val=(o_va, vals[va]), steps=10, stage_iters=2)
    # LSP: converging at the chosen lambda helps, and its solution is returned
    lsp = fit_path(o_tr, vals[tr], NortOptions(penalty="lsp", max_rank=(8, 8, 8)), **kw)
    assert lsp.refined and lsp.val_rmse == lsp.stages[-1].val_rmse
    assert lsp.val_rmse < min(s.val_rmse for s in lsp.stages[:-1])
    # capped-l1 on noisy data: the converged point fits the training entries at the expense of
    # the held-out ones, so the best path stage is returned
    o = NortOptions(penalty="capped-l1", max_rank=(8, 8, 8))
    res = fit_path(o_tr, vals[tr], o, theta_scale=4.0, **kw)
    best_stage = min(s.val_rmse for s in res.stages[:-1])
    assert res.stages[-1].val_rmse > best_stage
    assert not res.refined and res.val_rmse == best_stage
    assert rmse(res.factors.low().at(o_va), vals[va]) == pytest.approx(best_stage, rel=1e-12)


def test_a_refinement_that_rises_on_validation_stops_early_and_changes_only_the_time(
    monkeypatch,
):
    from mltk_plugins.tensor import continuation

    obs, vals, X, idx = low_rank_problem(shape=(20, 21, 22), fraction=0.3, seed=4, noise=0.3)
    o_tr, _, o_va, _, tr, va = split_validation(obs, vals, idx)
    kw = dict(val=(o_va, vals[va]), steps=10, stage_iters=2, theta_scale=4.0)
    o = NortOptions(penalty="capped-l1", max_rank=(8, 8, 8), max_iter=300, tol=1e-7)
    stopped = fit_path(o_tr, vals[tr], o, **kw)
    monkeypatch.setattr(continuation.EarlyStop, "__call__", lambda self, X: False)
    full = fit_path(o_tr, vals[tr], o, **kw)
    # the converged run ends worse on validation than its stage, so both keep the stage
    assert not full.refined and not stopped.refined
    assert full.stages[-1].val_rmse > 1.05 * full.val_rmse
    assert stopped.val_rmse == full.val_rmse and stopped.lam == full.lam
    for a, b in zip(stopped.factors.low().W, full.factors.low().W, strict=True):
        assert torch.equal(a, b)
    # every stage before the refinement is the same; the refinement stops at a check (every 5
    # iterations), three checks after validation's best, long before convergence
    assert [s.iters for s in stopped.stages[:-1]] == [s.iters for s in full.stages[:-1]]
    n = stopped.stages[-1].iters
    assert n % o.monitor_every == 0 and 15 <= n < full.stages[-1].iters / 2
    assert stopped.stages[-1].val_rmse > full.val_rmse * (1 + continuation.RISE_TOL)


def test_the_search_extends_a_path_whose_last_stage_is_the_best():
    from mltk_plugins.tensor.structured import Observed

    obs, vals, X, idx = low_rank_problem(shape=(20, 21, 22), fraction=0.3, seed=4)
    o_tr, _, o_va, _, tr, va = split_validation(obs, vals, idx)
    o = NortOptions(penalty="lsp", max_rank=(8, 8, 8), max_iter=50)
    # three stages shrinking by 0.9 stay far above the best lambda: the path must go on, by the
    # same ratio, and stop at twice its length
    res = fit_path(o_tr, vals[tr], o, val=(o_va, vals[va]), steps=3, ratio=0.9, stage_iters=5)
    path = [s.threshold for s in res.stages[:-1]]
    assert len(path) == 6
    assert all(b == pytest.approx(0.9 * a) for a, b in zip(path, path[1:], strict=False))
    assert res.stages[-1].threshold == path[-1]  # the last (best) stage is the one refined
    # on very noisy data the validation RMSE turns up early: the walk stops, no extension
    obs, vals, X, idx = low_rank_problem(shape=(20, 21, 22), fraction=0.3, seed=4, noise=1.0)
    o_tr, o_va = (
        Observed.from_indices(idx[tr], obs.shape),
        Observed.from_indices(idx[va], obs.shape),
    )
    noisy = fit_path(o_tr, vals[tr], o, val=(o_va, vals[va]), steps=10, ratio=0.5, stage_iters=5)
    v = [s.val_rmse for s in noisy.stages[:-1]]
    assert len(v) <= 10 and v.index(min(v)) < len(v) - 1


def test_the_validation_walk_extends_stops_and_keeps_the_best():
    from mltk_plugins.tensor.continuation import ValidationWalk

    w = ValidationWalk(lam_max=1.0, ratio=0.5, steps=4)
    assert w.thresholds == [0.5, 0.25, 0.125, 0.0625]
    # still falling at the end of the grid: the grid grows by the same ratio, to at most 8
    stops = [w.record(i, 1.0 - 0.1 * i, f"X{i}") for i in range(8)]
    assert not any(stops) and len(w.thresholds) == 8
    assert w.best == (pytest.approx(0.3), 0.5**8, "X7")
    # rising three stages in a row after the first half of the grid: stop, keep the best
    w = ValidationWalk(lam_max=1.0, ratio=0.5, steps=6)
    stops = [w.record(i, v, i) for i, v in enumerate([0.9, 0.5, 0.6, 0.7, 0.8])]
    assert stops == [False, False, False, False, True] and w.best[2] == 1
    assert len(w.thresholds) == 6

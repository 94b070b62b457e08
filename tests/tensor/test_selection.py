"""After the lambda search: the refit on every observed entry, the search near the minimum, and
rank caps that grow (or warn), against the path the first release walked."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from mltk_plugins.tensor import continuation, solve
from mltk_plugins.tensor.config import TensorConfig
from mltk_plugins.tensor.data import Completion
from mltk_plugins.tensor.nort import NortOptions
from mltk_plugins.tensor.structured import Observed
from tensor_problems import low_rank_problem

FAST = {"path_steps": 6, "stage_iters": 5, "max_iter": 40, "path_ratio": 0.6}


def completion(shape=(14, 15, 16), rank=2, fraction=0.35, seed=0) -> Completion:
    """A low-rank problem as `make_problem` would split it: 90/10 train/validation, the rest test."""
    _, vals, X, idx = low_rank_problem(shape, rank, fraction, seed=seed)
    idx, vals = idx.numpy(), vals.numpy()
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(vals))
    tr, va = perm[: int(0.9 * len(perm))], perm[int(0.9 * len(perm)) :]
    seen = np.zeros(shape, bool)
    seen[tuple(idx.T)] = True
    test = np.argwhere(~seen)
    truth = X.numpy()
    return Completion(
        "lowrank",
        shape,
        idx[tr],
        vals[tr],
        idx[va],
        vals[va],
        test,
        truth[tuple(test.T)],
        truth=truth,
    )


def cfg(**kw) -> TensorConfig:
    return dataclasses.replace(TensorConfig(data="lowrank"), **{**FAST, **kw})


def test_the_refit_sees_every_observed_entry_and_no_test_entry(monkeypatch):
    prob = completion()
    calls = []
    real = continuation.solve_growing

    def spy(obs, values, *args, **kw):
        calls.append((obs.idx.clone(), values.clone()))
        return real(obs, values, *args, **kw)

    monkeypatch.setattr(continuation, "solve_growing", spy)
    res = solve.fit(cfg(), prob, "cpu", lambda m: None, dtype=torch.float64)
    idx, values = calls[-1]  # the refit is the last solve
    seen = {tuple(r) for r in idx.tolist()}
    observed = {tuple(r) for r in np.vstack([prob.train_idx, prob.val_idx]).tolist()}
    assert seen == observed and len(idx) == len(observed)
    assert not seen & {tuple(r) for r in prob.test_idx.tolist()}
    truth = dict(
        zip(
            map(tuple, np.vstack([prob.train_idx, prob.val_idx]).tolist()),
            np.concatenate([prob.train_val, prob.val_val]),
            strict=True,
        )
    )
    np.testing.assert_array_equal(values.numpy(), [truth[tuple(r)] for r in idx.tolist()])
    # the penalty keeps its weight per entry; the refit's training fit is reported
    n_tr, n_va = len(prob.train_val), len(prob.val_val)
    assert res["refit"]["lambda"] == res["lam"] * (n_tr + n_va) / n_tr
    assert res["refit"]["entries"] == n_tr + n_va and 0 < res["refit"]["train_rmse"] < 0.1


def test_without_refit_and_the_new_searches_the_first_release_path_is_reproduced_bit_for_bit():
    prob = completion(seed=3)
    old = cfg(
        refit=False,
        fine_search=False,
        early_stop=False,
        grow_rank=False,
        theta_search="paths",
        power_iters=1,
    )
    res = solve.fit(old, prob, "cpu", lambda m: None, dtype=torch.float64)

    def obs(idx):
        return Observed.from_indices(torch.from_numpy(idx), prob.shape)

    opts = NortOptions(
        penalty="lsp",
        theta=1.0,
        max_rank=(14, 15, 16),
        max_iter=40,
        tol=old.tol,
        momentum=old.momentum,
        power_iters=old.power_iters,
    )
    direct = continuation.fit_path(
        obs(prob.train_idx),
        torch.from_numpy(prob.train_val),
        opts,
        val=(obs(prob.val_idx), torch.from_numpy(prob.val_val)),
        steps=6,
        ratio=0.6,
        stage_iters=5,
        final_power_iters=old.final_power_iters,
        early_stop=False,
    )
    for a, b in zip(
        res["factors"].U + res["factors"].s, direct.factors.U + direct.factors.s, strict=True
    ):
        assert torch.equal(a, b)
    assert res["lam"] == direct.lam and "refit" not in res


def test_a_rank_that_reaches_its_cap_grows_it_or_warns_naming_the_option():
    prob = completion(shape=(20, 21, 22), rank=6, fraction=0.5)
    logs, warnings = [], []
    res = solve.fit(
        cfg(max_rank=2), prob, "cpu", logs.append, dtype=torch.float64, warn=warnings.append
    )
    assert any("reached the rank cap: raised mode 1 to 4" in m for m in logs)
    assert max(res["ranks"]) > 4 and not warnings
    logs.clear()
    fixed = solve.fit(
        cfg(max_rank=2, grow_rank=False),
        prob,
        "cpu",
        logs.append,
        dtype=torch.float64,
        warn=warnings.append,
    )
    assert fixed["ranks"][:2] == [2, 2] and not any("raised" in m for m in logs)
    assert len(warnings) == 1 and "ended at their cap (mode 1 at 2, mode 2 at 2" in warnings[0]
    assert "drop --fixed-rank-cap or raise --max-rank" in warnings[0]
    assert fixed["test"]["rmse"] > res["test"]["rmse"]


def test_the_search_near_the_minimum_keeps_whatever_is_best_on_validation():
    prob = completion(seed=5)
    logs = []
    res = solve.fit(cfg(refit=False), prob, "cpu", logs.append, dtype=torch.float64)
    near = [m for m in logs if m.startswith("near the best")]
    assert len(near) == 2
    path_best = min(s["val_rmse"] for s in res["stages"][:-3])
    assert res["val_rmse"] <= path_best


def test_the_path_stages_take_two_power_iterations_one_for_capped_l1_or_the_users():
    prob = completion(seed=4)

    def per_stage(**kw):
        res = solve.fit(cfg(**kw), prob, "cpu", lambda m: None, dtype=torch.float64)
        path = [s["power_iters"] for s in res["stages"][:-1]]  # the last stage: the final one
        return set(path), res["stages"][-1]["power_iters"]

    final = TensorConfig().final_power_iters
    assert per_stage() == ({2}, final)
    assert per_stage(penalty="capped-l1") == ({1}, final)
    assert per_stage(power_iters=3) == ({3}, final)


def test_the_dense_solver_counts_every_iteration_of_its_search_and_refit(monkeypatch):
    from mltk_plugins.tensor import dense

    prob = completion(shape=(10, 11, 12), seed=2)
    lengths = []
    real = dense.dense_proximal_average

    def spy(*args, **kw):
        X, h = real(*args, **kw)
        lengths.append(len(h.objective))
        return X, h

    monkeypatch.setattr(dense, "dense_proximal_average", spy)
    res = solve.fit(cfg(solver="dense"), prob, "cpu", lambda m: None, dtype=torch.float64)
    hist = res["history"]
    # the path's stages, the chosen lambda and the refit: all in the count and the history
    assert len(lengths) >= 3 and res["iterations"] == sum(lengths) == len(hist.objective)
    assert [name for _, name in hist.phases] == ["lambda path", "chosen lambda", "refit"]
    assert hist.phases[-1][0] == sum(lengths[:-1]) and hist.phases[1][0] == sum(lengths[:-2])
    assert all(b >= a for a, b in zip(hist.time, hist.time[1:], strict=False))
    assert res["ranks"] == hist.ranks[-1]


def test_the_dense_solver_records_the_test_rmse_for_the_convergence_plot():
    prob = completion(shape=(10, 11, 12), seed=2)
    for solver in ("dense", "convex"):
        res = solve.fit(cfg(solver=solver), prob, "cpu", lambda m: None, dtype=torch.float64)
        hist = res["history"]
        assert len(hist.rmse) == len(hist.rmse_time) == res["iterations"] > 0
        assert hist.rmse[-1] == pytest.approx(res["test"]["rmse"], rel=1e-9)
        assert hist.rmse_time == hist.time
        quiet = solve.fit(
            cfg(solver=solver), prob, "cpu", lambda m: None, dtype=torch.float64, monitor=False
        )
        assert quiet["history"].rmse == [] and quiet["test"]["rmse"] == res["test"]["rmse"]

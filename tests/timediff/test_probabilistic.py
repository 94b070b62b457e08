"""The x0 loss, the instance normalisation, the probabilistic scores, the baselines' coverage
and the calibration, against hand computations and closed forms."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from mltk_plugins.timediff import data, evaluation, predictive, training
from mltk_plugins.timediff.ar_init import apply_linear_map, fit_individual_maps
from mltk_plugins.timediff.config import preset
from mltk_plugins.timediff.forecast import write_forecast
from mltk_plugins.timediff.model import TimeDiff, instance_stats

L, H, C = 16, 8, 3


def small_cfg(**kw):
    base = {"lookback": L, "horizon": H, "hidden": 8, "step_dim": 8, "steps": 10}
    return dataclasses.replace(preset("tiny"), **{**base, **kw})


# ---------------------------------------------------------------------------------------------
# the model's mechanics


def test_meanstd_instance_normalisation_matches_numpy():
    x = torch.randn(4, L, C, generator=torch.Generator().manual_seed(0)) * 3 + 2
    mean, std = instance_stats(x, "meanstd")
    xn = x.numpy().astype(np.float64)
    np.testing.assert_allclose(mean.numpy()[:, 0], xn.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(std.numpy()[:, 0], np.sqrt(xn.var(axis=1) + 1e-5), rtol=1e-5)
    assert instance_stats(x, "mean")[1].eq(1).all()


@pytest.mark.parametrize("skip", ["none", "gaussian"])
def test_the_x0_loss_of_an_untrained_denoiser_matches_a_hand_computation(skip):
    # the output layer starts at zero, so x0_hat = base (+ the skip path): the loss can be
    # written out from the same draws (m for the mixup, then k, then the noise)
    torch.manual_seed(0)
    cfg = small_cfg(skip=skip, ar_init=False, train_mixup_map=True)
    model = TimeDiff(cfg, C)
    if skip == "gaussian":
        model.prior_var.copy_(torch.rand(H, C) + 0.5)
    x, y = torch.randn(5, L, C) + 1, torch.randn(5, H, C)
    loss = model.loss(x, y, generator=torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    mean = x.mean(1, keepdim=True)
    xn, yn = x - mean, y - mean
    past = model.mixup.past(xn)
    m = torch.rand(past.shape, generator=g)
    base = m * past + (1 - m) * yn  # (B, H, C)
    k = torch.randint(1, 11, (5,), generator=g)
    noise = torch.randn((5, C, H), generator=g).permute(0, 2, 1)  # drawn in the net's layout
    ab = model.schedule.abar[k - 1].float().view(-1, 1, 1)
    x_k = ab.sqrt() * yn + (1 - ab).sqrt() * noise
    pred = base
    if skip == "gaussian":
        s2 = model.prior_var[None]
        pred = base + ab.sqrt() * s2 / (ab * s2 + 1 - ab) * (x_k - ab.sqrt() * base)
    assert loss.item() == pytest.approx(torch.mean((pred - yn) ** 2).item(), rel=1e-5)


def test_an_untrained_gaussian_skip_model_samples_its_prior():
    # net = 0 and base = the AR forecast: x0_hat is the exact posterior mean of N(base, s^2),
    # so DDPM draws N(base, s^2) (variance nearly all kept over many steps)
    cfg = small_cfg(steps=200, beta_end=0.05, sampler="ddpm")
    model = TimeDiff(cfg, C)
    model.prior_var.fill_(0.25)
    x = torch.randn(1, L, C, generator=torch.Generator().manual_seed(2)).repeat(3000, 1, 1)
    s, point = model.sample(x, 1, generator=torch.Generator().manual_seed(0), with_point=True)
    base = model.ar(x - x.mean(1, keepdim=True)) + x.mean(1, keepdim=True)
    # the first x0 estimate (at k = K) is nearly E[x0 | c] = base, without the samples' spread
    assert (point - base).mean(dim=0).abs().max().item() < 3e-3
    assert (point - base).std().item() < 0.05
    assert (s[0] - base).mean().item() == pytest.approx(0.0, abs=0.01)
    assert (s[0] - base).var().item() == pytest.approx(0.25, rel=0.1)


def test_the_paper_estimate_collapses_where_the_skip_keeps_the_spread():
    x = torch.randn(2, L, C, generator=torch.Generator().manual_seed(1))
    spreads = {}
    for skip in ("none", "gaussian"):
        torch.manual_seed(0)
        model = TimeDiff(small_cfg(skip=skip), C)
        s = model.sample(x, 16, generator=torch.Generator().manual_seed(0))
        spreads[skip] = s.std(dim=0).mean().item()
    assert spreads["none"] < 1e-6 < 0.3 < spreads["gaussian"]


def test_individual_ar_maps_fit_each_channel_alone():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, L, 2))
    w_true = rng.standard_normal((2, L, H))
    y = np.einsum("nlc,clh->nhc", x, w_true) + np.array([1.0, -2.0])[None, None]
    w, b = fit_individual_maps(x, y, ridge=0.0)
    np.testing.assert_allclose(w, w_true, atol=1e-6)
    np.testing.assert_allclose(b, [[1.0] * H, [-2.0] * H], atol=1e-6)
    np.testing.assert_allclose(apply_linear_map(x, w, b), y, atol=1e-6)
    model = TimeDiff(small_cfg(ar_channels="individual"), 2)
    model.ar.load_fit(w, b)
    out = model.ar(torch.from_numpy(x[:3]).float())
    np.testing.assert_allclose(out.numpy(), y[:3], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# scores


def test_gaussian_crps_matches_a_numerical_integral():
    mu, sigma, y = 0.3, 1.7, -0.9
    z = np.linspace(-30, 30, 600_001)
    cdf = 0.5 * (1 + np.vectorize(math.erf)((z - mu) / (sigma * math.sqrt(2))))
    integral = float(np.sum((cdf - (z >= y)) ** 2) * (z[1] - z[0]))
    assert predictive.crps_gaussian(mu, sigma, y) == pytest.approx(integral, rel=1e-4)


def test_ensemble_crps_on_hand_made_cases():
    # {0, 1} at 0: E|X - y| = 1/2, E|X - X'| = 1/2, so 1/2 - 1/4
    assert predictive.crps_ensemble(np.array([[0.0], [1.0]]), np.array([0.0]))[0] == 0.25
    # one sample: the absolute error
    assert predictive.crps_ensemble(np.array([[2.0]]), np.array([0.5]))[0] == 1.5
    # the grid form agrees with the sample form on the same atoms
    rng = np.random.default_rng(0)
    atoms = np.sort(rng.standard_normal((50, 4, 2)), axis=0)
    e = rng.standard_normal((7, 4, 2))
    np.testing.assert_allclose(
        predictive.crps_atoms(atoms, e),
        np.stack([predictive.crps_ensemble(atoms, e[i]) for i in range(7)]),
        rtol=1e-12,
    )


def test_coverage_width_and_quantile_loss_on_a_hand_made_case():
    # Gaussian N(0, 1) everywhere; truth 0, 1 and 3: the 90% interval is +-1.645
    y = np.array([0.0, 1.0, 3.0]).reshape(3, 1, 1)
    pred = predictive.Gaussian(np.zeros((3, 1, 1)), np.ones((1, 1)))
    row = predictive.score(pred, y)
    assert row["coverage90"] == pytest.approx(2 / 3)
    assert row["width90"] == pytest.approx(2 * 1.6448536, rel=1e-6)
    assert row["coverage50"] == pytest.approx(1 / 3)  # +-0.674 holds only the 0
    losses = []
    for q in predictive.QL_LEVELS:
        qv = predictive._Phi_inv(q)
        losses.append(2 * sum(max(q * (t - qv), (q - 1) * (t - qv)) for t in (0, 1, 3)) / 4)
    assert row["wql"] == pytest.approx(float(np.mean(losses)))
    # a point forecast: CRPS = MAE, intervals of width 0
    point = predictive.score(evaluation.Point(np.zeros((3, 1, 1))), y)
    assert point["crps"] == pytest.approx(4 / 3) and point["width90"] == 0


def test_empirical_quantiles_interpolate_the_residual_grid():
    resid = np.random.default_rng(0).standard_normal((5000, 2, 1))
    pred = predictive.Empirical(np.full((1, 2, 1), 10.0), predictive.residual_grid(resid))
    lo, mid, hi = pred.quantiles([0.05, 0.5, 0.95])[:, 0, 0, 0]
    assert lo == pytest.approx(10 + np.quantile(resid[:, 0, 0], 0.05), abs=0.01)
    assert mid == pytest.approx(10 + np.median(resid[:, 0, 0]), abs=0.01)
    assert hi == pytest.approx(10 + np.quantile(resid[:, 0, 0], 0.95), abs=0.01)


# ---------------------------------------------------------------------------------------------
# the baselines and the calibration on a synthetic Gaussian series


def white_noise(rows: int = 12000, seed: int = 0) -> data.Prepared:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, 1)) * 2.0 + 5.0
    return data.prepare(data.Series(values, ["x"], name="noise"))


def test_gaussian_and_conformal_baselines_cover_as_nominal_on_gaussian_data():
    prepared = white_noise()
    cfg = small_cfg(lookback=8, horizon=4, ar_channels="shared")
    x, y = prepared.windows("test", 8, 4)
    rows = {r["model"]: r for r in evaluation.probabilistic_baselines(prepared, cfg, x, y)}
    n = len(x)  # ~2400 windows; stride 1 but iid data: the steps are nearly independent
    for name in ("AR-init + Gaussian", "AR-init + conformal", "seasonal naive + residuals"):
        for level in (50, 80, 90):
            p = level / 100
            err = 4 * math.sqrt(p * (1 - p) / n)
            assert rows[name][f"coverage{level}"] == pytest.approx(p, abs=err), (name, level)


def test_the_calibration_never_looks_at_the_test_split():
    prepared = white_noise(3000)
    cfg = small_cfg(lookback=8, horizon=4, calibration_windows=64, samples=4)
    res = training.train_model(dataclasses.replace(cfg, epochs=1), prepared, seed=0)
    grid = training.calibration_grid(res.model, prepared, cfg, seed=0)
    changed = white_noise(3000)
    test = slice(changed.splits.val_end, None)
    changed.z[test] = changed.z[test] * 10 + 3  # another test split, same train and validation
    again = training.calibration_grid(res.model, changed, cfg, seed=0)
    np.testing.assert_array_equal(grid, again)
    other = white_noise(3000)
    other.z[other.splits.train_end : other.splits.val_end] *= 3  # other validation rows
    assert not np.allclose(training.calibration_grid(res.model, other, cfg, seed=0), grid)


def test_a_degenerate_interval_is_warned_about(tmp_path):
    prepared = white_noise(600)
    cfg = small_cfg(lookback=8, horizon=4)
    same = np.zeros((4, 1, 4, 1))  # four identical samples
    warned = []
    res = write_forecast(
        tmp_path, prepared, cfg, predictive.Samples(same), None, end=600, warn=warned.append
    )
    assert len(warned) == 1 and "90% interval of x is on average 0.000" in warned[0]
    assert res["width90"] == {"x": 0.0} and res["truth_steps"] == 0
    spread = np.random.default_rng(0).standard_normal((64, 1, 4, 1))
    warned.clear()
    write_forecast(
        tmp_path, prepared, cfg, predictive.Samples(spread), None, end=600, warn=warned.append
    )
    assert warned == []

"""Future mixup, the AR initialisation and the denoiser: shapes and the paper's mechanics."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from mltk_plugins.timediff.ar_init import ARInit, apply_linear_map, fit_linear_map
from mltk_plugins.timediff.config import preset
from mltk_plugins.timediff.future_mixup import FutureMixup
from mltk_plugins.timediff.model import TimeDiff

L, H, C = 16, 8, 3


def small_cfg(**kw):
    return dataclasses.replace(
        preset("tiny"), lookback=L, horizon=H, hidden=8, step_dim=8, steps=10, **kw
    )


def test_mixup_blends_elementwise_with_the_same_m_as_the_formula():
    torch.manual_seed(0)
    mix = FutureMixup(L, H)
    x, future = torch.randn(4, L, C), torch.randn(4, H, C)
    z = mix(x, future, generator=torch.Generator().manual_seed(3))
    m = torch.rand((4, H, C), generator=torch.Generator().manual_seed(3))
    past = mix.past(x)
    torch.testing.assert_close(z, m * past + (1 - m) * future)
    assert not torch.allclose(z, past)


def test_mixup_uses_no_ground_truth_at_inference():
    torch.manual_seed(0)
    model = TimeDiff(small_cfg(), C)
    x = torch.randn(2, L, C)
    cond_a, _ = model.condition(x)
    cond_b, _ = model.condition(x)
    torch.testing.assert_close(cond_a, cond_b)  # no random m, no future
    # in training the condition moves with the future, at inference it cannot see one
    y1, y2 = torch.randn(2, H, C), torch.randn(2, H, C)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    c1, _ = model.condition(x, y1, generator=g())
    c2, _ = model.condition(x, y2, generator=g())
    assert not torch.allclose(c1, c2)


def test_without_future_mixup_the_training_condition_ignores_the_future():
    model = TimeDiff(small_cfg(future_mixup=False), C)
    x = torch.randn(2, L, C)
    c1, _ = model.condition(x, torch.randn(2, H, C))
    c2, _ = model.condition(x, torch.randn(2, H, C))
    torch.testing.assert_close(c1, c2)


def test_closed_form_fit_recovers_a_known_linear_map():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((L, H)), rng.standard_normal(H)
    x = rng.standard_normal((200, L, C))
    y = apply_linear_map(x, w, b)
    w_hat, b_hat = fit_linear_map(x, y, ridge=0.0)
    np.testing.assert_allclose(w_hat, w, atol=1e-6)
    np.testing.assert_allclose(b_hat, b, atol=1e-6)
    # and agrees with numpy's least squares on the same design
    a = np.hstack([x.transpose(0, 2, 1).reshape(-1, L), np.ones((200 * C, 1))])
    sol = np.linalg.lstsq(a, y.transpose(0, 2, 1).reshape(-1, H), rcond=None)[0]
    np.testing.assert_allclose(w_hat, sol[:-1], atol=1e-6)


def test_the_ar_init_penalty_is_per_row_so_repeating_the_data_changes_nothing():
    from types import SimpleNamespace

    from mltk_plugins.timediff.training import fit_ar

    g = np.random.default_rng(3)
    x = g.normal(size=(40, 12, 2)).astype(np.float32)
    y = g.normal(size=(40, 4, 2)).astype(np.float32)
    cfg = dataclasses.replace(preset("tiny"), lookback=12, horizon=4)

    def fit(times):
        xs, ys = np.concatenate([x] * times), np.concatenate([y] * times)
        prepared = SimpleNamespace(windows=lambda split, lookback, horizon: (xs, ys))
        return fit_ar(prepared, cfg)

    (w1, b1), (w3, b3) = fit(1), fit(3)
    np.testing.assert_allclose(w1, w3, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b1, b3, rtol=1e-6, atol=1e-9)
    assert np.abs(w1).max() > 1e-3  # the penalty did not flatten the fit


def test_ar_init_is_not_updated_by_the_diffusion_loss():
    torch.manual_seed(0)
    model = TimeDiff(small_cfg(), C)
    rng = np.random.default_rng(1)
    model.ar.load_fit(rng.standard_normal((L, H)), rng.standard_normal(H))
    before = model.ar.weight.clone()
    params = list(model.parameters())
    assert all(p is not model.ar.weight for p in params)
    opt = torch.optim.Adam(params, lr=0.1)
    for _ in range(3):
        loss = model.loss(torch.randn(8, L, C), torch.randn(8, H, C))
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.testing.assert_close(model.ar.weight, before)
    assert model.ar.weight.grad is None


def test_ar_module_matches_the_numpy_map():
    rng = np.random.default_rng(2)
    w, b = rng.standard_normal((L, H)), rng.standard_normal(H)
    ar = ARInit(L, H)
    ar.load_fit(w, b)
    x = rng.standard_normal((5, L, C))
    np.testing.assert_allclose(
        ar(torch.tensor(x, dtype=torch.float32)).numpy(), apply_linear_map(x, w, b), atol=1e-4
    )


def test_shapes_channel_independent_and_mixing():
    for ci in (True, False):
        model = TimeDiff(small_cfg(channel_independent=ci), C)
        x = torch.randn(4, L, C)
        assert model.loss(x, torch.randn(4, H, C)).shape == ()
        s = model.sample(x, 3, generator=torch.Generator().manual_seed(0))
        assert s.shape == (3, 4, H, C)


def test_untrained_denoiser_returns_its_residual_base():
    # the output layer starts at zero, so the paper's x0 estimate is z_mix = F(x) before
    # training; F held at the AR-init fit is the AR-init forecast itself
    x = torch.randn(2, L, C)
    mean = x.mean(1, keepdim=True)
    for trainable in (False, True):
        torch.manual_seed(0)
        model = TimeDiff(small_cfg(skip="none", train_mixup_map=trainable), C)
        model.ar.load_fit(np.full((L, H), 0.05), np.linspace(-1, 1, H))
        s = model.sample(x, 2, generator=torch.Generator().manual_seed(0))
        past = model.mixup.past if trainable else model.ar
        torch.testing.assert_close(s[0], past(x - mean) + mean, atol=1e-5, rtol=1e-5)


def test_no_ar_init_drops_the_ar_half_of_the_condition():
    model = TimeDiff(small_cfg(ar_init=False), C)
    assert model.ar is None
    cond, _ = model.condition(torch.randn(2, L, C))
    assert cond.shape == (2, C, H)


def test_a_frozen_mixup_map_stays_at_the_ar_fit_while_the_denoiser_learns():
    from mltk_plugins.timediff.training import build_model

    rng = np.random.default_rng(3)
    fit = (rng.standard_normal((L, H)), rng.standard_normal(H))
    for trainable in (False, True):
        torch.manual_seed(0)
        model = build_model(small_cfg(train_mixup_map=trainable), C, fit)
        f_before = model.mixup.linear.weight.clone()
        d_before = model.denoiser.out.weight.clone()
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
        for _ in range(3):
            loss = model.loss(torch.randn(8, L, C), torch.randn(8, H, C))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert not torch.allclose(model.denoiser.out.weight, d_before)
        assert torch.allclose(model.mixup.linear.weight, f_before) != trainable
    torch.testing.assert_close(model.ar.weight, torch.as_tensor(fit[0]).float())

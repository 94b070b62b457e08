"""The objective: linear schedule, eps/v targets, learned-range variance and the VLB term."""

from __future__ import annotations

import math

import numpy as np
import torch

from mltk.t2i.objective import Diffusion


def test_linear_schedule_matches_the_paper():
    d = Diffusion()
    assert d.T == 1000
    assert math.isclose(d.betas[0], 1e-4) and math.isclose(d.betas[-1], 0.02)
    assert np.allclose(np.diff(d.betas), (0.02 - 1e-4) / 999)
    assert np.isclose(d.alphas_cumprod[-1], np.prod(1 - d.betas))


def test_true_targets_recover_x0_for_eps_and_v():
    x0, noise = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    for pred in ("eps", "v"):
        d = Diffusion(prediction=pred)
        xt = d.q_sample(x0, t, noise)
        torch.testing.assert_close(
            d.predict_x0(xt, t, d.target(x0, t, noise)), x0, atol=2e-3, rtol=1e-3
        )


def test_vlb_is_zero_when_the_model_matches_the_posterior():
    d = Diffusion(prediction="eps")
    x0, noise = torch.rand(2, 3, 4, 4) * 2 - 1, torch.randn(2, 3, 4, 4)
    t = torch.tensor([5, 20])  # small t: beta_t and the posterior variance differ most
    xt = d.q_sample(x0, t, noise)
    # v_sigma = -1 selects the posterior variance (the lower end of the learned range)
    vlb = d.vlb_bits(noise, -torch.ones_like(x0), x0, xt, t)
    assert torch.allclose(vlb, torch.zeros(2), atol=1e-4)
    wrong = d.vlb_bits(noise, torch.ones_like(x0), x0, xt, t)
    assert (wrong > vlb).all()


def test_vlb_matches_a_closed_form_gaussian_kl():
    d = Diffusion(prediction="eps")
    x0, noise = torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    t = torch.tensor([300])
    xt = d.q_sample(x0, t, noise)
    pred = torch.full_like(x0, 0.5)
    vs = torch.zeros_like(x0)
    got = d.vlb_bits(pred, vs, x0, xt, t).item()
    mq, lq = d.posterior(x0, xt, t)
    mp, _ = d.posterior(d.predict_x0(xt, t, pred), xt, t)
    lp = 0.5 * (math.log(d.betas[300]) + d.post_logvar_clipped[300])
    vq, vp = math.exp(lq.item()), math.exp(lp)
    kl = math.log(math.sqrt(vp / vq)) + (vq + (mq.item() - mp.item()) ** 2) / (2 * vp) - 0.5
    assert math.isclose(got, kl / math.log(2), rel_tol=1e-4)


def test_losses_add_the_vlb_only_with_learned_sigma():
    d = Diffusion(prediction="v")
    x0, noise = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    t = torch.tensor([1, 900])
    xt = d.q_sample(x0, t, noise)
    out6 = torch.randn(2, 6, 4, 4, requires_grad=True)
    terms = d.losses(out6, x0, xt, t, noise)
    torch.testing.assert_close(terms["loss"], terms["mse"] + terms["vlb"])
    terms["vlb"].sum().backward()  # the VLB trains the variance channels only
    assert out6.grad[:, :3].abs().max() == 0 and out6.grad[:, 3:].abs().max() > 0
    assert "vlb" not in d.losses(torch.randn(2, 3, 4, 4), x0, xt, t, noise)

"""Each sampler step against a hand computation of the closed-form posterior, with a denoiser
whose output depends on x_k (so a wrong coefficient on x0 or on x_k changes the result)."""

from __future__ import annotations

import math

import pytest
import torch
from mltk_plugins.timediff.diffusion import Schedule, sample_ddim, sample_ddpm

SHAPE = (3, 2, 5)


def denoiser(x, k):
    """Depends on x_k and on k: 0.6 x_k + 0.1 k."""
    return 0.6 * x + 0.1 * k.view(-1, 1, 1).to(x.dtype)


def draws(seed: int, n: int) -> list[torch.Tensor]:
    """The noise the samplers draw, in their order, from one seeded CPU generator."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(SHAPE, generator=g) for _ in range(n)]


def test_ddpm_follows_the_posterior_of_ho_et_al_step_by_step():
    s = Schedule(4, 0.05, 0.3)
    out = sample_ddpm(s, denoiser, SHAPE, generator=torch.Generator().manual_seed(11))
    z = draws(11, 4)  # x_K, then one draw per step k = 4, 3, 2
    betas = [0.05 + (0.3 - 0.05) * i / 3 for i in range(4)]
    abar = [math.prod(1 - b for b in betas[:k]) for k in range(5)]  # abar[0] = 1
    x = z[0]
    for i, k in enumerate((4, 3, 2)):
        x0 = denoiser(x, torch.full((3,), k))
        b, ab, ab_prev = betas[k - 1], abar[k], abar[k - 1]
        mean = (math.sqrt(ab_prev) * b / (1 - ab)) * x0 + (
            math.sqrt(1 - b) * (1 - ab_prev) / (1 - ab)
        ) * x
        x = mean + math.sqrt((1 - ab_prev) / (1 - ab) * b) * z[i + 1]
    expected = denoiser(x, torch.full((3,), 1))  # the last step returns the x0 estimate
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_follows_song_et_al_eq_12_step_by_step(eta):
    s = Schedule(10, 0.02, 0.2)
    out = sample_ddim(
        s, denoiser, SHAPE, n_steps=4, eta=eta, generator=torch.Generator().manual_seed(5)
    )
    seq = [10, 7, 4, 1]
    betas = [0.02 + (0.2 - 0.02) * i / 9 for i in range(10)]
    abar = [math.prod(1 - b for b in betas[:k]) for k in range(11)]
    z = draws(5, 4)
    x, used = z[0], 1
    for k, k_next in zip(seq[:-1], seq[1:], strict=True):
        x0 = denoiser(x, torch.full((3,), k))
        a, a_next = abar[k], abar[k_next]
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        sigma = eta * math.sqrt((1 - a_next) / (1 - a)) * math.sqrt(1 - a / a_next)
        x = math.sqrt(a_next) * x0 + math.sqrt(1 - a_next - sigma**2) * eps
        if eta > 0:
            x = x + sigma * z[used]
            used += 1
    torch.testing.assert_close(out, denoiser(x, torch.full((3,), 1)))


def test_ddim_with_eta_zero_is_deterministic_given_the_start():
    s = Schedule(10, 0.02, 0.2)
    runs = [
        sample_ddim(
            s, denoiser, SHAPE, n_steps=4, eta=0.0, generator=torch.Generator().manual_seed(1)
        )
        for _ in range(2)
    ]
    torch.testing.assert_close(runs[0], runs[1])


def test_the_samplers_draw_from_a_gaussian_target_with_its_spread():
    # x0 ~ N(m, s^2): the exact denoiser is the posterior mean; many DDPM steps recover both
    # the mean and (nearly all of) the variance, where a denoiser that ignores x_k would not
    s = Schedule(200, 1e-4, 0.05)
    m, var = 1.5, 0.25

    def exact(x, k):
        ab = s.abar_at(k).to(x.dtype).view(-1, 1, 1)
        gain = ab.sqrt() * var / (ab * var + 1 - ab)
        return m + gain * (x - ab.sqrt() * m)

    out = sample_ddpm(s, exact, (4000, 1, 1), generator=torch.Generator().manual_seed(0))
    assert out.mean().item() == pytest.approx(m, abs=0.03)
    assert out.var().item() == pytest.approx(var, rel=0.1)

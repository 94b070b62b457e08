"""The noise schedules and the DDPM/DDIM samplers."""

from __future__ import annotations

import math

import pytest
import torch
from mltk_plugins.timediff.diffusion import Schedule, ddim_steps, sample_ddim, sample_ddpm


def test_linear_schedule_matches_the_paper_defaults():
    s = Schedule(100, 1e-4, 0.1)
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.1)
    expected = math.prod(1 - (1e-4 + (0.1 - 1e-4) * i / 99) for i in range(100))
    assert s.abar[-1].item() == pytest.approx(expected, rel=1e-9)
    assert torch.all(s.abar[1:] < s.abar[:-1])


def test_cosine_schedule_decreases_from_one_to_near_zero():
    s = Schedule(50, kind="cosine")
    assert 0.99 < s.abar[0].item() < 1.0
    assert s.abar[-1].item() < 1e-3
    assert torch.all(s.betas <= 0.999)


def test_q_sample_has_the_forward_marginal():
    s = Schedule(100, 1e-4, 0.1)
    x0 = torch.full((20000, 1), 2.0)
    k = torch.full((20000,), 60)
    xk = s.q_sample(x0, k, torch.randn(20000, 1, generator=torch.Generator().manual_seed(0)))
    a = s.abar[59].item()
    assert xk.mean().item() == pytest.approx(2.0 * math.sqrt(a), abs=0.03)
    assert xk.var().item() == pytest.approx(1 - a, rel=0.05)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_are_deterministic_under_a_seed(sampler):
    s = Schedule(20)
    w = torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
    denoise = lambda x, k: torch.tanh(x @ w) * (k[:, None, None] / 20)  # noqa: E731
    run = (
        (lambda g: sample_ddpm(s, denoise, (3, 2, 6), generator=g))
        if sampler == "ddpm"
        else (lambda g: sample_ddim(s, denoise, (3, 2, 6), n_steps=4, eta=0.5, generator=g))
    )
    a = run(torch.Generator().manual_seed(7))
    b = run(torch.Generator().manual_seed(7))
    c = run(torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_ddim_step_sequence_starts_at_k_and_ends_at_one():
    assert ddim_steps(100, 10)[0] == 100 and ddim_steps(100, 10)[-1] == 1
    assert len(ddim_steps(100, 10)) == 10
    assert ddim_steps(5, 50) == [5, 4, 3, 2, 1]

"""Each proximal operator equals a brute-force minimisation of 1/2 (x - z)^2 + penalty(x)."""

from __future__ import annotations

import itertools

import pytest
import torch
from mltk_plugins.tensor import penalties

torch.set_num_threads(1)

GRID = torch.linspace(0, 12, 240001, dtype=torch.float64)  # step 5e-5
Z = torch.tensor([0.0, 0.05, 0.3, 0.9, 1.0, 1.4, 2.2, 3.1, 4.5, 6.0, 9.0], dtype=torch.float64)
CASES = [
    ("nuclear", 1.0, 1.0),
    ("capped-l1", 1.0, 2.0),
    ("capped-l1", 0.5, 0.3),
    ("lsp", 1.0, 0.5),
    ("lsp", 0.3, 2.0),
    ("scad", 0.8, 3.7),
    ("mcp", 0.8, 3.0),
    ("mcp", 1.5, 1.5),
]


def penalty_on_grid(x: torch.Tensor, lam: float, theta: float, penalty: str) -> torch.Tensor:
    """The penalties written out independently of the plugin (textbook definitions)."""
    if penalty == "nuclear":
        return lam * x
    if penalty == "capped-l1":
        return lam * torch.minimum(x, torch.tensor(theta, dtype=x.dtype))
    if penalty == "lsp":
        return lam * torch.log(1 + x / theta)
    if penalty == "scad":
        a = theta
        return torch.where(
            x <= lam,
            lam * x,
            torch.where(
                x <= a * lam,
                (2 * a * lam * x - x**2 - lam**2) / (2 * (a - 1)),
                (a + 1) * lam**2 / 2 + 0 * x,
            ),
        )
    if penalty == "mcp":
        return torch.where(
            x <= theta * lam, lam * x - x**2 / (2 * theta), theta * lam**2 / 2 + 0 * x
        )
    raise AssertionError(penalty)


def brute(z: float, lam: float, theta: float, penalty: str) -> torch.Tensor:
    return 0.5 * (GRID - z) ** 2 + penalty_on_grid(GRID, lam, theta, penalty)


@pytest.mark.parametrize("penalty,lam,theta", CASES)
def test_prox_matches_brute_force_minimisation(penalty, lam, theta):
    got = penalties.prox(Z, lam, theta, penalty)
    for z, x in zip(Z.tolist(), got.tolist(), strict=True):
        f = brute(z, lam, theta, penalty)
        best = float(f.min())
        xt = torch.tensor([x], dtype=torch.float64)
        at_prox = 0.5 * (x - z) ** 2 + float(penalty_on_grid(xt, lam, theta, penalty))
        assert float(penalties.value(xt, lam, theta, penalty)) == pytest.approx(
            float(penalty_on_grid(xt, lam, theta, penalty)), abs=1e-12
        )
        # the closed form is at least as good as the best grid point (up to grid resolution)
        assert at_prox <= best + 1e-6, (penalty, z, x, best)
        # and it is the grid minimiser (unique minimisers away from ties)
        x_grid = float(GRID[int(f.argmin())])
        assert abs(x - x_grid) < 2e-3 or abs(at_prox - best) < 1e-6


def test_tnn_keeps_the_largest_and_shrinks_the_rest():
    z = torch.tensor([5.0, 3.0, 1.5, 0.4], dtype=torch.float64)
    got = penalties.prox(z, 1.0, 2, "tnn")
    # brute force over a 2-D grid for the two smallest (the two largest are unpenalised)
    g = torch.linspace(0, 3, 3001, dtype=torch.float64)
    a, b = torch.meshgrid(g, g, indexing="ij")
    f = 0.5 * (a - 1.5) ** 2 + 0.5 * (b - 0.4) ** 2 + 1.0 * (a + b)
    i = int(f.argmin())
    assert torch.allclose(got[:2], z[:2])
    assert abs(float(got[2]) - float(a.reshape(-1)[i])) < 2e-3
    assert abs(float(got[3]) - float(b.reshape(-1)[i])) < 2e-3


def test_values_have_the_textbook_shapes():
    s = torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64)
    assert float(penalties.value(s, 2.0, 1.0, "capped-l1")) == pytest.approx(2.0 * (0.5 + 1 + 1))
    assert float(penalties.value(s, 2.0, 1.0, "lsp")) == pytest.approx(
        2.0 * float(torch.log1p(s).sum())
    )
    assert float(penalties.value(s, 1.0, 1, "tnn")) == pytest.approx(2.5)
    # SCAD and MCP are flat beyond theta*lam
    for pen, th in (("scad", 3.7), ("mcp", 3.0)):
        far = penalties.value(torch.tensor([50.0]), 1.0, th, pen)
        farther = penalties.value(torch.tensor([80.0]), 1.0, th, pen)
        assert float(far) == pytest.approx(float(farther))


@pytest.mark.parametrize("penalty", ["capped-l1", "lsp", "scad", "mcp", "tnn"])
def test_bad_theta_is_rejected(penalty):
    bad = {"capped-l1": 0.0, "lsp": -1.0, "scad": 2.0, "mcp": 1.0, "tnn": 1.5}[penalty]
    with pytest.raises(ValueError, match="theta"):
        penalties.check_theta(penalty, bad)


def test_prox_is_monotone_so_order_is_kept():
    z = torch.sort(torch.rand(50, dtype=torch.float64) * 5, descending=True).values
    for pen, lam, th in itertools.islice(CASES, None):
        out = penalties.prox(z, lam, th, pen)
        assert (out[:-1] >= out[1:] - 1e-12).all(), pen

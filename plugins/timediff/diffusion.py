"""The diffusion process on the forecast window (TimeDiff Sec. 3.1) and its samplers.

Forward: x_k = sqrt(abar_k) x_0 + sqrt(1 - abar_k) eps, k = 1..K, with linear betas
(1e-4 to 0.1 in the paper) or the cosine schedule of Nichol & Dhariwal (2021).
The denoiser predicts x_0 directly; the loss is ||x_0 - x_theta(x_k, k | c)||^2.

Samplers, both written for an x_0-predicting network:
- `ddpm`: ancestral sampling through all K steps with the posterior q(x_{k-1} | x_k, x_0)
  (Ho et al., 2020, eqs. 6-7);
- `ddim`: DDIM (Song et al., 2021, eq. 12) on a sub-sequence of steps, eta in [0, 1].
Noise is drawn from a CPU `torch.Generator`, so a seed gives the same samples on every device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


class Schedule:
    """betas[k-1] for k = 1..K and the derived products, as float64 CPU tensors."""

    def __init__(
        self,
        steps: int = 100,
        beta_start: float = 1e-4,
        beta_end: float = 0.1,
        kind: str = "linear",
    ) -> None:
        if steps < 1:
            raise ValueError("the number of diffusion steps must be positive")
        if kind == "linear":
            betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        elif kind == "cosine":
            s = 0.008
            t = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
            f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
            abar = f / f[0]
            betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
        else:
            raise ValueError(f"unknown schedule {kind!r}; use linear or cosine")
        self.steps = steps
        self.betas = betas
        self.alphas = 1.0 - betas
        self.abar = torch.cumprod(self.alphas, dim=0)  # abar[k-1] = prod_{i<=k} alpha_i

    def abar_at(self, k: torch.Tensor) -> torch.Tensor:
        """abar_k for integer k in 0..K (abar_0 = 1)."""
        full = torch.cat([torch.ones(1, dtype=torch.float64), self.abar])
        return full[k.cpu()]

    def q_sample(self, x0: torch.Tensor, k: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_k given x_0; k (B,) in 1..K, x0 (B, ...)."""
        a = self.abar_at(k).to(x0.device, x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_k, k) -> x0 estimate


def _noise(shape, generator, device, dtype) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)


@torch.no_grad()
def sample_ddpm(
    schedule: Schedule,
    denoise: Denoise,
    shape,
    *,
    generator=None,
    device="cpu",
    dtype=torch.float32,
) -> torch.Tensor:
    """Ancestral sampling x_K ~ N(0, I) -> x_0 through all K steps."""
    x = _noise(shape, generator, device, dtype)
    for k in range(schedule.steps, 0, -1):
        kk = torch.full((shape[0],), k, dtype=torch.long, device=device)
        x0 = denoise(x, kk)
        if k == 1:
            return x0
        beta = float(schedule.betas[k - 1])
        ab, ab_prev = float(schedule.abar[k - 1]), float(schedule.abar[k - 2])
        c0 = beta * math.sqrt(ab_prev) / (1 - ab)
        ck = (1 - ab_prev) * math.sqrt(1 - beta) / (1 - ab)
        var = beta * (1 - ab_prev) / (1 - ab)
        x = c0 * x0 + ck * x + math.sqrt(var) * _noise(shape, generator, device, dtype)
    return x


def ddim_steps(total: int, n: int) -> list[int]:
    """A decreasing sub-sequence of 1..K of length <= n, always starting at K."""
    n = max(1, min(n, total))
    steps = sorted({int(round(v)) for v in torch.linspace(total, 1, n).tolist()}, reverse=True)
    return steps


@torch.no_grad()
def sample_ddim(
    schedule: Schedule,
    denoise: Denoise,
    shape,
    *,
    n_steps: int = 10,
    eta: float = 0.0,
    generator=None,
    device="cpu",
    dtype=torch.float32,
) -> torch.Tensor:
    """DDIM from x_K ~ N(0, I) on `n_steps` steps; eta = 0 is deterministic given x_K."""
    x = _noise(shape, generator, device, dtype)
    seq = ddim_steps(schedule.steps, n_steps)
    for i, k in enumerate(seq):
        kk = torch.full((shape[0],), k, dtype=torch.long, device=device)
        x0 = denoise(x, kk)
        if i == len(seq) - 1:
            return x0
        ab = float(schedule.abar[k - 1])
        ab_next = float(schedule.abar[seq[i + 1] - 1])
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        sigma = eta * math.sqrt((1 - ab_next) / (1 - ab) * (1 - ab / ab_next))
        x = math.sqrt(ab_next) * x0 + math.sqrt(max(1 - ab_next - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * _noise(shape, generator, device, dtype)
    return x

"""The learner's kernels K(x, x') and their truncated stencils on pixel grids.

RBF ``exp(-||x - x'||^2 / h^2)`` (the notebooks' kernel, h = 0.5 there), Laplace
``exp(-||x - x'|| / h)``, linear ``x.x' + 1`` and polynomial ``(x.x' / h^2 + c)^p``. RBF and Laplace
have ``K(x, x) = 1``; the linear and polynomial ones do not, which is where the exact greedy rule
(``argmax ||dL/df K(x, .)||_H``) differs from picking the largest residual.

On a grid of unit-spaced pixels a translation-invariant kernel is one stencil: its values at
integer offsets, dropped below ``TRUNCATE`` (1e-12; for the RBF that is a disc of radius
``sqrt(27.6) h``, inside the 6h box the issue names). Every pool value the learner keeps then
changes only inside the stencil around the taught pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

KERNELS = ("rbf", "laplace", "linear", "polynomial")
TRUNCATE = 1e-12


@dataclass(frozen=True)
class Kernel:
    name: str = "rbf"
    h: float = 0.5  # bandwidth, in the units of x (pixels are unit steps)
    degree: int = 2  # polynomial only
    coef0: float = 1.0  # polynomial only

    @property
    def stationary(self) -> bool:
        """K(x, x') depends on x - x' only (and K(x, x) = 1): a grid stencil exists."""
        return self.name in ("rbf", "laplace")

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """K between the rows of ``a`` (m, d) and of ``b`` (n, d): (m, n)."""
        if self.name == "rbf":
            return torch.exp(-_sqdist(a, b) / self.h**2)
        if self.name == "laplace":
            return torch.exp(-_sqdist(a, b).clamp_min(0).sqrt() / self.h)
        dot = a @ b.T
        if self.name == "linear":
            return dot + 1.0
        return (dot / self.h**2 + self.coef0) ** self.degree

    def diagonal(self, x: torch.Tensor) -> torch.Tensor:
        """K(x, x) for each row of ``x`` (n,)."""
        if self.stationary:
            return torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        dot = (x * x).sum(1)
        if self.name == "linear":
            return dot + 1.0
        return (dot / self.h**2 + self.coef0) ** self.degree

    def profile(self, r2: np.ndarray) -> np.ndarray:
        """A stationary kernel as a function of the squared distance (numpy)."""
        if self.name == "rbf":
            return np.exp(-r2 / self.h**2)
        return np.exp(-np.sqrt(r2) / self.h)

    def radius(self) -> int:
        """The largest integer offset at which a stationary kernel is still >= TRUNCATE."""
        cut = -math.log(TRUNCATE)  # K = exp(-u) with u = r^2/h^2 (rbf) or r/h (laplace)
        r = self.h * (math.sqrt(cut) if self.name == "rbf" else cut)
        return int(math.floor(r))

    def stencil(self) -> np.ndarray:
        """The kernel on the integer offsets (-R..R)^2, zero where it is below TRUNCATE."""
        r = self.radius()
        d = np.arange(-r, r + 1, dtype=np.float64)
        k = self.profile(d[:, None] ** 2 + d[None, :] ** 2)
        k[k < TRUNCATE] = 0.0
        return k


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # coordinate by coordinate for low dimensions (curves, pixels: exact, no cancellation), the
    # expansion |a|^2 + |b|^2 - 2ab (one matrix product) for feature vectors
    if a.shape[1] <= 3:
        out = (a[:, :1] - b[:, 0]) ** 2
        for j in range(1, a.shape[1]):
            out += (a[:, j : j + 1] - b[:, j]) ** 2
        return out
    return ((a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2 * a @ b.T).clamp_min(0)

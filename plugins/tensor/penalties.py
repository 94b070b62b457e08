"""Penalties on singular values and their exact proximal operators.

Each penalty is applied to the singular values s >= 0 of one unfolding, scaled by a weight
``lam``: the regulariser contributes ``value(s, lam, theta) = sum_i lam * phi_theta(s_i)``
(SCAD and MCP are written in their usual form p_{lam,theta}(s), whose slope at zero is lam).
``prox(z, lam, theta)`` returns argmin_x 1/2 (x - z)^2 + value(x, lam, theta) element-wise on
singular values z >= 0 (sorted in decreasing order), the closed forms of Gong et al. (GIST, 2013)
used by the paper (Table 1 of arXiv:2205.03059):

- nuclear   phi(s) = s                                    (convex; soft threshold)
- capped-l1 phi(s) = min(s, theta)                        (theta > 0)
- lsp       phi(s) = log(1 + s / theta)                   (log-sum penalty, theta > 0)
- tnn       sum over all but the theta largest s          (truncated nuclear norm, theta >= 0 integer)
- scad      p(s) = lam s, (2 theta lam s - s^2 - lam^2) / (2 (theta - 1)), (theta + 1) lam^2 / 2
            on [0, lam], (lam, theta lam], (theta lam, inf)   (theta > 2)
- mcp       p(s) = lam s - s^2 / (2 theta) on [0, theta lam], theta lam^2 / 2 beyond (theta > 1)

All functions take and return torch tensors, on any device and dtype.
"""

from __future__ import annotations

import math

import torch

PENALTIES = ("nuclear", "capped-l1", "lsp", "tnn", "scad", "mcp")


def check_theta(penalty: str, theta: float) -> None:
    """Raise ValueError when theta is outside the range the penalty needs."""
    if penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}; choose one of {', '.join(PENALTIES)}")
    limits = {"capped-l1": 0.0, "lsp": 0.0, "scad": 2.0, "mcp": 1.0}
    if penalty in limits and not theta > limits[penalty]:
        raise ValueError(f"--theta for {penalty} must be > {limits[penalty]:g}, got {theta:g}")
    if penalty == "tnn" and (theta < 0 or theta != int(theta)):
        raise ValueError(
            f"--theta for tnn is a whole number of kept singular values, got {theta:g}"
        )


def value(s: torch.Tensor, lam: float, theta: float, penalty: str) -> torch.Tensor:
    """The penalty summed over the singular values ``s`` (a 0-d tensor)."""
    s = s.clamp_min(0)
    if penalty == "nuclear":
        return lam * s.sum()
    if penalty == "capped-l1":
        return lam * s.clamp_max(theta).sum()
    if penalty == "lsp":
        return lam * torch.log1p(s / theta).sum()
    if penalty == "tnn":
        s_sorted = torch.sort(s, descending=True).values
        return lam * s_sorted[int(theta) :].sum()
    if penalty == "scad":
        a = theta
        mid = (2 * a * lam * s - s * s - lam * lam) / (2 * (a - 1))
        out = torch.where(s <= lam, lam * s, torch.where(s <= a * lam, mid, 0.5 * (a + 1) * lam**2))
        return out.sum()
    if penalty == "mcp":
        g = theta
        out = torch.where(s <= g * lam, lam * s - s * s / (2 * g), 0.5 * g * lam * lam + 0 * s)
        return out.sum()
    raise ValueError(f"unknown penalty {penalty!r}")


def _objective(x: torch.Tensor, z: torch.Tensor, lam: float, theta: float, penalty: str):
    """Element-wise 1/2 (x - z)^2 + lam phi(x) for the separable penalties."""
    if penalty == "capped-l1":
        reg = lam * x.clamp_max(theta)
    elif penalty == "lsp":
        reg = lam * torch.log1p(x / theta)
    else:  # pragma: no cover - only used for the two penalties above
        raise ValueError(penalty)
    return 0.5 * (x - z) ** 2 + reg


def prox(z: torch.Tensor, lam: float, theta: float, penalty: str) -> torch.Tensor:
    """argmin_x>=0 1/2 ||x - z||^2 + value(x, lam, theta) for singular values z >= 0."""
    z = z.clamp_min(0)
    zero = torch.zeros_like(z)
    if lam <= 0:
        return z.clone()
    if penalty == "nuclear":
        return (z - lam).clamp_min(0)
    if penalty == "capped-l1":
        # two pieces: x <= theta (soft threshold, clipped) and x >= theta (identity, clipped)
        x1 = (z - lam).clamp(min=0, max=theta)
        x2 = z.clamp_min(theta)
        f1 = _objective(x1, z, lam, theta, penalty)
        f2 = _objective(x2, z, lam, theta, penalty)
        return torch.where(f2 < f1, x2, x1)
    if penalty == "lsp":
        # stationary points solve x^2 + (theta - z) x + lam - z theta = 0; compare with x = 0
        disc = (z + theta) ** 2 - 4 * lam
        root = 0.5 * ((z - theta) + torch.sqrt(disc.clamp_min(0)))
        root = torch.where(disc >= 0, root.clamp_min(0), zero)
        f_root = _objective(root, z, lam, theta, penalty)
        f_zero = 0.5 * z * z
        return torch.where(f_root < f_zero, root, zero)
    if penalty == "tnn":
        k = int(theta)
        order = torch.argsort(z, descending=True)
        shrunk = (z - lam).clamp_min(0)
        keep = torch.zeros_like(z, dtype=torch.bool)
        keep[order[:k]] = True
        return torch.where(keep, z, shrunk)
    if penalty == "scad":
        a = theta
        soft = (z - lam).clamp_min(0)
        middle = ((a - 1) * z - a * lam) / (a - 2)
        return torch.where(z <= 2 * lam, soft, torch.where(z <= a * lam, middle, z))
    if penalty == "mcp":
        g = theta
        soft = (z - lam).clamp_min(0) * (g / (g - 1))
        return torch.where(z <= g * lam, soft, z)
    raise ValueError(f"unknown penalty {penalty!r}")


def default_theta(penalty: str, lam: float) -> float:
    """A theta that scales with lam, as in the paper's synthetic protocol.

    capped-l1: theta = 2 lam (the reference protocol), lsp: theta = sqrt(lam), scad: 3.7 (Fan
    and Li), mcp: 3, tnn: 1 kept singular value, nuclear: unused.
    """
    return {
        "capped-l1": 2.0 * lam,
        "lsp": math.sqrt(max(lam, 1e-12)),
        "scad": 3.7,
        "mcp": 3.0,
        "tnn": 1.0,
        "nuclear": 1.0,
    }[penalty]

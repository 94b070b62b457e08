"""Autoregressive initialisation (TimeDiff Sec. 3.2.2): a linear map from lookback to horizon.

z_ar = W x + b, applied to every channel with the same (L, H) weights (`shared`, the paper's), or
with one map per channel (`individual`, as LTSF-Linear reports it), is fitted once on the
training windows by ridge-regularised least squares (closed form, normal equations accumulated
in chunks) and then held fixed: its tensors are buffers, so the diffusion loss never updates it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def fit_linear_map(
    x: np.ndarray, y: np.ndarray, *, ridge: float = 1e3, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Least squares W (L, H), b (H,) minimising sum ||x_c W + b - y_c||^2 + ridge ||W||^2.

    x: (N, L, C) lookbacks, y: (N, H, C) targets; every channel of every window is one row.
    """
    n, lookback, _ = x.shape
    horizon = y.shape[1]
    gram = np.zeros((lookback + 1, lookback + 1))
    cross = np.zeros((lookback + 1, horizon))
    for i in range(0, n, chunk):
        a = x[i : i + chunk].transpose(0, 2, 1).reshape(-1, lookback).astype(np.float64)
        a = np.hstack([a, np.ones((a.shape[0], 1))])  # (n*C, L+1)
        b = y[i : i + chunk].transpose(0, 2, 1).reshape(-1, horizon).astype(np.float64)
        gram += a.T @ a
        cross += a.T @ b
    penalty = ridge * np.eye(lookback + 1)
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    sol = np.linalg.solve(gram + penalty + 1e-9 * np.eye(lookback + 1), cross)
    return sol[:-1], sol[-1]


def fit_individual_maps(
    x: np.ndarray, y: np.ndarray, *, ridge: float = 1e3
) -> tuple[np.ndarray, np.ndarray]:
    """One least-squares map per channel: W (C, L, H), b (C, H); `ridge` as in fit_linear_map."""
    fits = [fit_linear_map(x[:, :, [c]], y[:, :, [c]], ridge=ridge) for c in range(x.shape[2])]
    return np.stack([w for w, _ in fits]), np.stack([b for _, b in fits])


def apply_linear_map(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(N, L, C) -> (N, H, C) with the shared map (L, H) or per-channel maps (C, L, H)."""
    if weight.ndim == 3:
        return np.einsum("nlc,clh->nhc", x, weight) + bias.T[None]
    return np.einsum("nlc,lh->nhc", x, weight) + bias[None, :, None]


class ARInit(nn.Module):
    """The fixed linear forecaster z_ar; acts on (B, L, C) and returns (B, H, C)."""

    def __init__(self, lookback: int, horizon: int, channels: int | None = None) -> None:
        super().__init__()
        lead = () if channels is None else (channels,)  # None: one map shared by the channels
        self.register_buffer("weight", torch.zeros(*lead, lookback, horizon))
        self.register_buffer("bias", torch.zeros(*lead, horizon))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def load_fit(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        self.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.dim() == 3:  # (B, L, C) x (C, L, H) -> (B, H, C)
            return torch.einsum("blc,clh->bhc", x, self.weight) + self.bias.T[None]
        # (B, L, C) -> (B, C, L) @ (L, H) -> (B, C, H) -> (B, H, C)
        return (x.transpose(1, 2) @ self.weight + self.bias).transpose(1, 2)

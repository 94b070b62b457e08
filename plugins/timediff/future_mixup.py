"""Future mixup (TimeDiff Sec. 3.2.1): a condition that mixes past-based and true futures.

F maps the lookback to the horizon (a linear map shared by the channels, optionally plus a small
convolutional net over the lookback). In training the condition is

    z_mix = m * F(x_history) + (1 - m) * x0_future,   m ~ U[0, 1) elementwise,

so the denoiser learns to use a partially revealed future; at inference the future is unknown
and z_mix = F(x_history). F is trained through the diffusion loss.
"""

from __future__ import annotations

import torch
from torch import nn


class FutureMixup(nn.Module):
    def __init__(
        self, lookback: int, horizon: int, *, conv: bool = False, hidden: int = 16
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(lookback, horizon)
        self.conv = None
        if conv:
            self.conv = nn.Sequential(
                nn.Conv1d(1, hidden, 5, padding=2),
                nn.SiLU(),
                nn.Conv1d(hidden, 1, 5, padding=2),
            )
            self.conv_out = nn.Linear(lookback, horizon)
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def init_from(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Start F at a fitted linear map (L, H), (H,): a good F from the first step."""
        with torch.no_grad():
            self.linear.weight.copy_(weight.T)
            self.linear.bias.copy_(bias)

    def past(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): (B, L, C) -> (B, H, C)."""
        xc = x.transpose(1, 2)  # (B, C, L)
        out = self.linear(xc)
        if self.conv is not None:
            b, c, lookback = xc.shape
            feat = self.conv(xc.reshape(b * c, 1, lookback)).reshape(b, c, lookback)
            out = out + self.conv_out(feat)
        return out.transpose(1, 2)

    def forward(
        self, x: torch.Tensor, future: torch.Tensor | None = None, generator=None, past=None
    ) -> torch.Tensor:
        """z_mix; `future` (B, H, C) is given in training only, and only then is it mixed in.

        `past` replaces F(x) where F is held at a fit that is computed elsewhere (AR-init)."""
        past = self.past(x) if past is None else past
        if future is None:
            return past
        if generator is None:
            m = torch.rand_like(past)
        else:
            m = torch.rand(past.shape, generator=generator).to(past.device)
        return m * past + (1.0 - m) * future

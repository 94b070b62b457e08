"""The denoising network x_theta(x_k, k | c) of TimeDiff (Sec. 3.3, Fig. 2).

    step embedding   sinusoid(k) -> FC -> SiLU -> FC -> SiLU              (B, E)
    projection       conv(x_k)                                          (B, D, H)
    encoder          conv([projection, step embedding broadcast])       (B, D, H)
    decoder          conv([encoder output, c]) -> conv 1x1              (B, C, H)

and the output is a residual on a base forecast (z_mix, as in the paper, or z_ar), so the
network predicts x0 = base + correction. Series are (B, C, H): channels first for Conv1d.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(k: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) integer steps -> (B, dim), the transformer/DDPM position encoding."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=k.device) / max(half - 1, 1))
    args = k.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class StepEmbedding(nn.Module):
    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out), nn.SiLU(), nn.Linear(out, out), nn.SiLU())

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(k, self.dim))  # (B, out)


def conv_block(c_in: int, c_out: int, kernel: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.SiLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Denoiser(nn.Module):
    """x_theta: (x_k (B, C, H), k (B,), cond (B, 2C, H), base (B, C, H)) -> x0 estimate (B, C, H)."""

    def __init__(
        self,
        channels: int,
        *,
        cond_channels: int,
        hidden: int = 32,
        step_dim: int = 64,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        kernel: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.step = StepEmbedding(step_dim, hidden)
        self.projection = nn.Sequential(
            conv_block(channels, hidden, kernel, 0.0), conv_block(hidden, hidden, kernel, 0.0)
        )
        enc = [conv_block(2 * hidden, hidden, kernel, dropout)]
        enc += [conv_block(hidden, hidden, kernel, dropout) for _ in range(encoder_layers - 1)]
        self.encoder = nn.Sequential(*enc)
        dec = [conv_block(hidden + cond_channels, hidden, kernel, dropout)]
        dec += [conv_block(hidden, hidden, kernel, dropout) for _ in range(decoder_layers - 1)]
        self.decoder = nn.Sequential(*dec)
        self.out = nn.Conv1d(hidden, channels, 1)
        # start as "x0 = base": the correction begins at zero
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, x_k: torch.Tensor, k: torch.Tensor, cond: torch.Tensor, base: torch.Tensor | None
    ) -> torch.Tensor:
        h = self.projection(x_k)  # (B, D, H)
        e = self.step(k)[:, :, None].expand(-1, -1, h.shape[-1])  # (B, D, H)
        h = self.encoder(torch.cat([h, e], dim=1))  # (B, D, H)
        h = self.decoder(torch.cat([h, cond], dim=1))  # (B, D, H)
        out = self.out(h)  # (B, C, H)
        return out if base is None else base + out

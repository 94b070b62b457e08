"""TimeDiff assembled: instance normalisation, the condition c = [z_mix, z_ar], the denoiser and
the diffusion process (Shen & Kwok, ICML 2023, Sec. 3 and Fig. 1).

Windows come in as (B, L, C) lookbacks and (B, H, C) futures on the dataset scale. Each window
is normalised by the mean (and std) of its own lookback (RevIN-style, Kim et al. 2022); the
model works in that space and forecasts are mapped back. With `channel_independent` every
channel is a separate univariate series of one shared model, else the convolutions mix channels.
"""

from __future__ import annotations

import torch
from torch import nn

from .ar_init import ARInit
from .config import TimeDiffConfig
from .denoiser import Denoiser
from .diffusion import Schedule, sample_ddim, sample_ddpm
from .future_mixup import FutureMixup


def instance_stats(x: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window, per-channel (mean, std) of a lookback (B, L, C), each (B, 1, C)."""
    if mode == "none":
        zero = torch.zeros_like(x[:, :1])
        return zero, torch.ones_like(zero)
    mean = x.mean(dim=1, keepdim=True)
    if mode == "mean":
        return mean, torch.ones_like(mean)
    if mode == "meanstd":
        std = (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt()
        return mean, std
    raise ValueError(f"unknown instance_norm {mode!r}; use none, mean or meanstd")


class TimeDiff(nn.Module):
    def __init__(self, cfg: TimeDiffConfig, channels: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.channels = channels
        lookback, horizon = cfg.lookback, cfg.horizon
        self.ar = ARInit(lookback, horizon) if cfg.ar_init else None
        self.mixup = FutureMixup(lookback, horizon, conv=cfg.mixup_conv)
        width = 1 if cfg.channel_independent else channels
        self.denoiser = Denoiser(
            width,
            cond_channels=width * (2 if cfg.ar_init else 1),
            hidden=cfg.hidden,
            step_dim=cfg.step_dim,
            encoder_layers=cfg.encoder_layers,
            decoder_layers=cfg.decoder_layers,
            kernel=cfg.kernel,
            dropout=cfg.dropout,
        )
        self.schedule = Schedule(cfg.steps, cfg.beta_start, cfg.beta_end, cfg.schedule)

    # -- layout helpers: (B, H, C) <-> the denoiser's (B', C', H)
    def _to_net(self, t: torch.Tensor) -> torch.Tensor:
        if self.cfg.channel_independent:
            b, h, c = t.shape
            return t.permute(0, 2, 1).reshape(b * c, 1, h)
        return t.permute(0, 2, 1)

    def _from_net(self, t: torch.Tensor, batch: int) -> torch.Tensor:
        if self.cfg.channel_independent:
            return t.reshape(batch, self.channels, -1).permute(0, 2, 1)
        return t.permute(0, 2, 1)

    def condition(self, xn: torch.Tensor, yn: torch.Tensor | None = None, generator=None):
        """(cond (B', 2C', H), base (B', C', H) or None) from a normalised lookback.

        `yn`, the normalised future, is given in training only; it enters z_mix through future
        mixup when that is on, and nowhere else.
        """
        mix_future = yn if (yn is not None and self.cfg.future_mixup) else None
        z_mix = self.mixup(xn, mix_future, generator=generator)  # (B, H, C)
        parts = [self._to_net(z_mix)]
        z_ar = None
        if self.ar is not None:
            z_ar = self.ar(xn)  # fixed buffers: no gradient reaches the AR model
            parts.append(self._to_net(z_ar))
        cond = torch.cat(parts, dim=1)
        residual = self.cfg.residual
        if residual == "ar" and z_ar is not None:
            base = parts[1]
        elif residual in ("mix", "ar"):
            base = parts[0]
        else:
            base = None
        return cond, base

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss (so DistributedDataParallel can wrap the model)."""
        return self.loss(x, y)

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """The x0-prediction loss ||x0 - x_theta(x_k, k | c)||^2, k ~ U{1..K} (Sec. 3.1)."""
        mean, std = instance_stats(x, self.cfg.instance_norm)
        xn, yn = (x - mean) / std, (y - mean) / std
        cond, base = self.condition(xn, yn, generator=generator)
        x0 = self._to_net(yn)
        n = x0.shape[0]
        if generator is None:
            k = torch.randint(1, self.schedule.steps + 1, (n,), device=x0.device)
            noise = torch.randn_like(x0)
        else:
            k = torch.randint(1, self.schedule.steps + 1, (n,), generator=generator).to(x0.device)
            noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_k = self.schedule.q_sample(x0, k, noise)
        pred = self.denoiser(x_k, k, cond, base)
        return torch.mean((pred - x0) ** 2)

    @torch.no_grad()
    def sample(
        self,
        x: torch.Tensor,
        n_samples: int,
        *,
        sampler: str | None = None,
        sample_steps: int | None = None,
        eta: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Forecast samples (S, B, H, C) on the scale of `x` (B, L, C)."""
        cfg = self.cfg
        sampler = sampler or cfg.sampler
        mean, std = instance_stats(x, cfg.instance_norm)
        xn = (x - mean) / std
        cond, base = self.condition(xn)
        b = x.shape[0]
        # all samples of a batch at once: repeat the condition S times
        cond_s = cond.repeat(n_samples, 1, 1)
        base_s = None if base is None else base.repeat(n_samples, 1, 1)
        shape = (cond_s.shape[0], self.denoiser.out.out_channels, cfg.horizon)

        def denoise(x_k, k):
            return self.denoiser(x_k, k, cond_s, base_s)

        if sampler == "ddpm":
            out = sample_ddpm(self.schedule, denoise, shape, generator=generator, device=x.device)
        elif sampler == "ddim":
            out = sample_ddim(
                self.schedule,
                denoise,
                shape,
                n_steps=sample_steps or cfg.sample_steps,
                eta=cfg.ddim_eta if eta is None else eta,
                generator=generator,
                device=x.device,
            )
        else:
            raise ValueError(f"unknown sampler {sampler!r}; use ddpm or ddim")
        out = out.reshape(n_samples, *cond.shape[:1], *out.shape[1:])  # (S, B', C', H)
        ys = torch.stack([self._from_net(o, b) for o in out])  # (S, B, H, C)
        return ys * std + mean

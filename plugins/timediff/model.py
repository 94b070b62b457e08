"""TimeDiff assembled: instance normalisation, the condition c = [z_mix, z_ar], the denoiser and
the diffusion process (Shen & Kwok, ICML 2023, Sec. 3 and Fig. 1).

Windows come in as (B, L, C) lookbacks and (B, H, C) futures on the dataset scale. Each window
is normalised by the mean (and std) of its own lookback (RevIN-style, Kim et al. 2022); the
model works in that space and forecasts are mapped back. With `channel_independent` every
channel is a separate univariate series of one shared model, else the convolutions mix channels.

The x0 estimate (`skip="gaussian"`, ours) is the paper's residual plus a skip path from x_k:

    x0_hat = c_k * x_k + (1 - c_k * sqrt(abar_k)) * base + net(x_k, k, c),
    c_k = sqrt(abar_k) s^2 / (abar_k s^2 + 1 - abar_k),

the posterior mean E[x0 | x_k] when x0 ~ N(base, s^2), with s^2 the per-step, per-channel
variance of the AR-init forecast's errors on the training windows (the c_skip of Karras et al.,
2022, for this prior). At k = K it is the paper's "base + net"; as k -> 0 it passes x_k through,
so the sample spread survives a denoiser that has not (yet) learnt to read x_k. With
`skip="none"` (the paper's, and runs trained before the option) x0_hat = base + net, and the
samples of a briefly trained model are nearly identical.
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
        per_channel = channels if cfg.ar_channels == "individual" else None
        self.ar = ARInit(lookback, horizon, per_channel) if cfg.ar_init else None
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
        if cfg.skip == "gaussian":  # s^2 of the prior N(base, s^2), (H, C); set by training
            self.register_buffer("prior_var", torch.ones(horizon, channels))

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
        z_ar = None if self.ar is None else self.ar(xn)  # buffers: no gradient reaches it
        # a frozen F is the AR-init fit, per channel too where the fit is per channel
        past = z_ar if (z_ar is not None and not self.cfg.train_mixup_map) else None
        z_mix = self.mixup(xn, mix_future, generator=generator, past=past)  # (B, H, C)
        parts = [self._to_net(z_mix)]
        if z_ar is not None:
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

    def x0_estimate(self, x_k, k, cond, base, prior_var) -> torch.Tensor:
        """x0_hat(x_k, k | c) in the denoiser's layout; `prior_var` (B', C', H) or None."""
        out = self.denoiser(x_k, k, cond, base)
        if prior_var is None or base is None:
            return out
        ab = self.schedule.abar_at(k).to(x_k.device, x_k.dtype).view(-1, 1, 1)
        gain = ab.sqrt() * prior_var / (ab * prior_var + 1 - ab)
        return out + gain * (x_k - ab.sqrt() * base)

    def _prior_var(self, batch: int) -> torch.Tensor | None:
        if self.cfg.skip != "gaussian":
            return None
        return self._to_net(self.prior_var[None].expand(batch, -1, -1))

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
        pred = self.x0_estimate(x_k, k, cond, base, self._prior_var(x.shape[0]))
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
        with_point: bool = False,
    ):
        """Forecast samples (S, B, H, C) on the scale of `x` (B, L, C).

        With `with_point`, (samples, point): the point forecast (B, H, C) is the mean over the
        samples of the first x0 estimate, at k = K, where x_K carries no information about x0:
        an estimate of E[x0 | c] without the spread of the samples (cfg.point = "denoised")."""
        cfg = self.cfg
        sampler = sampler or cfg.sampler
        mean, std = instance_stats(x, cfg.instance_norm)
        xn = (x - mean) / std
        cond, base = self.condition(xn)
        b = x.shape[0]
        # all samples of a batch at once: repeat the condition S times
        cond_s = cond.repeat(n_samples, 1, 1)
        base_s = None if base is None else base.repeat(n_samples, 1, 1)
        prior = self._prior_var(b)
        prior_s = None if prior is None else prior.repeat(n_samples, 1, 1)
        shape = (cond_s.shape[0], self.denoiser.out.out_channels, cfg.horizon)

        first = []

        def denoise(x_k, k):
            x0 = self.x0_estimate(x_k, k, cond_s, base_s, prior_s)
            if not first:
                first.append(x0)
            return x0

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
        ys = torch.stack([self._from_net(o, b) for o in out]) * std + mean  # (S, B, H, C)
        if not with_point:
            return ys
        if cfg.point == "mean":
            return ys, ys.mean(dim=0)
        x0 = first[0].reshape(n_samples, *cond.shape[:1], *first[0].shape[1:]).mean(dim=0)
        return ys, self._from_net(x0, b) * std + mean

"""The denoising objective of a text-to-image model (DDPM; DiT's learned variance).

Forward process from a diffusers scheduler config (PixArt: linear betas 1e-4 to 0.02 over
T = 1000 steps; Stable Diffusion: ``scaled_linear``), x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t)
eps, computed by diffusers' ``DDPMScheduler.add_noise``; the v target by its ``get_velocity``.

The model outputs C or 2C channels: a prediction (epsilon, v = sqrt(abar) eps - sqrt(1-abar) x_0,
or x_0 itself) and, with 2C, v_sigma in [-1, 1] that interpolates the reverse variance in log
space between beta_t and the posterior variance beta~_t (Nichol & Dhariwal 2021):

    log Sigma = frac log beta_t + (1 - frac) log beta~_t,   frac = (v_sigma + 1) / 2.

Loss = || target - prediction ||^2 + lambda * L_vlb, where L_vlb is KL(q(x_{t-1}|x_t,x_0) ||
p(x_{t-1}|x_t)) in bits per dimension (the decoder NLL at t = 0) with the mean's gradient stopped,
so the VLB term trains only the variance (DiT's ``learn_sigma`` loss with lambda = 1). diffusers
trains no learned variance, so this part is ours. An optional per-pixel weight map reweights the
squared error (see ``Diffusion.losses``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

NUM_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02


def _normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _discretized_gaussian_log_likelihood(x, means, log_scales):
    """Log-likelihood of data in [-1, 1] quantised to 256 bins under N(means, exp(log_scales)^2)."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(
        x < -0.999,
        log_cdf_plus,
        torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))),
    )


PREDICTIONS = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}


class Diffusion:
    """Schedule tensors (float64 numpy, gathered to the batch's device as float32) and the
    forward process of a ``DDPMScheduler`` with the same config."""

    def __init__(
        self,
        num_timesteps: int = NUM_TIMESTEPS,
        prediction: str = "eps",
        *,
        beta_start: float = BETA_START,
        beta_end: float = BETA_END,
        beta_schedule: str = "linear",
    ):
        from diffusers import DDPMScheduler

        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be eps, v or x0, got {prediction!r}")
        if beta_schedule == "linear":
            betas = np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)
        elif beta_schedule == "scaled_linear":
            betas = (
                np.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=np.float64) ** 2
            )
        else:
            raise ValueError(
                f"beta_schedule must be linear or scaled_linear, got {beta_schedule!r}"
            )
        self.T = num_timesteps
        self.prediction = prediction
        self.scheduler = DDPMScheduler(
            num_train_timesteps=num_timesteps,
            beta_start=beta_start,
            beta_end=beta_end,
            beta_schedule=beta_schedule,
            prediction_type=PREDICTIONS[prediction],
            variance_type="learned_range",
            clip_sample=False,
        )
        alphas_cumprod = np.cumprod(1.0 - betas)
        prev = np.append(1.0, alphas_cumprod[:-1])
        self.betas = betas
        self.alphas_cumprod = alphas_cumprod
        self.sqrt_ac = np.sqrt(alphas_cumprod)
        self.sqrt_1mac = np.sqrt(1.0 - alphas_cumprod)
        post_var = betas * (1.0 - prev) / (1.0 - alphas_cumprod)
        self.post_logvar_clipped = np.log(np.append(post_var[1], post_var[1:]))
        self.post_coef1 = betas * np.sqrt(prev) / (1.0 - alphas_cumprod)
        self.post_coef2 = (1.0 - prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod)
        self.post_var = post_var

    @classmethod
    def from_config(cls, config: dict) -> Diffusion:
        """From a diffusers scheduler config (what a pipeline folder's scheduler/ holds)."""
        kind = {v: k for k, v in PREDICTIONS.items()}.get(config.get("prediction_type", "epsilon"))
        if kind is None:
            raise ValueError(f"prediction_type {config.get('prediction_type')!r} is not supported")
        return cls(
            int(config.get("num_train_timesteps", NUM_TIMESTEPS)),
            kind,
            beta_start=float(config.get("beta_start", BETA_START)),
            beta_end=float(config.get("beta_end", BETA_END)),
            beta_schedule=config.get("beta_schedule", "linear"),
        )

    def _g(self, arr: np.ndarray, t: torch.Tensor, ndim: int) -> torch.Tensor:
        out = torch.as_tensor(arr, device=t.device)[t].float()
        return out.view(-1, *([1] * (ndim - 1)))

    def q_sample(self, x0, t, noise):
        return self.scheduler.add_noise(x0, noise, t)

    def target(self, x0, t, noise):
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x0
        return self.scheduler.get_velocity(x0, noise, t)

    def predict_x0(self, xt, t, pred):
        a, s = self._g(self.sqrt_ac, t, xt.ndim), self._g(self.sqrt_1mac, t, xt.ndim)
        if self.prediction == "eps":
            return (xt - s * pred) / a
        if self.prediction == "x0":
            return pred
        return a * xt - s * pred

    def posterior(self, x0, xt, t):
        mean = self._g(self.post_coef1, t, xt.ndim) * x0 + self._g(self.post_coef2, t, xt.ndim) * xt
        return mean, self._g(self.post_logvar_clipped, t, xt.ndim)

    def model_logvar(self, v_sigma, t):
        """Learned-range variance: interpolate log beta~_t and log beta_t with (v + 1) / 2."""
        min_log = self._g(self.post_logvar_clipped, t, v_sigma.ndim)
        max_log = self._g(np.log(self.betas), t, v_sigma.ndim)
        frac = (v_sigma + 1) / 2
        return frac * max_log + (1 - frac) * min_log

    def vlb_bits(self, pred, v_sigma, x0, xt, t):
        """Per-sample L_vlb in bits/dim with the mean's gradient stopped (only the variance learns)."""
        x0_hat = self.predict_x0(xt, t, pred.detach())
        mean_p, _ = self.posterior(x0_hat, xt, t)
        logvar_p = self.model_logvar(v_sigma, t)
        mean_q, logvar_q = self.posterior(x0, xt, t)
        kl = _normal_kl(mean_q, logvar_q, mean_p, logvar_p).flatten(1).mean(1) / math.log(2.0)
        nll = -_discretized_gaussian_log_likelihood(x0, mean_p, 0.5 * logvar_p).flatten(1).mean(
            1
        ) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def losses(
        self, model_out, x0, xt, t, noise, vlb_weight: float = 1.0, weight=None
    ) -> dict[str, torch.Tensor]:
        """Per-sample losses from the model's (B, C or 2C, H, W) output: mse, vlb and their sum.

        ``weight`` (B, 1 or C, H, W), a per-pixel loss weight per sample: the mse is then
        mean(weight * (target - prediction)^2) over pixels and channels, so a map of ones is the
        plain loss and a map normalised to mean 1 keeps its scale. The VLB (the variance's
        term) is not weighted.
        """
        c = x0.shape[1]
        pred = model_out[:, :c]
        err = (self.target(x0, t, noise) - pred.float()) ** 2
        if weight is not None:
            err = err * weight.to(err)
        mse = err.flatten(1).mean(1)
        out = {"mse": mse, "loss": mse}
        if model_out.shape[1] == 2 * c:
            vlb = self.vlb_bits(pred.float(), model_out[:, c:].float(), x0, xt, t)
            out["vlb"] = vlb
            out["loss"] = mse + vlb_weight * vlb
        return out

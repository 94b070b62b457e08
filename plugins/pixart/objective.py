"""The training objective (Sec. 2.3, as in DiT / improved DDPM).

Forward process: linear betas from 1e-4 to 0.02 over T = 1000 steps,
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

The model outputs 2C channels: a prediction (epsilon as in the paper, or v = sqrt(abar) eps -
sqrt(1-abar) x_0, our change for toy scale) and v_sigma in [-1, 1] that interpolates the reverse
variance in log space between beta_t and the posterior variance beta~_t (Nichol & Dhariwal 2021):

    log Sigma = frac log beta_t + (1 - frac) log beta~_t,   frac = (v_sigma + 1) / 2.

Loss = || target - prediction ||^2 + lambda * L_vlb, where L_vlb is KL(q(x_{t-1}|x_t,x_0) ||
p(x_{t-1}|x_t)) in bits per dimension (the decoder NLL at t = 0) with the mean's gradient stopped,
so the VLB term trains only the variance (DiT's ``learn_sigma`` loss with lambda = 1).
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


class Diffusion:
    """Schedule tensors (float64 numpy, gathered to the batch's device as float32)."""

    def __init__(self, num_timesteps: int = NUM_TIMESTEPS, prediction: str = "eps"):
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be eps or v, got {prediction!r}")
        self.T = num_timesteps
        self.prediction = prediction
        betas = np.linspace(BETA_START, BETA_END, num_timesteps, dtype=np.float64)
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

    def _g(self, arr: np.ndarray, t: torch.Tensor, ndim: int) -> torch.Tensor:
        out = torch.as_tensor(arr, device=t.device)[t].float()
        return out.view(-1, *([1] * (ndim - 1)))

    def q_sample(self, x0, t, noise):
        return self._g(self.sqrt_ac, t, x0.ndim) * x0 + self._g(self.sqrt_1mac, t, x0.ndim) * noise

    def target(self, x0, t, noise):
        if self.prediction == "eps":
            return noise
        return self._g(self.sqrt_ac, t, x0.ndim) * noise - self._g(self.sqrt_1mac, t, x0.ndim) * x0

    def predict_x0(self, xt, t, pred):
        a, s = self._g(self.sqrt_ac, t, xt.ndim), self._g(self.sqrt_1mac, t, xt.ndim)
        if self.prediction == "eps":
            return (xt - s * pred) / a
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
        self, model_out, x0, xt, t, noise, vlb_weight: float = 1.0
    ) -> dict[str, torch.Tensor]:
        """Per-sample losses from the model's (B, C or 2C, H, W) output: mse, vlb and their sum."""
        c = x0.shape[1]
        pred = model_out[:, :c]
        mse = ((self.target(x0, t, noise) - pred.float()) ** 2).flatten(1).mean(1)
        out = {"mse": mse, "loss": mse}
        if model_out.shape[1] == 2 * c:
            vlb = self.vlb_bits(pred.float(), model_out[:, c:].float(), x0, xt, t)
            out["vlb"] = vlb
            out["loss"] = mse + vlb_weight * vlb
        return out


def scheduler_config(prediction: str) -> dict:
    """The diffusers scheduler config of PixArt-alpha's checkpoints (DPM-Solver++ 2M, linear betas)."""
    return {
        "num_train_timesteps": NUM_TIMESTEPS,
        "beta_start": BETA_START,
        "beta_end": BETA_END,
        "beta_schedule": "linear",
        "prediction_type": "epsilon" if prediction == "eps" else "v_prediction",
        "algorithm_type": "dpmsolver++",
        "solver_order": 2,
        "solver_type": "midpoint",
        "lower_order_final": True,
        "timestep_spacing": "linspace",
        "steps_offset": 0,
        "thresholding": False,
    }

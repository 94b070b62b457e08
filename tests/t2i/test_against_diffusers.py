"""The objective, the EMA and sampling checked against diffusers itself, not against mltk's own
formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mltk.t2i.objective import Diffusion


def _scheduler(prediction="epsilon", schedule="linear"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4 if schedule == "linear" else 0.00085,
                         beta_end=0.02 if schedule == "linear" else 0.012, beta_schedule=schedule,
                         prediction_type=prediction, variance_type="fixed_small", clip_sample=False)  # fmt: skip


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear"])
def test_forward_process_and_v_target_match_ddpm_scheduler(schedule):
    ref = _scheduler("v_prediction", schedule)
    d = Diffusion.from_config(dict(ref.config))
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    torch.testing.assert_close(d.q_sample(x0, t, noise), ref.add_noise(x0, noise, t))
    torch.testing.assert_close(d.target(x0, t, noise), ref.get_velocity(x0, noise, t))
    # and the schedule mltk keeps in float64 is diffusers' (which holds float32)
    np.testing.assert_allclose(d.alphas_cumprod, ref.alphas_cumprod.numpy(), rtol=1e-5)


@pytest.mark.parametrize("t", [1, 20, 400, 999])
def test_posterior_mean_matches_a_ddpm_step(t):
    """With the true noise as the model's output, DDPMScheduler.step's x_{t-1} is the posterior
    mean plus its own variance noise: subtract that noise (same generator) and compare."""
    from diffusers.utils.torch_utils import randn_tensor

    ref = _scheduler("epsilon")
    d = Diffusion.from_config(dict(ref.config))
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    tt = torch.full((2,), t)
    xt = d.q_sample(x0, tt, noise)
    prev = ref.step(noise, t, xt, generator=torch.Generator().manual_seed(7)).prev_sample
    var_noise = randn_tensor(xt.shape, generator=torch.Generator().manual_seed(7), dtype=xt.dtype)
    mean_ref = prev - ref._get_variance(t) ** 0.5 * var_noise
    mean, _ = d.posterior(x0, xt, tt)
    torch.testing.assert_close(mean, mean_ref, rtol=1e-4, atol=1e-5)


def test_the_vlb_at_t0_is_the_discretised_gaussian_nll_in_bits():
    """At t = 0 the VLB is -log p(x0) of 256 bins under N(mean, var): by the exact normal CDF."""
    d = Diffusion(prediction="eps")
    x0 = torch.tensor([[[[-1.0, -0.5], [0.2, 1.0]]]])
    noise = torch.tensor([[[[0.3, -0.2], [0.1, 0.0]]]])
    t = torch.zeros(1, dtype=torch.long)
    xt = d.q_sample(x0, t, noise)
    pred, v = torch.full_like(x0, 0.05), torch.zeros_like(x0)
    got = d.vlb_bits(pred, v, x0, xt, t).item()
    mean, _ = d.posterior(d.predict_x0(xt, t, pred), xt, t)
    std = torch.exp(0.5 * d.model_logvar(v, t))
    normal = torch.distributions.Normal(mean, std)
    hi = torch.where(x0 > 0.999, torch.ones_like(x0), normal.cdf(x0 + 1 / 255))
    lo = torch.where(x0 < -0.999, torch.zeros_like(x0), normal.cdf(x0 - 1 / 255))
    nll = -torch.log(hi - lo).mean().item() / math.log(2)
    assert math.isclose(got, nll, rel_tol=2e-3)


def test_the_ema_follows_diffusers_warmup_recurrence():
    from mltk.t2i.training import make_ema

    p = torch.nn.Parameter(torch.tensor([0.0]))
    ema = make_ema(torch.nn.Linear(1, 1), 0.9)  # replaced below: one parameter is enough
    ema = type(ema)([p], decay=0.9, min_decay=0.0, use_ema_warmup=False)
    values, shadow = [1.0, 2.0, -1.0, 4.0, 0.5, 3.0], 0.0
    for n, v in enumerate(values, start=1):
        with torch.no_grad():
            p.fill_(v)
        ema.step([p])
        k = n - 1
        decay = 0.0 if k <= 0 else min(0.9, (1 + k) / (10 + k))
        shadow = decay * shadow + (1 - decay) * v
        assert math.isclose(ema.shadow_params[0].item(), shadow, rel_tol=1e-6), n


def test_ddim_a_negative_prompt_and_guidance_3_give_the_pipelines_pixels(tmp_path):
    """mltk's generate (embeddings in, the pipeline's loop) against PixArtAlphaPipeline called with
    the prompts as text: the same pixels with DDIM, a negative prompt and guidance 3."""
    from diffusers import DDIMScheduler, PixArtAlphaPipeline

    from mltk.t2i.pipeline_io import load_pipeline, save_pipeline
    from mltk.t2i.sampling import generate
    from tests.t2i.tiny import pixart_bundle

    bundle = pixart_bundle()
    save_pipeline(tmp_path / "p", bundle)
    ours = generate(load_pipeline(tmp_path / "p"), ["a red circle", "two blue squares"], seeds=[3, 4],
                    negative_prompt="green", steps=4, guidance=3.0, sampler="ddim")  # fmt: skip
    pipe = PixArtAlphaPipeline.from_pretrained(str(tmp_path / "p"))
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(["a red circle", "two blue squares"], negative_prompt="green", num_inference_steps=4,
                  guidance_scale=3.0, generator=[torch.Generator().manual_seed(s) for s in (3, 4)],
                  height=32, width=32, output_type="np", clean_caption=False,
                  max_sequence_length=bundle.max_length, use_resolution_binning=False).images  # fmt: skip
    assert np.array_equal(ours, (theirs * 255).round().astype(np.uint8))

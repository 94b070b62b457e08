"""Model construction and the stage-1 -> stage-2 re-parameterisation (Sec. 2.3)."""

from __future__ import annotations

import pytest
import torch
from mltk_plugins.pixart import model as M

from mltk.errors import UsageError
from tests.pixart.conftest import micro


def _trained_like_dit(cfg):
    dit = M.build_dit(cfg, seed=1)
    with torch.no_grad():  # move away from the zero init so the test is not trivial
        for p in dit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return dit


@pytest.mark.parametrize("micro_conditions", [False, True])
def test_reparameterisation_keeps_the_unconditional_output_at_t500(micro_conditions):
    cfg = micro(num_layers=2, micro_conditions=micro_conditions, head_dim=24)  # width % 3 == 0
    dit = _trained_like_dit(cfg)
    pix = M.reparameterize(dit, cfg, seed=2)
    x = torch.randn(3, 3, 32, 32)
    t = torch.full((3,), M.REPARAM_TIMESTEP)
    null = torch.full((3,), cfg.num_classes)
    added = None
    if micro_conditions:
        added = {"resolution": torch.tensor([[32.0, 32.0]] * 3), "aspect_ratio": torch.ones(3, 1)}
    with torch.no_grad():
        ref = dit(x, t, class_labels=null).sample
        a = pix(
            x,
            encoder_hidden_states=torch.randn(3, 7, cfg.text_dim),
            timestep=t,
            added_cond_kwargs=added,
        ).sample
        b = pix(
            x,
            encoder_hidden_states=torch.randn(3, 7, cfg.text_dim),
            timestep=t,
            added_cond_kwargs=added,
        ).sample
    assert ref.abs().mean() > 0.05
    torch.testing.assert_close(a, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a, b)  # zero cross-attention output: the caption has no effect yet
    # ... and the conditional DiT output (a real class) differs, so the check is not vacuous
    with torch.no_grad():
        cond = dit(x, t, class_labels=torch.zeros(3, dtype=torch.long)).sample
    assert (cond - ref).abs().max() > 1e-3


def test_reparameterisation_copies_attention_and_zeroes_cross_attention_output():
    cfg = micro(num_layers=2)
    dit = _trained_like_dit(cfg)
    pix = M.reparameterize(dit, cfg)
    for bd, bp in zip(dit.transformer_blocks, pix.transformer_blocks):
        assert torch.equal(bd.attn1.to_q.weight, bp.attn1.to_q.weight)
        assert torch.equal(bd.ff.net[2].weight, bp.ff.net[2].weight)
        assert bp.attn2.to_out[0].weight.abs().max() == 0


def test_dit_blocks_share_one_timestep_and_label_embedder():
    dit = M.build_dit(micro(num_layers=3))
    embs = {id(b.norm1.emb) for b in dit.transformer_blocks}
    assert len(embs) == 1


@pytest.mark.parametrize("size,patch,factor", [(30, 8, 1), (36, 4, 2), (0, 2, 1)])
def test_resolution_not_divisible_by_patch_times_vae_factor_is_a_usage_error(size, patch, factor):
    with pytest.raises(UsageError, match="not divisible by patch size x VAE factor"):
        M.check_resolution(size, 32, patch, factor)


def test_preset_output_channels_hold_the_learned_variance():
    cfg = micro()
    m = M.build_pixart(cfg)
    assert m.config.out_channels == 2 * m.config.in_channels == 6

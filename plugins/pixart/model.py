"""Model components, all diffusers/transformers classes built from configs (Sec. 2.3).

- the text-conditional model: diffusers ``PixArtTransformer2DModel`` (DiT blocks with
  self-attention, cross-attention to T5 tokens, adaLN-single);
- the stage-1 class-conditional model: diffusers ``DiTTransformer2DModel`` (adaLN-Zero, one
  modulation MLP per block), with the timestep/label embedders shared across blocks as in DiT;
- :func:`reparameterize`, the paper's conversion of a class-conditional DiT into the
  adaLN-single model: the global MLP takes block 0's timestep embedder and modulation layer, and
  each block's learnable offset E(i) is set so that shift/scale/gate equal DiT's *without the
  class condition* (the null class) at the selected timestep t = 500; cross-attention output
  projections start at zero, so the converted model's output is DiT's unconditional output there;
- the autoencoder (``mltk.t2i.autoencoders``): ``identity`` (pixel space), the shipped trained
  ``tiny`` VAE, a random ``tiny-kl`` or the SD VAE; and PixArt's scheduler config.
"""

from __future__ import annotations

import torch
from torch import nn

from mltk.t2i import autoencoders
from mltk.t2i.autoencoders import FACTORS
from mltk.t2i.objective import BETA_END, BETA_START, NUM_TIMESTEPS, PREDICTIONS
from mltk.t2i.sampling import check_resolution

from .config import PixArtConfig

REPARAM_TIMESTEP = 500  # "empirically, we use t = 500" (Sec. 2.3, Re-parameterization)


# ----------------------------------------------------------------------------- autoencoders


def vae_factor(cfg: PixArtConfig) -> int:
    return FACTORS[cfg.autoencoder]


def latent_channels(cfg: PixArtConfig) -> int:
    return autoencoders.latent_channels(cfg.autoencoder)


def build_autoencoder(cfg: PixArtConfig, seed: int = 0):
    return autoencoders.build_autoencoder(cfg.autoencoder, seed)


def scheduler_config(prediction: str) -> dict:
    """The diffusers scheduler config of PixArt-alpha's checkpoints (DPM-Solver++ 2M, linear
    betas 1e-4 to 0.02 over 1000 steps)."""
    return {
        "num_train_timesteps": NUM_TIMESTEPS,
        "beta_start": BETA_START,
        "beta_end": BETA_END,
        "beta_schedule": "linear",
        "prediction_type": PREDICTIONS[prediction],
        "algorithm_type": "dpmsolver++",
        "solver_order": 2,
        "solver_type": "midpoint",
        "lower_order_final": True,
        "timestep_spacing": "linspace",
        "steps_offset": 0,
        "thresholding": False,
    }


# ----------------------------------------------------------------------------- transformers


def transformer_kwargs(cfg: PixArtConfig) -> dict:
    c = latent_channels(cfg)
    latent = cfg.image_size // vae_factor(cfg)
    check_resolution(cfg.image_size, cfg.image_size, cfg.patch_size, vae_factor(cfg))
    return dict(
        num_attention_heads=cfg.num_heads,
        attention_head_dim=cfg.head_dim,
        in_channels=c,
        out_channels=2 * c if cfg.learn_sigma else c,
        num_layers=cfg.num_layers,
        sample_size=latent,
        patch_size=cfg.patch_size,
        norm_eps=1e-6,
    )


def build_pixart(cfg: PixArtConfig, seed: int = 0):
    """The text-conditional PixArt transformer, initialised as the paper's code does."""
    from diffusers import PixArtTransformer2DModel

    width = cfg.num_heads * cfg.head_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PixArtTransformer2DModel(
            **transformer_kwargs(cfg),
            cross_attention_dim=width,
            caption_channels=cfg.text_dim,
            use_additional_conditions=cfg.micro_conditions,
        )
        _init_pixart(model)
    return model


def _xavier_linears(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _init_pixart(model) -> None:
    _xavier_linears(model)
    w = model.pos_embed.proj.weight
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    emb = model.adaln_single.emb
    for lin in (emb.timestep_embedder.linear_1, emb.timestep_embedder.linear_2):
        nn.init.normal_(lin.weight, std=0.02)
    nn.init.normal_(model.adaln_single.linear.weight, std=0.02)
    # The caption projection keeps the xavier init: the reference code's std 0.02 makes the text
    # signal ~50x smaller at the start, which costs thousands of steps a toy run does not have.
    for block in model.transformer_blocks:  # cross-attention starts as a no-op
        nn.init.zeros_(block.attn2.to_out[0].weight)
        nn.init.zeros_(block.attn2.to_out[0].bias)
    nn.init.zeros_(model.proj_out.weight)
    nn.init.zeros_(model.proj_out.bias)


def build_dit(cfg: PixArtConfig, seed: int = 0):
    """The stage-1 class-conditional DiT (adaLN-Zero), embedders shared by all blocks as in DiT.

    Labels ``0..num_classes-1``; ``num_classes`` is the null (unconditional) class.
    """
    from diffusers import DiTTransformer2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DiTTransformer2DModel(
            **transformer_kwargs(cfg), num_embeds_ada_norm=cfg.num_classes
        )
        _xavier_linears(model)
        w = model.pos_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        shared = model.transformer_blocks[0].norm1.emb
        shared.class_embedder.dropout_prob = 0.0  # the training loop drops labels itself
        nn.init.normal_(shared.class_embedder.embedding_table.weight, std=0.02)
        for lin in (shared.timestep_embedder.linear_1, shared.timestep_embedder.linear_2):
            nn.init.normal_(lin.weight, std=0.02)
        for block in model.transformer_blocks:
            block.norm1.emb = shared
            nn.init.zeros_(block.norm1.linear.weight)  # adaLN-Zero
            nn.init.zeros_(block.norm1.linear.bias)
        for lin in (model.proj_out_1, model.proj_out_2):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
    return model


def tie_dit_embedders(model) -> None:
    """Re-tie the shared timestep/label embedder after loading a state dict."""
    shared = model.transformer_blocks[0].norm1.emb
    shared.class_embedder.dropout_prob = 0.0
    for block in model.transformer_blocks:
        block.norm1.emb = shared


@torch.no_grad()
def reparameterize(dit, cfg: PixArtConfig, t: int = REPARAM_TIMESTEP, seed: int = 0):
    """Seed the text-conditional model from a class-conditional DiT (Sec. 2.3).

    DiT block i modulates with S(i) = W_i SiLU(e_t + e_y) + b_i; adaLN-single computes
    S(i) = W SiLU(e'_t) + b + E(i) with one global (W, b) and a learnable E(i) per block.
    (W, b) and e' take block 0's layers; E(i) = S_DiT(i)(t, null) - S_global(t), so at the
    selected t the two models modulate identically without the class. Self-attention, MLP,
    patch embedding and the output projection are copied; cross-attention projections out are zero.
    """
    model = build_pixart(cfg, seed=seed)
    src, dst = dit.state_dict(), model.state_dict()
    copied = {}
    for k, v in src.items():
        if ".norm1." in k:  # the per-block adaLN-Zero MLPs: replaced by adaLN-single
            continue
        name = {"proj_out_2.weight": "proj_out.weight", "proj_out_2.bias": "proj_out.bias"}.get(
            k, k
        )
        if name in dst and dst[name].shape == v.shape:
            copied[name] = v
    model.load_state_dict(copied, strict=False)

    blocks = dit.transformer_blocks
    dit_emb = blocks[0].norm1.emb
    ada = model.adaln_single
    ada.emb.timestep_embedder.load_state_dict(dit_emb.timestep_embedder.state_dict())
    ada.linear.load_state_dict(blocks[0].norm1.linear.state_dict())

    ts = torch.tensor([t])
    null = torch.tensor([cfg.num_classes])
    c = dit_emb(ts, null, hidden_dtype=torch.float32)  # (1, D): e_t + e_null
    added = None
    if model.use_additional_conditions:  # a square image at the model's native size
        size = float(cfg.image_size)
        added = {"resolution": torch.tensor([[size, size]]), "aspect_ratio": torch.tensor([[1.0]])}
    global_mod, embedded_t = ada(
        ts, added, batch_size=1, hidden_dtype=torch.float32
    )  # (1, 6D), (1, D)
    width = embedded_t.shape[-1]
    for block_dit, block in zip(blocks, model.transformer_blocks):
        target = block_dit.norm1.linear(torch.nn.functional.silu(c))  # (1, 6D)
        block.scale_shift_table.copy_((target - global_mod).reshape(6, width))
        nn.init.zeros_(block.attn2.to_out[0].weight)
        nn.init.zeros_(block.attn2.to_out[0].bias)
    final = dit.proj_out_1(torch.nn.functional.silu(c)).reshape(2, width)  # shift, scale
    model.scale_shift_table.copy_(final - embedded_t)
    return model


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""Text side of a text-to-image model: the encoders and prompt encoding.

PixArt conditions on the per-token features of a frozen T5 encoder (T5-XXL, 120 tokens, with an
attention mask); Stable Diffusion on a CLIP text encoder's last hidden state (77 tokens, padded,
no mask unless its config asks for one), exactly as their diffusers pipelines encode prompts, so
embeddings made here and by a pipeline are interchangeable. For the embedded world a tiny T5 is
built from a config (frozen, random weights from a fixed seed; the shipped model carries them)
with a word-level tokenizer trained on the world's captions (``mltk.vl.tokenizers``). Real
checkpoints load from a local folder in bf16 or fp32: T5 in fp16 overflows and corrupts images,
so fp16 is refused.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mltk.errors import UsageError


def t5_config(vocab_size: int, d_model: int, layers: int, heads: int, d_ff: int):
    """A T5 v1.1-style encoder config (gated-GELU feed-forward, no dropout)."""
    from transformers import T5Config

    return T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_model // heads,
        d_ff=d_ff,
        num_layers=layers,
        num_heads=heads,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=0,
        eos_token_id=1,
    )


def build_text_encoder(config, seed: int = 0):
    """A frozen T5 encoder with weights drawn deterministically from ``seed``."""
    from transformers import T5EncoderModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5EncoderModel(config)
    return model.eval().requires_grad_(False)


def text_dtype(precision_dtype: torch.dtype) -> torch.dtype:
    """T5 runs in bf16 or fp32 only: fp16 activations overflow in T5's feed-forward."""
    return torch.bfloat16 if precision_dtype == torch.bfloat16 else torch.float32


def load_text_encoder(folder: Path, dtype: torch.dtype, device="cpu", kind: str = "t5"):
    """T5EncoderModel (``t5``) or CLIPTextModel (``clip``) from a pipeline's text_encoder/."""
    from transformers import CLIPTextModel, T5EncoderModel

    if kind == "t5" and dtype == torch.float16:
        raise UsageError(
            "T5 must not run in fp16 (it corrupts images); use --precision bf16 or fp32."
        )
    cls = T5EncoderModel if kind == "t5" else CLIPTextModel
    return cls.from_pretrained(str(folder), torch_dtype=dtype).to(device).eval()


@torch.no_grad()
def encode(
    tokenizer,
    encoder,
    prompts: list[str],
    max_length: int,
    device="cpu",
    batch_size: int = 256,
    to_cpu: bool = True,
):
    """Text features of ``prompts``: (N, L, C) and the (N, L) attention mask; float32 on the CPU
    (for caching), or with ``to_cpu=False`` left on ``device`` in the encoder's dtype.

    Padded to ``max_length`` (T5: the model's, PixArt 120; CLIP: 77) as the pipelines do. The
    mask goes into the encoder for T5 always and for CLIP when its config says so
    (``use_attention_mask``), as Stable Diffusion's pipeline does. Prompts reach the tokenizer
    as given (no caption cleaning: it would delete tokens such as ``<l5>``).
    """
    return encode_with_grad(tokenizer, encoder, prompts, max_length, device, batch_size, to_cpu)


def encode_with_grad(
    tokenizer, encoder, prompts, max_length, device="cpu", batch_size=256, to_cpu=False
):
    """As :func:`encode`, in the autograd graph (for training token embeddings)."""
    feats, masks = [], []
    use_mask = encoder.config.model_type == "t5" or getattr(
        encoder.config, "use_attention_mask", False
    )
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i : i + batch_size]
        enc = tokenizer(
            chunk,
            padding="max_length",
            max_length=max_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        mask = enc.attention_mask.to(device)
        out = encoder(enc.input_ids.to(device), attention_mask=mask if use_mask else None)[0]
        feats.append(out.float().cpu() if to_cpu else out)
        masks.append(enc.attention_mask if to_cpu else mask)
    return torch.cat(feats), torch.cat(masks)

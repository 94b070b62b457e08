"""Text side: the caption tokenizer, the T5 encoder, and prompt encoding (Sec. 2.3 of the paper).

PixArt-alpha conditions on the per-token features of a frozen T5 encoder (T5-XXL, 120 tokens).
For the embedded world we train a word-level tokenizer on the world's captions with the
``tokenizers`` library and build a tiny T5 encoder from a config (frozen, random weights drawn
from a fixed seed; the shipped tiny model carries its weights). Real checkpoints load from a
local folder in bf16 or fp32: T5 in fp16 overflows and corrupts images, so fp16 is refused.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mltk.errors import UsageError

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"  # T5's ids 0, 1, 2


def train_tokenizer(sentences: list[str]):
    """A word-level tokenizer (lower-cased, whitespace split, ``</s>`` appended) as a
    transformers fast tokenizer, so diffusers' pipelines can call it like T5's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=[PAD, EOS, UNK], min_frequency=1)
    tok.train_from_iterator(sorted(sentences), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="right"
    )


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


def load_text_encoder(folder: Path, dtype: torch.dtype, device="cpu"):
    from transformers import T5EncoderModel

    if dtype == torch.float16:
        raise UsageError(
            "T5 must not run in fp16 (it corrupts images); use --precision bf16 or fp32."
        )
    return T5EncoderModel.from_pretrained(str(folder), torch_dtype=dtype).to(device).eval()


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
    """T5 features of ``prompts``: (N, L, C) and the (N, L) attention mask; float32 on the CPU
    (for caching), or with ``to_cpu=False`` left on ``device`` in the encoder's dtype.

    Padded to ``max_length`` exactly as diffusers' PixArtAlphaPipeline does, so embeddings
    made here and by the pipeline are interchangeable.
    """
    feats, masks = [], []
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
        out = encoder(enc.input_ids.to(device), attention_mask=mask)[0]
        feats.append(out.float().cpu() if to_cpu else out)
        masks.append(enc.attention_mask if to_cpu else mask)
    return torch.cat(feats), torch.cat(masks)

"""Configs of tiny transformers towers for image-text models built on the embedded data.

No hand-written ViT or BERT: the towers are transformers' own classes (``CLIPModel``,
``ViTModel``, ``BertModel``, ``BlipTextModel``) built from these configs, with the token ids of
a tokenizer from :mod:`mltk.vl.tokenizers` (a CLIP text tower pools at its ``eos_token_id``,
which must therefore be the tokenizer's end token).
"""

from __future__ import annotations


def _ids(tokenizer) -> dict:
    out = {}
    for name in ("pad", "bos", "eos"):
        tid = getattr(tokenizer, f"{name}_token_id", None)
        if tid is not None:
            out[f"{name}_token_id"] = int(tid)
    return out


def clip_text_config(tokenizer, *, width: int = 64, layers: int = 2, heads: int = 4,
                     max_positions: int = 77, projection: int | None = None):  # fmt: skip
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=4 * width,
        num_hidden_layers=layers, num_attention_heads=heads,
        max_position_embeddings=max_positions, projection_dim=projection or width,
        **_ids(tokenizer),
    )  # fmt: skip


def clip_vision_config(*, width: int = 64, layers: int = 2, heads: int = 4, image_size: int = 32,
                       patch: int = 4, projection: int | None = None):  # fmt: skip
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
        num_attention_heads=heads, image_size=image_size, patch_size=patch,
        projection_dim=projection or width,
    )  # fmt: skip


def clip_config(tokenizer, *, width: int = 64, layers: int = 2, heads: int = 4,
                image_size: int = 32, patch: int = 4, projection: int = 64,
                max_positions: int = 32):  # fmt: skip
    """A small ``CLIPConfig``: text and vision towers of the same width and depth."""
    from transformers import CLIPConfig

    text = clip_text_config(tokenizer, width=width, layers=layers, heads=heads,
                            max_positions=max_positions, projection=projection)  # fmt: skip
    vision = clip_vision_config(width=width, layers=layers, heads=heads, image_size=image_size,
                                patch=patch, projection=projection)  # fmt: skip
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                      projection_dim=projection)  # fmt: skip


def vit_config(*, width: int = 64, layers: int = 2, heads: int = 4, image_size: int = 32,
               patch: int = 4):  # fmt: skip
    from transformers import ViTConfig

    return ViTConfig(
        hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * width, image_size=image_size, patch_size=patch,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip


def bert_config(tokenizer, *, width: int = 64, layers: int = 2, heads: int = 4,
                max_positions: int = 64):  # fmt: skip
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer), hidden_size=width, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=4 * width,
        max_position_embeddings=max_positions, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pad_token_id=int(tokenizer.pad_token_id),
    )  # fmt: skip


def blip_text_config(tokenizer, *, width: int = 64, layers: int = 2, heads: int = 4,
                     encoder_width: int = 64, max_positions: int = 64):  # fmt: skip
    """BLIP's text model with cross-attention in every layer (``is_decoder=True`` builds the
    cross-attention; call it with ``is_decoder=False`` for bidirectional fusion, as ALBEF's
    fusion encoder)."""
    from transformers import BlipTextConfig

    return BlipTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, encoder_hidden_size=encoder_width,
        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * width,
        max_position_embeddings=max_positions, is_decoder=True,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        pad_token_id=int(tokenizer.pad_token_id), **_bert_ids(tokenizer),
    )  # fmt: skip


def _bert_ids(tokenizer) -> dict:
    """BLIP's bos and sep default to BERT-base's ids (30522, 102): a small vocabulary's own
    [CLS] and [SEP] instead, where the tokenizer has them."""
    out = {}
    for name, attr in (("bos_token_id", "cls_token_id"), ("sep_token_id", "sep_token_id")):
        tid = getattr(tokenizer, attr, None)
        if tid is not None:
            out[name] = int(tid)
    return out

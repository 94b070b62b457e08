"""The tower configs build transformers' own models that run on the world's tokenizers: CLIP
scores image-text pairs, BERT honours its padding, BLIP's text model fuses image features."""

from __future__ import annotations

import torch

from mltk.data import world as W
from mltk.vl import towers
from mltk.vl.tokenizers import train_tokenizer

TEXTS = ["a red circle", "three blue squares in a row"]


def _images(n=2):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_a_small_clip_scores_every_image_against_every_text():
    from transformers import CLIPModel

    tok = train_tokenizer(W.corpus(), "clip")
    torch.manual_seed(0)
    model = CLIPModel(towers.clip_config(tok, width=32, layers=1, heads=2, projection=16)).eval()
    enc = tok(TEXTS, padding="max_length", max_length=32, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                    pixel_values=_images())  # fmt: skip
    assert out.logits_per_image.shape == (2, 2) and out.text_embeds.shape == (2, 16)
    by_hand = model.logit_scale.exp() * out.image_embeds @ out.text_embeds.T
    torch.testing.assert_close(out.logits_per_image, by_hand)


def test_a_small_vit_gives_one_token_per_patch_and_a_class_token():
    from transformers import ViTModel

    model = ViTModel(towers.vit_config(width=32, layers=1, heads=2, patch=4)).eval()
    with torch.no_grad():
        out = model(pixel_values=_images(3))
    assert out.last_hidden_state.shape == (3, 1 + 8 * 8, 32)


def test_a_small_bert_ignores_its_padding():
    from transformers import BertModel

    tok = train_tokenizer(W.corpus(), "bert")
    model = BertModel(towers.bert_config(tok, width=32, layers=1, heads=2)).eval()
    short = tok(TEXTS, padding="max_length", max_length=12, return_tensors="pt")
    long = tok(TEXTS, padding="max_length", max_length=20, return_tensors="pt")
    assert (long.input_ids[:, 12:] == tok.pad_token_id).all()
    with torch.no_grad():
        a = model(**short).last_hidden_state
        b = model(**long).last_hidden_state[:, :12]
    real = short.attention_mask.bool()
    torch.testing.assert_close(a[real], b[real], atol=1e-5, rtol=1e-5)


def test_blips_text_model_fuses_image_features_by_cross_attention():
    from transformers import BlipTextModel, ViTModel

    tok = train_tokenizer(W.corpus(), "bert")
    vit = ViTModel(towers.vit_config(width=32, layers=1, heads=2)).eval()
    fusion = BlipTextModel(towers.blip_text_config(tok, width=32, layers=1, heads=2,
                                                   encoder_width=32)).eval()  # fmt: skip
    enc = tok(TEXTS, padding="max_length", max_length=12, return_tensors="pt")
    with torch.no_grad():
        img = vit(pixel_values=_images()).last_hidden_state
        out = fusion(
            input_ids=enc.input_ids,
            attention_mask=enc.attention_mask,
            encoder_hidden_states=img,
            is_decoder=False,
        ).last_hidden_state
        other = fusion(
            input_ids=enc.input_ids,
            attention_mask=enc.attention_mask,
            encoder_hidden_states=img.flip(0),
            is_decoder=False,
        ).last_hidden_state
    assert out.shape == (2, 12, 32)
    assert (out - other).abs().max() > 1e-4  # the image changes the text's features

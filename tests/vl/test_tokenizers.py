"""Word-level tokenizers per model family; added location tokens survive saving and prompts."""

from __future__ import annotations

import pytest
import torch

from mltk.data import world as W
from mltk.vl.tokenizers import train_tokenizer

LOCATIONS = [f"<l{i}>" for i in range(16)]


@pytest.mark.parametrize("family", ["t5", "bert", "clip"])
def test_location_tokens_survive_save_load_and_prompt_encoding(tmp_path, family):
    from transformers import AutoTokenizer

    tok = train_tokenizer(W.corpus(), family)
    tok.add_tokens(LOCATIONS)
    prompt = "a red circle, qr code <l5> <l6> <l9>"
    ids = tok(prompt).input_ids
    tok.save_pretrained(str(tmp_path / "tok"))
    again = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert again(prompt).input_ids == ids
    for name in ("<l5>", "<l6>", "<l9>"):  # each one token, in order
        assert tok.convert_tokens_to_ids(name) in ids
    assert again.convert_ids_to_tokens(ids).count("<l5>") == 1
    # mltk's prompt encoding hands the prompt to the tokenizer as written (no caption cleaning)
    from mltk.t2i.text import encode_with_grad

    class Echo(torch.nn.Module):
        config = type("C", (), {"model_type": "t5" if family == "t5" else "clip"})()

        def forward(self, input_ids, attention_mask=None):
            return (input_ids[..., None].float(),)

    feats, _ = encode_with_grad(again, Echo(), [prompt], 32)
    assert [int(v) for v in feats[0, : len(ids), 0]] == ids


def test_each_family_has_its_special_tokens():
    t5, bert, clip = (train_tokenizer(["a red circle"], f) for f in ("t5", "bert", "clip"))
    assert t5.convert_ids_to_tokens(t5("a red circle").input_ids)[-1] == "</s>"
    bert_tokens = bert.convert_ids_to_tokens(bert("a red circle").input_ids)
    assert bert_tokens[0] == "[CLS]" and bert_tokens[-1] == "[SEP]" and bert.mask_token == "[MASK]"
    clip_tokens = clip.convert_ids_to_tokens(clip("a red circle").input_ids)
    assert clip_tokens[0] == "<|startoftext|>" and clip_tokens[-1] == "<|endoftext|>"
    assert clip.model_max_length == 77


def test_a_clip_text_tower_pools_at_the_end_token_of_the_small_vocabulary():
    """transformers' CLIP pools at ``eos_token_id`` (id 2 would mean "the highest id": the
    legacy rule); the config from mltk.vl.towers names the tokenizer's end token."""
    from transformers import CLIPTextModel

    from mltk.vl.towers import clip_text_config

    tok = train_tokenizer(W.corpus(), "clip")
    assert tok.eos_token_id != 2
    torch.manual_seed(0)
    model = CLIPTextModel(clip_text_config(tok, width=32, layers=1, heads=2)).eval()
    enc = tok(["a red circle", "three blue squares in a row"], padding="max_length", max_length=16,
              return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        out = model(**enc)
    ends = (enc.input_ids == tok.eos_token_id).int().argmax(-1)
    expected = out.last_hidden_state[torch.arange(2), ends]
    torch.testing.assert_close(out.pooler_output, expected)

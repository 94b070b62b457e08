"""Cells, location tokens, captions, token rows and loss maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mltk_plugins.geom_erasing import locations as L

from mltk.data import world as W
from mltk.errors import DataError, UsageError
from mltk.vl.tokenizers import train_tokenizer


def test_cells_of_a_box_follow_the_grid_edges():
    # 32 px, 4 x 4: cells of 8 px; end-exclusive boxes touching an edge stay in their cell
    assert L.cells_of_box([0, 0, 8, 8], 32, 32, 4) == [0]
    assert L.cells_of_box([7, 0, 9, 8], 32, 32, 4) == [0, 1]
    assert L.cells_of_box([8, 8, 16, 16], 32, 32, 4) == [5]
    assert L.cells_of_box([20, 25, 32, 32], 32, 32, 4) == [14, 15]
    assert L.cells_of_box([0, 0, 32, 32], 32, 32, 4) == list(range(16))
    # non-square images and a grid that does not divide them
    assert L.cells_of_box([0, 0, 1, 1], 30, 20, 3) == [0]
    assert L.cells_of_box([29, 19, 30, 20], 30, 20, 3) == [8]
    assert L.cells_of_box([3, 5, 4, 6], 32, 32, 1) == [0]


@pytest.mark.parametrize("box", [[-1, 0, 4, 4], [0, 0, 33, 4], [4, 4, 4, 8], [5, 5, 2, 9]])
def test_boxes_outside_the_image_or_empty_are_refused(box):
    with pytest.raises(DataError, match="inside the 32x32 image"):
        L.cells_of_box(box, 32, 32, 4)


def test_concepts_and_grids_are_checked():
    assert L.check_concept("  qr   code ") == "qr code"
    for bad in ("", "   ", "<l3>", "logo <l12>"):
        with pytest.raises(UsageError):
            L.check_concept(bad)
    with pytest.raises(UsageError, match="at least 1"):
        L.check_grid(0)


def test_captions_and_negative_prompts():
    cap = L.augment_caption("a red circle.", [("qr code", [9, 5, 6, 5])])
    assert cap == "a red circle., qr code <l5> <l6> <l9>"
    two = L.augment_caption("x", [("qr code", [1]), ("watermark", [15])])
    assert two == "x, qr code <l1>, watermark <l15>"
    assert L.augment_caption("x", [("qr code", [1])], locations=False) == "x, qr code"
    assert L.negative_prompt(["qr code"], [[0, 1, 2, 3]]) == "qr code <l0> <l1> <l2> <l3>"
    assert L.negative_prompt(["a", "b"], None) == "a, b"
    assert L.frequent_cells(np.array([0, 10, 1, 9])) == [1, 3]
    assert L.frequent_cells(np.zeros(4)) == [0, 1, 2, 3]


def test_sincos_rows_match_diffusers_and_take_the_tables_norm():
    from diffusers.models.embeddings import get_2d_sincos_pos_embed

    ref = get_2d_sincos_pos_embed(64, 4, base_size=4, output_type="pt").numpy()
    np.testing.assert_allclose(L.sincos_2d(4, 64), ref, atol=1e-6)

    tok = train_tokenizer(W.corpus(), "t5")
    from mltk.t2i.text import build_text_encoder, t5_config

    enc = build_text_encoder(t5_config(len(tok), 32, 1, 2, 64))
    old = enc.get_input_embeddings().weight.detach().clone()
    ids = L.add_tokens(tok, enc, ["qr code", "circle"], grid=3)
    table = enc.get_input_embeddings().weight.detach()
    assert table.shape[0] == len(tok) == old.shape[0] + 3 + 9  # "qr", "code", "," and 9 cells
    assert torch.equal(table[: old.shape[0]], old)  # "circle" is known: no row changes
    norms = table[ids["location_ids"]].norm(dim=1)
    torch.testing.assert_close(norms, torch.full((9,), float(old.norm(dim=1).mean())))
    rows = torch.from_numpy(L.sincos_2d(3, 32)).float()
    cos = torch.nn.functional.cosine_similarity(table[ids["location_ids"]], rows)
    torch.testing.assert_close(cos, torch.ones(9))
    word_norms = table[ids["word_ids"]].norm(dim=1)
    torch.testing.assert_close(word_norms, torch.full((3,), float(old.norm(dim=1).mean())))


@pytest.mark.parametrize("family", ["t5", "clip"])
def test_augmented_captions_keep_their_token_ids_through_save_and_load(tmp_path, family):
    from transformers import AutoTokenizer

    tok = train_tokenizer(W.corpus(), family)
    table = torch.nn.Embedding(len(tok), 16)

    class Enc(torch.nn.Module):  # what add_tokens needs of an encoder
        def get_input_embeddings(self):
            return table

        def resize_token_embeddings(self, n, mean_resizing=False):
            nonlocal table
            new = torch.nn.Embedding(n, 16)
            new.weight.data[: table.weight.shape[0]] = table.weight.data
            table = new

    L.add_tokens(tok, Enc(), ["qr code"], grid=4)
    cap = L.augment_caption("a red circle above a blue square", [("qr code", [5, 6, 9])])
    ids = tok(cap).input_ids
    for t in ("<l5>", "<l6>", "<l9>", "qr", "code"):
        assert tok.convert_tokens_to_ids(t) in ids
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True).split()[-3:] == ["<l5>", "<l6>", "<l9>"]
    tok.save_pretrained(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    assert back(cap).input_ids == ids
    assert back("<l15>").input_ids == tok("<l15>").input_ids


def test_no_cleaning_strips_location_tokens():
    """mltk's prompt encoding and diffusers' PixArt encode_prompt without cleaning keep them."""
    from diffusers import PixArtAlphaPipeline

    from mltk.t2i.text import build_text_encoder, encode, t5_config

    tok = train_tokenizer(W.corpus(), "t5")
    enc = build_text_encoder(t5_config(len(tok), 32, 1, 2, 64))
    L.add_tokens(tok, enc, ["qr code"], grid=4)
    prompt = "a red circle, qr code <l5> <l6>"
    feats, mask = encode(tok, enc, [prompt], 20)
    n = len(tok(prompt).input_ids)
    assert int(mask.sum()) == n == 9  # 4 words, qr, code, two cells, </s>
    pipe = PixArtAlphaPipeline(
        tokenizer=tok, text_encoder=enc, vae=None, transformer=None, scheduler=None
    )
    emb, pmask, _, _ = pipe.encode_prompt(
        prompt, do_classifier_free_guidance=False, clean_caption=False, max_sequence_length=20
    )
    assert int(pmask.sum()) == n
    torch.testing.assert_close(emb.float(), feats)


def test_weight_maps_average_one():
    m = L.weight_map([[0, 0, 8, 8]], (32, 32), (16, 16), 2.0)
    assert m.shape == (16, 16) and m.mean() == pytest.approx(1.0)
    assert m[0, 0] == pytest.approx(2 * m[8, 8])  # inside twice outside
    assert np.count_nonzero(m == m[0, 0]) == 16  # 4 x 4 latent pixels
    ones = L.weight_map([], (32, 32), (16, 16), 2.0)
    assert np.all(ones == 1)
    masked = L.weight_map([[1, 1, 3, 3]], (32, 32), (16, 16), 0.0)
    assert masked.mean() == pytest.approx(1.0) and masked[0, 0] == 0 and masked[1, 1] == 0
    assert masked[2, 2] > 1
    everything = L.weight_map([[0, 0, 32, 32]], (32, 32), (16, 16), 0.0)
    assert np.all(everything == 0)

"""The biased world and its hard negatives; saving, loading and starting from Hugging Face
folders; the evaluation's pieces against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mltk_plugins.epic import data as D
from mltk_plugins.epic import evaluation as E
from mltk_plugins.epic import model as M
from mltk_plugins.epic import training as T

from mltk.data import world as W

from .conftest import CAPTIONS, make_model


def test_the_biased_world_predicts_colour_from_shape_and_the_test_split_never_does():
    train = D.world_train(2000, 0.8)
    preferred = np.mean([W.PREFERRED[s.shape1] == s.colour1 for s in train.scenes])
    assert abs(preferred - (0.8 + 0.2 / 4)) < 0.03
    test = D.world_test(300)
    assert len(test) == 300 and all(D.counterfactual(s) for s in test.scenes)
    for s, caps in zip(test.scenes, test.captions):
        assert W.PREFERRED[s.shape1] not in caps[0].split() or s.kind == "pair"
    unbiased = D.world_train(2000, 0.0)
    share = np.mean([W.PREFERRED[s.shape1] == s.colour1 for s in unbiased.scenes])
    assert abs(share - 0.25) < 0.03


def test_hard_negatives_change_one_attribute_and_their_caption():
    test = D.world_test(200)
    negatives = D.hard_negatives(test.scenes, seed=0)
    assert {n.attribute for n in negatives} == set(D.ATTRIBUTES)
    for n in negatives:
        assert n.positive != n.negative
        a, b = n.positive.split(), n.negative.split()
        words = D.ATTRIBUTE_WORDS[n.attribute]
        changed = [x for x, y in zip(a, b) if x != y] if len(a) == len(b) else a
        if n.attribute in ("colour", "count"):
            assert len(a) == len(b) and len(changed) == 1 and changed[0] in words
        if n.attribute == "shape":
            assert len(changed) == 1 and changed[0] in D.SHAPE_WORDS


def test_changed_positions_follow_insertions():
    assert E._changed([1, 2, 3, 4], [1, 9, 3, 4]) == [1]
    assert E._changed([1, 2, 3], [1, 7, 8, 3]) == [1, 2]
    assert E._changed([1, 2, 3], [1, 2, 3]) == []


def test_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = rng.normal(size=300) + labels * 0.7
    scores[:40] = np.round(scores[:40])  # ties
    assert E.auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def _same_outputs(a, b, tokenizer):
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3)).astype(np.uint8)
    enc = T.tokens(tokenizer, CAPTIONS[:3], 30)
    with torch.no_grad():
        outs = []
        for m in (a, b):
            i_states, i_feat = m.encode_image(m.pixels(images))
            t_states, t_feat = m.encode_text(enc["input_ids"], enc["attention_mask"])
            fused = m.fuse(t_states, enc["attention_mask"], i_states)
            outs.append(
                [i_feat, t_feat, m.itm_logits(fused), m.mlm_head(fused), m.token_head(fused)]
            )
    for x, y in zip(*outs):
        assert torch.allclose(x, y, atol=1e-5)


def test_save_load_round_trip_and_hugging_face_folders(tmp_path, tokenizer):
    from transformers import BertModel, BlipTextModel, ViTModel

    model = make_model(tokenizer, queue=8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        model.vision_m.embeddings.cls_token.add_(1.0)  # momentum differs from online
    model.enqueue(torch.ones(4, 16), torch.ones(4, 16))
    M.save(model, tmp_path / "m", tokenizer, {"objective": "epic"})
    loaded, tok, meta = M.load(tmp_path / "m")
    assert meta["objective"] == "epic" and len(tok) == len(tokenizer)
    _same_outputs(model, loaded, tokenizer)
    assert torch.equal(loaded.vision_m.embeddings.cls_token, model.vision_m.embeddings.cls_token)
    assert int(loaded.queue_ptr) == 4 and torch.equal(loaded.image_queue, model.image_queue)
    vit = ViTModel.from_pretrained(tmp_path / "m" / "vision", add_pooling_layer=False)
    assert torch.equal(vit.embeddings.cls_token, model.vision.embeddings.cls_token)
    BertModel.from_pretrained(tmp_path / "m" / "text", add_pooling_layer=False)
    BlipTextModel.from_pretrained(tmp_path / "m" / "fusion", add_pooling_layer=False)
    # without the momentum file: momentum copies start equal to the online weights
    (tmp_path / "m" / M.MOMENTUM).unlink()
    fresh, _, _ = M.load(tmp_path / "m")
    assert torch.equal(fresh.vision_m.embeddings.cls_token, fresh.vision.embeddings.cls_token)


def test_towers_start_from_hugging_face_vit_and_bert_folders(tmp_path, tokenizer):
    from transformers import BertConfig, BertModel, ViTConfig, ViTModel

    torch.manual_seed(3)
    vit = ViTModel(
        ViTConfig(
            hidden_size=48,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=96,
            image_size=32,
            patch_size=8,
        ),
        add_pooling_layer=False,
    )
    vit.save_pretrained(tmp_path / "vit")
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=40,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    bert.save_pretrained(tmp_path / "bert")
    from transformers import BertConfig as BC

    text = BC.from_pretrained(tmp_path / "bert")
    text.num_hidden_layers = 1
    vision = ViTConfig.from_pretrained(tmp_path / "vit")
    fusion = M.fusion_like(text, vision, 2, tokenizer)
    model = M.EpicModel(vision, text, fusion, M.generator_like(text, 0.25, len(tokenizer)))
    M.load_vision(model, tmp_path / "vit")
    filled = M.load_text(model, tmp_path / "bert")
    assert torch.equal(model.vision.embeddings.cls_token, vit.embeddings.cls_token)
    ref = bert.state_dict()
    assert torch.equal(
        model.text.encoder.layer[0].output.dense.weight, ref["encoder.layer.0.output.dense.weight"]
    )
    # fusion layer j starts from BERT layer 1 + j (self-attention and feed-forward)
    for j in range(2):
        got = model.fusion.encoder.layer[j].attention.self.query.weight
        assert torch.equal(got, ref[f"encoder.layer.{1 + j}.attention.self.query.weight"])
    assert not any("crossattention" in k for k in filled)
    assert model.generator.config.hidden_size == 8


def test_retrieval_with_every_candidate_reranked_equals_the_full_score_matrix(tokenizer, tiny):
    pairs = D.world_test(12)
    r = E.retrieval(tiny, tokenizer, pairs, k=1000)  # every candidate re-ranked
    texts = [c for cs in pairs.captions for c in cs]
    owner = np.array([i for i, cs in enumerate(pairs.captions) for _ in cs])
    i_states, i_feat = E.image_states(tiny, pairs.images)
    t_states, t_mask, t_feat, _ = E.text_states(tiny, tokenizer, texts)
    sim = (i_feat @ t_feat.T).numpy()
    full = np.zeros_like(sim)
    for i in range(len(pairs)):
        rows = torch.full((len(texts),), i)
        full[i] = E.match_probability(tiny, t_states, t_mask, i_states[rows]).numpy() + sim[i]
    from mltk.vl.retrieval import recall_at_k

    want = recall_at_k(full, owner)
    for k in ("i2t_r@1", "i2t_r@5", "t2i_r@1", "t2i_r@5"):
        assert r[k] == pytest.approx(want[k])

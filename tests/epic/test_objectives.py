"""EPIC's steps and ALBEF's losses against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mltk_plugins.epic import objectives as O
from mltk_plugins.epic import training as T

from .conftest import CAPTIONS, make_model


def test_pick_takes_the_most_salient_words_at_the_ratio_and_never_a_special_token(tokenizer):
    tokens = O.Tokens.of(tokenizer)
    enc = T.tokens(tokenizer, CAPTIONS, 30)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    g = torch.Generator().manual_seed(0)
    for ratio in (0.1, 0.35, 0.5, 0.99):
        sal = torch.rand(ids.shape, generator=g)
        sal[tokens.special(ids) | (mask == 0)] = float("-inf")
        picked = O.pick(sal, ids, mask, tokens, ratio)
        assert not (picked & tokens.special(ids)).any()
        assert not (picked & (mask == 0)).any()
        for i, caption in enumerate(CAPTIONS):
            n = len(caption.split())
            assert int(picked[i].sum()) == max(1, round(n * ratio))
            chosen = sal[i][picked[i]]
            rest = sal[i][~picked[i] & torch.isfinite(sal[i])]
            if len(rest):
                assert chosen.min() >= rest.max()  # the top ones


def test_random_saliency_and_bert_masking_never_touch_special_tokens(tokenizer):
    tokens = O.Tokens.of(tokenizer)
    enc = T.tokens(tokenizer, CAPTIONS * 50, 30)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    torch.manual_seed(0)
    sal = O.saliency(None, ids, mask, None, tokens, "random")
    picked = O.pick(sal, ids, mask, tokens, 0.35)
    assert not (picked & tokens.special(ids)).any()
    masked, labels = O.mlm_mask(ids, tokens)
    chosen = labels != -100
    assert not (chosen & tokens.special(ids)).any()
    words = (~tokens.special(ids)).sum()
    assert abs(chosen.sum() / words - O.MLM_PROBABILITY) < 0.03
    # BERT's 80/10/10 among the chosen
    assert abs((masked[chosen] == tokens.mask).float().mean() - 0.8) < 0.06
    assert (masked[~chosen] == ids[~chosen]).all()


def test_a_sample_equal_to_the_original_is_labelled_consistent(tokenizer, tiny, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    corrupted = ids.clone()
    corrupted[0, 2] = ids[0, 3]  # a real change
    corrupted[1, 1] = ids[1, 1]  # "replaced" by itself
    img, _ = tiny.encode_image(batch["pixel_values"])
    loss, _, logits, labels = O.consistency_loss(tiny, corrupted, ids, mask, img)
    assert labels[0, 2] == 0 and labels[1, 1] == 1
    assert labels.sum() == labels.numel() - 1
    keep = mask == 1
    want = F.binary_cross_entropy_with_logits(logits[keep], labels[keep])
    assert torch.allclose(loss, want)


def test_replace_by_the_generator_only_changes_picked_words_into_words(tokenizer, tiny, batch):
    tokens = O.Tokens.of(tokenizer)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    torch.manual_seed(0)
    sal = O.saliency(None, ids, mask, None, tokens, "random")
    picked = O.pick(sal, ids, mask, tokens, 0.5)
    corrupted, loss = O.replace(tiny, ids, mask, picked, tokens, "lm")
    assert (corrupted[~picked] == ids[~picked]).all()
    assert not tokens.special(corrupted[picked]).any()
    # the generator's loss is its cross-entropy on the picked words, from masked input
    masked = ids.masked_fill(picked, tokens.mask)
    logits = tiny.generator(input_ids=masked, attention_mask=mask).logits
    assert torch.allclose(loss, F.cross_entropy(logits[picked], ids[picked]), atol=1e-6)
    corrupted, loss = O.replace(tiny, ids, mask, picked, tokens, "uniform")
    assert float(loss) == 0 and not tokens.special(corrupted[picked]).any()


def test_itc_without_queue_or_distillation_is_symmetric_infonce(tokenizer):
    model = make_model(tokenizer, queue=0)
    g = torch.Generator().manual_seed(0)
    img, txt = (F.normalize(torch.randn(5, 16, generator=g), dim=-1) for _ in range(2))
    loss, _, _ = O.itc_loss(model, img, txt, img, txt, alpha=0.0)
    logits = img @ txt.T / 0.07
    target = torch.arange(5)
    want = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    assert torch.allclose(loss, want, atol=1e-5)
    # repeated captions share the target mass
    same = torch.eye(5, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True
    loss2, _, _ = O.itc_loss(model, img, txt, img, txt, alpha=0.0, same=same)
    soft = same.float() / same.float().sum(1, keepdim=True)
    ls = -(F.log_softmax(logits, 1) * soft).sum(1).mean()
    lt = -(F.log_softmax(logits.T, 1) * soft).sum(1).mean()
    assert torch.allclose(loss2, (ls + lt) / 2, atol=1e-5)


def test_itc_distillation_mixes_the_momentum_similarities(tokenizer):
    model = make_model(tokenizer, queue=8)
    g = torch.Generator().manual_seed(0)
    img, txt, img_m, txt_m = (F.normalize(torch.randn(4, 16, generator=g), dim=-1) for _ in "abcd")
    loss, _, _ = O.itc_loss(model, img, txt, img_m, txt_m, alpha=0.4)
    txt_all = torch.cat([txt_m.T, model.text_queue], 1)
    img_all = torch.cat([img_m.T, model.image_queue], 1)
    hard = torch.zeros(4, 12)
    hard[:, :4] = torch.eye(4)
    ti = 0.4 * F.softmax(img_m @ txt_all / 0.07, 1) + 0.6 * hard
    tt = 0.4 * F.softmax(txt_m @ img_all / 0.07, 1) + 0.6 * hard
    li = -(F.log_softmax(img @ txt_all / 0.07, 1) * ti).sum(1).mean()
    lt = -(F.log_softmax(txt @ img_all / 0.07, 1) * tt).sum(1).mean()
    assert torch.allclose(loss, (li + lt) / 2, atol=1e-5)


def test_itm_negatives_are_never_the_pair_nor_an_equal_caption():
    torch.manual_seed(0)
    b = 6
    same = torch.eye(b, dtype=torch.bool)
    same[2, 3] = same[3, 2] = True  # captions 2 and 3 are the same text
    sim = torch.randn(b, b) * 5
    sim[2, 3] = sim[3, 2] = 50.0  # the most similar one is the banned duplicate
    for _ in range(200):
        neg = O.hard_negatives(sim, same)
        assert (neg != torch.arange(b)).all()
        assert neg[2] != 3 and neg[3] != 2
    # a batch of one caption repeated: any other row, never the pair itself
    everything = torch.ones(3, 3, dtype=torch.bool)
    for _ in range(50):
        neg = O.hard_negatives(torch.randn(3, 3), everything)
        assert (neg != torch.arange(3)).all()


def test_momentum_update_and_the_queue_pointer(tokenizer):
    model = make_model(tokenizer, queue=8)
    with torch.no_grad():
        for p in model.vision.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.vision_m.parameters()]
    model.momentum_update()
    m = model.momentum
    for b, pm, p in zip(before, model.vision_m.parameters(), model.vision.parameters()):
        assert torch.allclose(pm, m * b + (1 - m) * p, atol=1e-6)
    feats = F.normalize(torch.randn(4, 16), dim=-1)
    model.enqueue(feats, -feats)
    assert int(model.queue_ptr) == 4
    assert torch.allclose(model.image_queue[:, :4], feats.T)
    assert torch.allclose(model.text_queue[:, :4], -feats.T)
    model.enqueue(feats * 0 + 1, feats)
    assert int(model.queue_ptr) == 0  # wrapped around
    with pytest.raises(ValueError, match="multiple"):
        model.enqueue(torch.randn(3, 16), torch.randn(3, 16))


@pytest.mark.parametrize(
    "objective,keys",
    [
        ("albef", {"itc", "itm", "mlm"}),
        ("epic", {"itc", "itm", "mlm", "consistency", "generator"}),
        ("rtd-random", {"itc", "itm", "mlm", "consistency", "generator"}),
        ("salient-mask", {"itc", "itm", "mlm", "salient_mlm"}),
    ],
)
def test_each_objective_computes_its_terms_and_their_weighted_sum(
    tokenizer, batch, objective, keys
):
    model = make_model(tokenizer, queue=8).train()
    s = O.Step(tokens=O.Tokens.of(tokenizer), objective=objective, epic_weight=3.0)
    T.trainable(model, s)
    torch.manual_seed(0)
    out = model(batch, s)
    terms = {
        k for k in out if k in {"itc", "itm", "mlm", "consistency", "generator", "salient_mlm"}
    }
    assert terms == keys
    want = sum(out[k] * (3.0 if k == "consistency" else 1.0) for k in keys)
    assert torch.allclose(out["loss"], want)
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing  # DDP needs a gradient for every trainable tensor


def test_loss_terms_switch_off_cleanly(tokenizer, batch):
    model = make_model(tokenizer, queue=8).train()
    s = O.Step(tokens=O.Tokens.of(tokenizer), objective="albef", itc=False, mlm=False)
    T.trainable(model, s)
    out = model(batch, s)
    assert "itc" not in out and "mlm" not in out and torch.allclose(out["loss"], out["itm"])
    out["loss"].backward()
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        if top in ("mlm_head", "token_head", "generator", "vision_proj", "text_proj", "temp"):
            assert not p.requires_grad, name
        if p.requires_grad:
            assert p.grad is not None, name  # DDP needs a gradient for every trainable tensor
    assert not any(p.requires_grad for p in model.fusion.embeddings.parameters())


@pytest.mark.parametrize("method", ["gradient", "attention", "occlusion"])
def test_saliency_is_finite_on_words_and_minus_infinity_elsewhere(tokenizer, tiny, batch, method):
    tokens = O.Tokens.of(tokenizer)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    img, _ = tiny.encode_image(batch["pixel_values"], momentum=True)
    sal = O.saliency(tiny, ids, mask, img, tokens, method)
    words = ~tokens.special(ids) & (mask == 1)
    assert torch.isfinite(sal[words]).all() and torch.isinf(sal[~words]).all()
    assert all(p.grad is None for p in tiny.parameters())  # no parameter gradients left


def test_occlusion_saliency_is_the_match_score_drop(tokenizer, tiny, batch):
    tokens = O.Tokens.of(tokenizer)
    ids, mask = batch["input_ids"][:1], batch["attention_mask"][:1]
    img, _ = tiny.encode_image(batch["pixel_values"][:1], momentum=True)
    sal = O.saliency(tiny, ids, mask, img, tokens, "occlusion")
    with torch.no_grad():
        st, _ = tiny.encode_text(ids, mask, momentum=True)
        full = O.match_score(tiny, st, mask, img)
        hidden = ids.clone()
        hidden[0, 3] = tokens.mask
        st, _ = tiny.encode_text(hidden, mask, momentum=True)
        drop = full - O.match_score(tiny, st, mask, img)
    assert math.isclose(float(sal[0, 3]), float(drop[0]), rel_tol=1e-4, abs_tol=1e-6)


def test_schedule_warms_up_then_follows_a_cosine_to_a_tenth():
    s = T.Schedule(steps=100, lr=1.0, warmup=0.1)
    assert s.at(0) == pytest.approx(0.1) and s.at(9) == pytest.approx(1.0)
    assert s.at(10) == pytest.approx(1.0)
    assert s.at(55) == pytest.approx(0.1 + 0.9 * 0.5)
    assert s.at(100) == pytest.approx(0.1)


def test_batches_cover_every_pair_once_per_epoch_and_resume_the_same_stream():
    from mltk_plugins.epic.data import Pairs

    pairs = Pairs(np.arange(12)[:, None, None, None].repeat(3, 3), [[f"c{i}"] for i in range(12)])
    steps = list(T.batches(pairs, 4, 6, np.random.default_rng(0)))
    first = sorted(int(x) for _, imgs, _ in steps[:3] for x in imgs[:, 0, 0, 0])
    assert first == list(range(12))
    later = list(T.batches(pairs, 4, 6, np.random.default_rng(0), start=4))
    assert [s for s, _, _ in later] == [4, 5]
    assert all((a[1] == b[1]).all() for a, b in zip(steps[4:], later))

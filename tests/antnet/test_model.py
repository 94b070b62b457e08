"""The modules compute the equations their docstrings state."""

from __future__ import annotations

import torch
from mltk_plugins.antnet import labels as L
from mltk_plugins.antnet import model as M
from mltk_plugins.antnet.encoders import BiLSTMEncoder, Vocabulary


def _model(data, **kw):
    texts = [t for e in data["train"] for t in (e.question, e.answer, *e.options)]
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(Vocabulary.build(texts), embed=16, hidden=16)
    return M.AnswerModel(encoder, hidden=16, **kw).eval()


def _plain_attention(a, mask, q, score: torch.nn.Linear, gru: torch.nn.GRUCell):
    """One hop of attention with the question's mean as query and a GRU update from zero,
    written out gate by gate (PyTorch's GRUCell equations)."""
    d = q.shape[-1]
    w, b = score.weight[0], score.bias[0]
    g = a @ w[:d] + (q @ w[2 * d :])[:, None] + b  # e = 0: its third of w drops out
    g = g.masked_fill(~mask, float("-inf"))
    c = (torch.softmax(g, -1)[..., None] * a).sum(1)
    gi = c @ gru.weight_ih.T + gru.bias_ih
    gh = gru.bias_hh.expand_as(gi)  # W_hh e = 0
    r = torch.sigmoid(gi[:, :d] + gh[:, :d])
    z = torch.sigmoid(gi[:, d : 2 * d] + gh[:, d : 2 * d])
    n = torch.tanh(gi[:, 2 * d :] + r * gh[:, 2 * d :])
    return (1 - z) * n  # + z * e, and e = 0


@torch.no_grad()
def test_one_hop_with_uniform_skeleton_is_plain_attention(data):
    model = _model(data, hops=1, skeleton=False, relevance=False)
    batch = M.make_batch(data["train"][:12], model.encoder)
    h, a = model.proj(batch.side[0]), model.proj(batch.answer[0])
    s, q = model.skeleton(h, batch.side[1])
    assert torch.allclose(q, M.masked_mean(h, batch.side[1]), atol=1e-6)
    assert torch.allclose(s.sum(1), torch.ones(12))
    e, hops = model.fusion(a, batch.answer[1], q)
    expected = _plain_attention(a, batch.answer[1], q, model.fusion.score, model.fusion.gru)
    assert torch.allclose(e, expected, atol=1e-5)
    assert hops.shape == (12, 1, a.shape[1])


@torch.no_grad()
def test_relevance_is_the_best_skeleton_weighted_similarity():
    torch.manual_seed(1)
    module = M.RelevanceAwareAnswer(4)
    a, h = torch.randn(1, 3, 4), torch.randn(1, 5, 4)
    s = torch.tensor([[0.1, 0.6, 0.2, 0.1, 0.0]])
    a_mask, h_mask = torch.ones(1, 3, dtype=torch.bool), torch.tensor([[1, 1, 1, 1, 0]]).bool()
    weighted, r = module(a, a_mask, h, h_mask, s)
    wa = a[0] @ module.proj.weight.T
    for j in range(3):
        sims = [(s[0, i] / 0.6) * (wa[j] @ h[0, i]) / 2.0 for i in range(4)]
        assert torch.isclose(r[0, j], torch.sigmoid(max(sims) + module.bias[0]), atol=1e-6)
    assert torch.allclose(weighted, r[..., None] * a)


@torch.no_grad()
def test_a_question_only_gets_the_classes_its_kind_allows(data):
    model = _model(data)
    examples = data["train"][:40]
    out = model(M.make_batch(examples, model.encoder))
    for e, (label, probs, _) in zip(examples, M.decide(out, [len(e.options) for e in examples])):
        allowed = L.OPTION_KINDS if e.options else L.YESNO_KINDS
        assert label.kind in allowed
        assert sum(p for k, p in zip(L.KINDS, probs) if k not in allowed) < 1e-3
        assert all(i < len(e.options) for i in label.chosen)


@torch.no_grad()
def test_option_match_sees_an_option_named_word_for_word(data):
    model = _model(data)
    e = next(x for x in data["train"] if x.phenomenon == "named" and len(x.options) == 3)
    batch = M.make_batch([e], model.encoder)
    feats = M.option_match(batch)  # (1, P, 4): embeddings best, mean-best; states ...
    named = e.label.chosen[0]
    assert torch.isclose(feats[0, named, 0], torch.tensor(1.0), atol=1e-5)
    others = [k for k in range(3) if k != named and e.options[k].split()[0] not in e.answer]
    assert all(feats[0, k, 0] < 0.999 for k in others)


def test_a_select_whose_options_all_fall_short_takes_the_likeliest():
    kind = torch.full((1, 5), M.NEG)
    kind[0, L.KINDS.index("select")] = 0.0
    out = M.Output(kind, torch.tensor([[-3.0, -1.0, -2.0]]))
    [(label, _, probs)] = M.decide(out, [3])
    assert label == L.Label.select([1])
    assert max(probs) < 0.5


def test_the_skeleton_loss_vanishes_when_attention_matches_its_marks(data):
    model = _model(data)
    batch = M.make_batch(data["train"][:8], model.encoder)
    out = model(batch)
    plain = M.losses(out, batch, 0.0)
    out.skeleton = batch.skeleton.clone()
    marked = batch.skeleton.sum(1) > 0
    assert marked.any()
    assert torch.allclose(M.losses(out, batch, 1.0)[marked], plain[marked], atol=1e-4)
    out.skeleton = M.masked_softmax(torch.zeros_like(batch.skeleton), batch.side[1])
    assert (M.losses(out, batch, 1.0)[marked] > plain[marked] + 1e-3).all()

"""What `mltk epic eval` measures, and the per-token scores of `check`.

- retrieval R@1/5/10 both ways, ALBEF's way: ITC similarities pick each query's top ``k``
  candidates, which the ITM match probability plus the ITC similarity re-ranks (BLIP's sum);
- hard-negative ITM accuracy: the share of (caption, one-attribute-changed caption) pairs whose
  true caption gets the higher match probability, per attribute and overall;
- visual reliance: MLM top-1 accuracy on one masked attribute word at a time, with the real
  image minus with a blank one (the data set's mean colour): how much the prediction needs the
  image;
- token AUC: how well per-token scores find the changed word of hard-negative captions among
  every word of the true and changed captions; the consistency head's where the model has one
  (trained by epic or rtd-random), else the MLM's pseudo-likelihood (one minus the probability
  of the word with it masked).
"""

from __future__ import annotations

import difflib

import numpy as np
import torch
import torch.nn.functional as F

from mltk.vl.retrieval import recall_at_k

from . import data as D
from .objectives import Tokens
from .training import text_length, tokens

RERANK = 16


def _chunks(n: int, size: int):
    for a in range(0, n, size):
        yield slice(a, min(n, a + size))


@torch.no_grad()
def image_states(model, images: np.ndarray, batch: int = 128):
    states, feats = [], []
    for sl in _chunks(len(images), batch):
        s, f = model.encode_image(model.pixels(images[sl]))
        states.append(s)
        feats.append(f)
    return torch.cat(states), torch.cat(feats)


@torch.no_grad()
def text_states(model, tokenizer, texts: list[str], batch: int = 256):
    device = model.mean.device
    enc = tokens(tokenizer, texts, text_length(model), device)
    states, feats = [], []
    for sl in _chunks(len(texts), batch):
        s, f = model.encode_text(enc["input_ids"][sl], enc["attention_mask"][sl])
        states.append(s)
        feats.append(f)
    return torch.cat(states), enc["attention_mask"], torch.cat(feats), enc["input_ids"]


@torch.no_grad()
def match_probability(model, t_states, t_mask, i_states, batch: int = 256) -> torch.Tensor:
    """p(match) of the ITM head for aligned rows of text and image states."""
    out = []
    for sl in _chunks(len(t_states), batch):
        fused = model.fuse(t_states[sl], t_mask[sl], i_states[sl])
        out.append(F.softmax(model.itm_logits(fused).float(), dim=-1)[:, 1])
    return torch.cat(out)


@torch.no_grad()
def retrieval(model, tokenizer, pairs: D.Pairs, k: int = RERANK, encoded=None) -> dict:
    texts = [c for cs in pairs.captions for c in cs]
    owner = np.array([i for i, cs in enumerate(pairs.captions) for _ in cs])
    i_states, i_feat = encoded or image_states(model, pairs.images)
    t_states, t_mask, t_feat, _ = text_states(model, tokenizer, texts)
    sim = (i_feat @ t_feat.T).float()
    k_i, k_t = min(k, sim.shape[1]), min(k, sim.shape[0])
    i2t = torch.full_like(sim, -100.0)
    top = sim.topk(k_i, dim=1).indices  # (images, k) texts
    rows = torch.arange(sim.shape[0]).repeat_interleave(k_i)
    score = match_probability(model, t_states[top.flatten()], t_mask[top.flatten()], i_states[rows])
    i2t[rows, top.flatten()] = score + sim[rows, top.flatten()]
    t2i = torch.full_like(sim, -100.0)
    top = sim.topk(k_t, dim=0).indices  # (k, texts) images
    cols = torch.arange(sim.shape[1]).repeat(k_t)
    imgs = top.flatten()
    score = match_probability(model, t_states[cols], t_mask[cols], i_states[imgs])
    t2i[imgs, cols] = score + sim[imgs, cols]
    a = recall_at_k(i2t.cpu().numpy(), owner)
    b = recall_at_k(t2i.cpu().numpy(), owner)
    return {
        **{k_: v for k_, v in a.items() if k_.startswith("i2t")},
        **{k_: v for k_, v in b.items() if k_.startswith("t2i")},
    }


@torch.no_grad()
def hard_negative_itm(model, tokenizer, pairs: D.Pairs, negatives, encoded=None) -> dict:
    if not negatives:
        return {}
    i_states, _ = encoded or image_states(model, pairs.images)
    idx = torch.tensor([n.index for n in negatives])
    pos_s, pos_m, _, _ = text_states(model, tokenizer, [n.positive for n in negatives])
    neg_s, neg_m, _, _ = text_states(model, tokenizer, [n.negative for n in negatives])
    p = match_probability(model, pos_s, pos_m, i_states[idx])
    q = match_probability(model, neg_s, neg_m, i_states[idx])
    right = (p > q).cpu().numpy()
    attrs = np.array([n.attribute for n in negatives])
    out = {"itm_hard": float(right.mean())}
    for a in D.ATTRIBUTES:
        if (attrs == a).any():
            out[f"itm_hard_{a}"] = float(right[attrs == a].mean())
    return out


def _word_positions(tokenizer, ids: torch.Tensor, vocab: set[str]) -> list[tuple[int, int]]:
    """(row, position) of every token of ``ids`` that is one of the ``vocab`` words."""
    words = {tokenizer.convert_tokens_to_ids(w) for w in vocab}
    words.discard(tokenizer.unk_token_id)
    hits = torch.isin(ids, torch.tensor(sorted(words), device=ids.device))
    return [tuple(x) for x in hits.nonzero().tolist()]


@torch.no_grad()
def mlm_predictions(
    model, ids, mask, i_states, at: list[tuple[int, int]], mask_id: int, batch: int = 256
) -> np.ndarray:
    """Top-1 MLM prediction at each (row, position) with that one token masked."""
    out = []
    for sl in _chunks(len(at), batch):
        part = at[sl]
        rows = torch.tensor([r for r, _ in part])
        pos = torch.tensor([p for _, p in part])
        x = ids[rows].clone()
        x[torch.arange(len(part)), pos] = mask_id
        states, _ = model.encode_text(x, mask[rows])
        logits = model.mlm_head(model.fuse(states, mask[rows], i_states[rows]))
        out.append(logits[torch.arange(len(part)), pos].argmax(-1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


@torch.no_grad()
def visual_reliance(model, tokenizer, pairs: D.Pairs, encoded=None) -> dict:
    """MLM accuracy on masked attribute words with the image, with a blank image, and the
    difference (overall and for colour words, the words the bias makes guessable)."""
    device = model.mean.device
    caps = [cs[0] for cs in pairs.captions]
    enc = tokens(tokenizer, caps, text_length(model), device)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    i_states, _ = encoded or image_states(model, pairs.images)
    blank = np.broadcast_to(
        np.round(pairs.images.reshape(-1, 3).mean(0)).astype(np.uint8), pairs.images.shape
    )
    b_states, _ = image_states(model, np.ascontiguousarray(blank))
    out = {}
    for name, vocab in (
        ("attributes", [w for ws in D.ATTRIBUTE_WORDS.values() for w in ws]),
        ("colour", D.COLOUR_WORDS),
    ):
        at = _word_positions(tokenizer, ids, set(vocab))
        if not at:
            continue
        truth = np.array([int(ids[r, p]) for r, p in at])
        with_img = mlm_predictions(model, ids, mask, i_states, at, tokenizer.mask_token_id)
        with_blank = mlm_predictions(model, ids, mask, b_states, at, tokenizer.mask_token_id)
        acc, acc_blank = float((with_img == truth).mean()), float((with_blank == truth).mean())
        key = "" if name == "attributes" else "_colour"
        out[f"mlm_acc{key}"] = acc
        out[f"mlm_acc_blank{key}"] = acc_blank
        out[f"reliance{key}"] = acc - acc_blank
    return out


def _changed(pos_ids: list[int], neg_ids: list[int]) -> list[int]:
    """Positions of ``neg_ids`` that differ from ``pos_ids`` (replaced or inserted)."""
    sm = difflib.SequenceMatcher(a=pos_ids, b=neg_ids, autojunk=False)
    out = []
    for op, _, _, j1, j2 in sm.get_opcodes():
        if op in ("replace", "insert"):
            out += list(range(j1, j2))
    return out


@torch.no_grad()
def token_scores(model, tokenizer, ids, mask, i_states, scorer: str) -> torch.Tensor:
    """(B, L) inconsistency score of every token: 1 - sigmoid(consistency logit) (``head``),
    or 1 - p_MLM(token | the rest, image) with the token masked (``mlm``)."""
    if scorer == "head":
        states, _ = model.encode_text(ids, mask)
        logits = model.token_head(model.fuse(states, mask, i_states)).squeeze(-1).float()
        return 1 - torch.sigmoid(logits)
    out = torch.zeros(ids.shape)
    for j in range(ids.shape[1]):
        x = ids.clone()
        x[:, j] = tokenizer.mask_token_id
        states, _ = model.encode_text(x, mask)
        logits = model.mlm_head(model.fuse(states, mask, i_states))[:, j].float()
        p = F.softmax(logits, dim=-1).gather(1, ids[:, j : j + 1]).squeeze(1)
        out[:, j] = 1 - p.cpu()
    return out


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by ranks (ties share their mean rank)."""
    from scipy.stats import rankdata

    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def token_auc(
    model, tokenizer, pairs: D.Pairs, negatives, scorer: str, limit: int = 600, encoded=None
) -> dict:
    if not negatives:
        return {}
    negatives = negatives[:limit]
    device = model.mean.device
    texts = [n.positive for n in negatives] + [n.negative for n in negatives]
    enc = tokens(tokenizer, texts, text_length(model), device)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    idx = torch.tensor([n.index for n in negatives] * 2)
    i_states, _ = encoded or image_states(model, pairs.images)
    scores = []
    for sl in _chunks(len(texts), 256):
        scores.append(token_scores(model, tokenizer, ids[sl], mask[sl], i_states[idx[sl]], scorer))
    scores = torch.cat(scores).cpu().numpy()
    labels = np.zeros(ids.shape, np.int64)
    n = len(negatives)
    special = Tokens.of(tokenizer).special(ids).cpu().numpy()
    for i in range(n):
        pos = [int(t) for t, m in zip(ids[i], mask[i]) if m]
        neg = [int(t) for t, m in zip(ids[n + i], mask[n + i]) if m]
        for j in _changed(pos, neg):
            labels[n + i, j] = 1
    keep = (mask.cpu().numpy() == 1) & ~special
    return {"token_auc": auc(scores[keep], labels[keep]), "token_scorer": scorer}


def evaluate(model, tokenizer, pairs: D.Pairs, *, scorer: str, seed: int = 0) -> dict:
    model.eval()
    encoded = image_states(model, pairs.images)  # the test images, encoded once for every measure
    out = retrieval(model, tokenizer, pairs, encoded=encoded)
    negatives = D.hard_negatives(pairs.scenes, seed) if pairs.scenes else []
    out.update(hard_negative_itm(model, tokenizer, pairs, negatives, encoded))
    if pairs.scenes:
        out.update(visual_reliance(model, tokenizer, pairs, encoded))
        out.update(token_auc(model, tokenizer, pairs, negatives, scorer, encoded=encoded))
    return out

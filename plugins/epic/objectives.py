"""ALBEF's losses and EPIC's, one function per step of the method.

ALBEF (its pre-training code's choices):

- ITC: image and text features against the momentum features of the batch and the queues, at a
  learnable temperature; the targets mix the one-hot match with the momentum model's
  similarities (momentum distillation, weight ``alpha``). Ours: captions repeated in a batch
  (the world's short captions often are) share their one-hot mass instead of counting as
  negatives.
- ITM: each image meets a hard negative text and each text a hard negative image, drawn in
  proportion to the ITC similarity, never the pair itself nor a text equal to its caption.
- MLM: 15% of the words (80% [MASK], 10% a random word, 10% kept) predicted by the fusion with
  the image; distilled from the momentum model's predictions with the same ``alpha``.

EPIC on top:

1. :func:`saliency`: how much each word matters to the momentum model's image-text match.
2. :func:`pick`: the top ``mask_ratio`` share of a caption's words (never a special token).
3. :func:`replace`: each picked word becomes a sample of the text-only generator (trained on the
   same masks with its own MLM loss; no gradient through the sample) or a uniform random word;
   a sample equal to the original is a consistent word.
4. :func:`consistency_loss`: the fusion reads the corrupted caption with the image and says for
   every non-padding token whether it agrees with the image (binary cross-entropy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import OBJECTIVES

MLM_PROBABILITY = 0.15


@dataclass
class Tokens:
    """The ids a step needs from the tokenizer."""

    pad: int
    cls: int
    sep: int
    mask: int
    unk: int
    vocab: int

    @classmethod
    def of(cls, tokenizer) -> Tokens:
        return cls(
            pad=int(tokenizer.pad_token_id),
            cls=int(tokenizer.cls_token_id),
            sep=int(tokenizer.sep_token_id),
            mask=int(tokenizer.mask_token_id),
            unk=int(tokenizer.unk_token_id),
            vocab=len(tokenizer),
        )

    def special(self, ids: torch.Tensor) -> torch.Tensor:
        """True where a token is special (padding, [CLS], [SEP], [MASK], [UNK])."""
        out = torch.zeros_like(ids, dtype=torch.bool)
        for t in (self.pad, self.cls, self.sep, self.mask, self.unk):
            out |= ids == t
        return out

    def words(self, device=None) -> torch.Tensor:
        """Ids a replacement may take: the vocabulary less the special tokens."""
        ids = torch.arange(self.vocab, device=device)
        return ids[~self.special(ids)]


@dataclass
class Step:
    """What one training step computes."""

    tokens: Tokens
    objective: str = "epic"
    alpha: float = 0.4
    saliency: str = "attention"
    mask_ratio: float = 0.35
    replacement: str = "lm"
    epic_weight: float = 8.0
    itc: bool = True
    itm: bool = True
    mlm: bool = True
    temperature: float = 1.0  # the generator's sampling temperature
    dist: object = None  # mltk.device's Dist (gathers the queue's features across ranks)


# ---------------------------------------------------------------------------- ALBEF


def itc_loss(model, img_feat, txt_feat, img_feat_m, txt_feat_m, alpha, same=None):
    """ITC with the queues and momentum distillation; returns (loss, sim_i2t, sim_t2i) where
    the similarities are those of the batch (for ITM's negatives)."""
    temp = model.temp
    img_all = torch.cat([img_feat_m.T, model.image_queue.clone().detach()], dim=1)
    txt_all = torch.cat([txt_feat_m.T, model.text_queue.clone().detach()], dim=1)
    b = img_feat.shape[0]
    with torch.no_grad():
        hard = torch.eye(b, device=img_feat.device) if same is None else same.float()
        hard = hard / hard.sum(1, keepdim=True)
        targets = torch.zeros(b, img_all.shape[1], device=img_feat.device)
        targets[:, :b] = hard
        sim_i2t_m = img_feat_m @ txt_all / temp
        sim_t2i_m = txt_feat_m @ img_all / temp
        i2t_t = alpha * F.softmax(sim_i2t_m, dim=1) + (1 - alpha) * targets
        t2i_t = alpha * F.softmax(sim_t2i_m, dim=1) + (1 - alpha) * targets
    sim_i2t = img_feat @ txt_all / temp
    sim_t2i = txt_feat @ img_all / temp
    loss_i2t = -(F.log_softmax(sim_i2t, dim=1) * i2t_t).sum(1).mean()
    loss_t2i = -(F.log_softmax(sim_t2i, dim=1) * t2i_t).sum(1).mean()
    return (loss_i2t + loss_t2i) / 2, sim_i2t[:, :b], sim_t2i[:, :b]


def hard_negatives(sim: torch.Tensor, same: torch.Tensor | None = None) -> torch.Tensor:
    """For each row, a column drawn in proportion to softmax(sim), never the row's own pair
    (the diagonal) nor a column that ``same`` marks as equal to it (unless nothing else is
    left, then any other column)."""
    b = sim.shape[0]
    with torch.no_grad():
        w = F.softmax(sim.float(), dim=1) + 1e-5
        eye = torch.eye(b, dtype=torch.bool, device=sim.device)
        banned = eye if same is None else (same.bool() | eye)
        w = w.masked_fill(banned, 0.0)
        empty = w.sum(1) == 0
        if empty.any():
            w[empty] = (~eye[empty]).float()
        return torch.multinomial(w, 1).squeeze(1)


def itm_loss(model, txt_states, mask, img_states, sim_i2t, sim_t2i, same=None):
    """(loss, accuracy) of ITM over the batch's pairs and two hard negatives per pair."""
    b = txt_states.shape[0]
    neg_img = hard_negatives(sim_t2i, same)  # an image for each text
    neg_txt = hard_negatives(sim_i2t, same)  # a text for each image
    text_all = torch.cat([txt_states, txt_states, txt_states[neg_txt]])
    mask_all = torch.cat([mask, mask, mask[neg_txt]])
    img_all = torch.cat([img_states, img_states[neg_img], img_states])
    fused = model.fuse(text_all, mask_all, img_all)
    logits = model.itm_logits(fused)
    labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(2 * b, dtype=torch.long)]).to(
        logits.device
    )
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(1) == labels).float().mean()
    return loss, acc


def mlm_mask(ids: torch.Tensor, tokens: Tokens, probability: float = MLM_PROBABILITY):
    """BERT's masking: (input ids, labels with -100 where not predicted)."""
    labels = ids.clone()
    chosen = torch.bernoulli(torch.full(ids.shape, probability, device=ids.device)).bool()
    chosen &= ~tokens.special(ids)
    labels[~chosen] = -100
    out = ids.clone()
    to_mask = torch.bernoulli(torch.full(ids.shape, 0.8, device=ids.device)).bool() & chosen
    out[to_mask] = tokens.mask
    to_random = torch.bernoulli(torch.full(ids.shape, 0.5, device=ids.device)).bool()
    to_random &= chosen & ~to_mask
    words = tokens.words(ids.device)
    out[to_random] = words[torch.randint(len(words), (int(to_random.sum()),), device=ids.device)]
    return out, labels


def mlm_loss(model, ids, mask, img_states, img_states_m, tokens, alpha):
    """ALBEF's MLM with momentum distillation: (loss, accuracy on the masked words)."""
    masked, labels = mlm_mask(ids, tokens)
    states, _ = model.encode_text(masked, mask)
    logits = model.mlm_head(model.fuse(states, mask, img_states))
    picked = labels != -100
    if not picked.any():
        zero = logits.sum() * 0.0
        return zero, torch.tensor(float("nan"))
    loss = F.cross_entropy(logits[picked], labels[picked])
    if alpha > 0:
        with torch.no_grad():
            states_m, _ = model.encode_text(masked, mask, momentum=True)
            fused_m = model.fuse(states_m, mask, img_states_m, momentum=True)
            soft = F.softmax(model.mlm_head_m(fused_m)[picked], dim=-1)
        distill = -(F.log_softmax(logits[picked], dim=-1) * soft).sum(-1).mean()
        loss = (1 - alpha) * loss + alpha * distill
    acc = (logits[picked].argmax(-1) == labels[picked]).float().mean()
    return loss, acc


# ---------------------------------------------------------------------------- EPIC


def match_score(model, states, mask, img_states, momentum=True, attentions=False):
    """log p(match) of the ITM head on the (momentum) fusion of text states and image."""
    out = model.fuse(states, mask, img_states, momentum=momentum, attentions=attentions)
    fused = out.last_hidden_state if attentions else out
    score = F.log_softmax(model.itm_logits(fused).float(), dim=-1)[:, 1]
    return (score, out) if attentions else score


def saliency(
    model, ids, mask, img_states_m, tokens: Tokens, method: str = "attention", txt_states_m=None
):
    """(B, L) saliency of every token for the image, on the momentum model's ITM score;
    -inf at special and padding tokens (never picked). ``txt_states_m``: the momentum text
    tower's states of ``ids`` where the caller has them."""
    banned = tokens.special(ids) | (mask == 0)
    if method == "random":
        sal = torch.rand(ids.shape, device=ids.device)
        return sal.masked_fill(banned, float("-inf"))
    img = img_states_m.detach()
    if method == "occlusion":
        with torch.no_grad():
            states = txt_states_m
            if states is None:
                states, _ = model.encode_text(ids, mask, momentum=True)
            full = match_score(model, states, mask, img)
            sal = torch.zeros(ids.shape, device=ids.device)
            for j in range(ids.shape[1]):
                col = ~banned[:, j]
                if not col.any():
                    continue
                hidden = ids.clone()
                hidden[:, j] = tokens.mask
                st, _ = model.encode_text(hidden, mask, momentum=True)
                sal[:, j] = full - match_score(model, st, mask, img)
        return sal.masked_fill(banned, float("-inf"))
    with torch.enable_grad():
        states = txt_states_m
        if states is None:
            with torch.no_grad():
                states, _ = model.encode_text(ids, mask, momentum=True)
        states = states.detach().requires_grad_(True)
        if method == "gradient":
            score = match_score(model, states, mask, img)
            (grad,) = torch.autograd.grad(score.sum(), [states])
            sal = (grad * states).sum(-1).abs()
        elif method == "attention":  # Grad-CAM on the cross-attention, as ALBEF grounds words
            score, out = match_score(model, states, mask, img, attentions=True)
            maps = out.cross_attentions  # per layer (B, heads, L, image tokens)
            grads = torch.autograd.grad(score.sum(), list(maps))
            cams = [(a * g.clamp(min=0)).sum(dim=(1, 3)) for a, g in zip(maps, grads)]
            sal = torch.stack(cams).mean(0)
        else:
            raise ValueError(f"unknown saliency {method!r}")
    return sal.detach().float().masked_fill(banned, float("-inf"))


def word_counts(ids, mask, tokens: Tokens) -> torch.Tensor:
    return ((~tokens.special(ids)) & (mask == 1)).sum(1)


def pick(sal: torch.Tensor, ids, mask, tokens: Tokens, ratio: float) -> torch.Tensor:
    """(B, L) bool: the round(ratio x words) most salient words of each caption (at least
    one where a caption has a word)."""
    n = word_counts(ids, mask, tokens)
    k = torch.clamp((n.float() * ratio).round().long(), min=1)
    k = torch.minimum(k, n)
    order = sal.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(ids.shape[1], device=ids.device).expand_as(order))
    return (rank < k[:, None]) & torch.isfinite(sal)


def replace(model, ids, mask, picked, tokens: Tokens, how="lm", temperature=1.0):
    """(corrupted ids, generator loss): the picked words replaced by samples; the loss is the
    generator's MLM loss on the picked positions (zero for uniform replacement)."""
    corrupted = ids.clone()
    words = tokens.words(ids.device)
    if not picked.any():
        return corrupted, ids.new_zeros((), dtype=torch.float)
    if how == "uniform":
        corrupted[picked] = words[
            torch.randint(len(words), (int(picked.sum()),), device=ids.device)
        ]
        return corrupted, torch.zeros((), device=ids.device)
    masked = ids.masked_fill(picked, tokens.mask)
    logits = model.generator(input_ids=masked, attention_mask=mask).logits[picked]
    loss = F.cross_entropy(logits.float(), ids[picked])
    with torch.no_grad():
        allowed = torch.full((tokens.vocab,), float("-inf"), device=ids.device)
        allowed[words] = 0.0
        probs = F.softmax(logits.detach().float() / temperature + allowed, dim=-1)
        corrupted[picked] = torch.multinomial(probs, 1).squeeze(1)
    return corrupted, loss


def consistency_loss(model, corrupted, ids, mask, img_states):
    """BCE of the consistency head over every non-padding token (1: the token is the
    caption's own, or a sample equal to it); returns (loss, accuracy, logits, labels)."""
    states, _ = model.encode_text(corrupted, mask)
    fused = model.fuse(states, mask, img_states)
    logits = model.token_head(fused).squeeze(-1).float()
    labels = (corrupted == ids).float()
    keep = mask == 1
    loss = F.binary_cross_entropy_with_logits(logits[keep], labels[keep])
    acc = ((logits[keep] > 0).float() == labels[keep]).float().mean()
    return loss, acc, logits, labels


def salient_mlm_loss(model, ids, mask, picked, img_states, tokens: Tokens):
    """The salient-mask ablation: the picked words masked and predicted with the image."""
    masked = ids.masked_fill(picked, tokens.mask)
    states, _ = model.encode_text(masked, mask)
    logits = model.mlm_head(model.fuse(states, mask, img_states))
    if not picked.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[picked].float(), ids[picked])


# ---------------------------------------------------------------------------- one step


def losses(model, batch: dict, s: Step) -> dict:
    """Every loss term of one step and their weighted sum (``loss``)."""
    px, ids, mask = batch["pixel_values"], batch["input_ids"], batch["attention_mask"]
    same = batch.get("same_caption")
    out: dict = {}
    total = 0.0
    model.clamp_temp()
    img_states, img_feat = model.encode_image(px)
    txt_states, txt_feat = model.encode_text(ids, mask)
    with torch.no_grad():
        model.momentum_update()
        img_states_m, img_feat_m = model.encode_image(px, momentum=True)
        txt_states_m, txt_feat_m = model.encode_text(ids, mask, momentum=True)
    sim_i2t = sim_t2i = None
    if s.itc or s.itm:
        loss_itc, sim_i2t, sim_t2i = itc_loss(
            model, img_feat, txt_feat, img_feat_m, txt_feat_m, s.alpha, same
        )
        if s.itc:
            out["itc"] = loss_itc
            total = total + loss_itc
    if s.itm:
        out["itm"], out["itm_acc"] = itm_loss(
            model, txt_states, mask, img_states, sim_i2t.detach(), sim_t2i.detach(), same
        )
        total = total + out["itm"]
    if s.mlm:
        out["mlm"], out["mlm_acc"] = mlm_loss(
            model, ids, mask, img_states, img_states_m, s.tokens, s.alpha
        )
        total = total + out["mlm"]
    extra = OBJECTIVES[s.objective]
    if extra is not None:
        masking, replacement, head = extra
        how = "random" if masking == "random" else s.saliency
        sal = saliency(model, ids, mask, img_states_m, s.tokens, how, txt_states_m)
        picked = pick(sal, ids, mask, s.tokens, s.mask_ratio)
        if head == "mlm":
            out["salient_mlm"] = salient_mlm_loss(model, ids, mask, picked, img_states, s.tokens)
            total = total + out["salient_mlm"]
        else:
            how = s.replacement if replacement == "lm" else replacement
            corrupted, out["generator"] = replace(
                model, ids, mask, picked, s.tokens, how, s.temperature
            )
            loss, out["token_acc"], _, labels = consistency_loss(
                model, corrupted, ids, mask, img_states
            )
            out["consistency"] = loss
            out["replaced"] = (labels[mask == 1] == 0).float().mean()
            total = total + s.epic_weight * loss + out["generator"]
    out["loss"] = total
    with torch.no_grad():
        feats = (img_feat_m, txt_feat_m)
        if s.dist is not None and getattr(s.dist, "enabled", False):
            feats = tuple(s.dist.gather(f) for f in feats)
        model.enqueue(*feats)  # after the loss: ITC used a copy of the queues
    return out

"""AntNet (Yang et al., arXiv:1912.00398) and the two neural baselines it is measured against,
all over the same encoders (encoders.py) and the same heads.

The question side is one text: the question, then each option after a separator, so that an
option is a character span of it. For each example the model gives

- a global class over labels.KINDS (the classes a question cannot take are masked: a yes/no
  question takes yes/no/uncertain, one with options uncertain/none/select), and
- one logit per option, used when the class is `select` (one, several or all options).

AntNet's three modules, in the order of `AntNet.forward`:

1. Skeleton extraction: an attention over the question side's tokens,
   s = softmax(w_s^T tanh(W_s h_i)), supervised (where the data gives them) towards the
   predicate and the option spans; q = sum_i s_i h_i is the skeleton summary. The authors' code
   instead pools tokens tagged "type" and "target" by a separate tagger (not released).
2. Relevance-aware answer: each answer token a_j weighted by its relevance to the skeleton,
   r_j = sigmoid(max_i (s_i / max s) * (W_r a_j) . h_i / sqrt(d) + b_r), a~_j = r_j a_j; and per
   option, match features: the best and the mean-best cosine between answer tokens and the
   option's tokens.
3. Multi-hop fusion (RAM-style, as the authors' code: e_0 = 0, three hops):
   g_j = w^T [a~_j; e_{k-1}; q] + b, alpha = softmax(g), c = sum_j alpha_j a~_j,
   e_k = GRU(c, e_{k-1}). Heads on [e_K; q].

The option head (shared by all architectures): o_k = the option span's mean state plus
embeddings of its place (k, and "last"); c_k = the answer tokens attended with o_k as query;
score_k = w^T tanh(W [W_b u; o_k; c_k; o_k * c_k]) (+ v^T m_k, AntNet's match features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import labels as L

ARCHITECTURES = ("antnet", "concat", "interactive")
NEG = -1e4


@dataclass
class Batch:
    side: tuple  # (states (N, S, D), mask (N, S), offsets, embeddings (N, S, E)), question side
    answer: tuple  # (states (N, A, D), mask (N, A), offsets, embeddings (N, A, E))
    texts: tuple  # (side texts, answer texts): what the offsets point into
    options: torch.Tensor  # (N, P, S) bool: the tokens of option k
    n_options: torch.Tensor  # (N,)
    skeleton: torch.Tensor  # (N, S) float: supervision target (0 where none)
    allowed: torch.Tensor  # (N, 5) bool: the classes the question takes
    kind: torch.Tensor | None = None  # (N,) class index
    chosen: torch.Tensor | None = None  # (N, P) float


def _span_mask(offsets: list, spans: list, length: int) -> torch.Tensor:
    m = torch.zeros(length, dtype=torch.bool)
    for t, (s, e) in enumerate(offsets[:length]):
        if e > s and any(s < b and e > a for a, b in spans):
            m[t] = True
    return m


def side_text(example, sep: str) -> tuple[str, list[tuple[int, int]]]:
    """The question then the options, and each option's character span in that text."""
    text, spans = example.question, []
    for o in example.options:
        text += sep
        spans.append((len(text), len(text) + len(o)))
        text += o
    return text, spans


def make_batch(examples, encoder, joint: bool = False) -> Batch:
    """Encode a list of records.Example. `joint`: one sequence, side + answer (the concat
    baseline and a cross-encoder), split back into its two spans."""
    sides = [side_text(e, encoder.sep) for e in examples]
    p = max(1, max(len(e.options) for e in examples))
    if joint:
        texts = [s + encoder.sep + e.answer for (s, _), e in zip(sides, examples)]
        states, mask, offsets, embeds = encoder.encode(texts)
        n, length = mask.shape
        cut = [len(s) + len(encoder.sep) for s, _ in sides]
        in_side = torch.stack(
            [_span_mask(o, [(0, c - len(encoder.sep))], length) for o, c in zip(offsets, cut)]
        ).to(mask.device)
        side = (states, mask & in_side, offsets, embeds)
        answer = (states, mask & ~in_side, offsets, embeds)
        shown = (texts, texts)
    else:
        side = encoder.encode([s for s, _ in sides])
        answer = encoder.encode([e.answer for e in examples])
        n, length = side[1].shape
        shown = ([s for s, _ in sides], [e.answer for e in examples])
    options = torch.zeros(n, p, length, dtype=torch.bool)
    skeleton = torch.zeros(n, length)
    for i, ((_, spans), e) in enumerate(zip(sides, examples)):
        for k, span in enumerate(spans):
            options[i, k] = _span_mask(side[2][i], [span], length)
        marked = _span_mask(side[2][i], list(e.skeleton) + spans, length).float()
        if marked.sum() > 0:
            skeleton[i] = marked / marked.sum()
    allowed = torch.tensor(
        [[k in (L.OPTION_KINDS if e.options else L.YESNO_KINDS) for k in L.KINDS] for e in examples]
    )
    dev = side[1].device
    batch = Batch(
        side,
        answer,
        shown,
        options.to(dev) & side[1][:, None],
        torch.tensor([len(e.options) for e in examples], device=dev),
        skeleton.to(dev),
        allowed.to(dev),
    )
    if all(e.label is not None for e in examples):
        batch.kind = torch.tensor([L.KINDS.index(e.label.kind) for e in examples], device=dev)
        chosen = torch.zeros(n, p)
        for i, e in enumerate(examples):
            chosen[i, list(e.label.chosen)] = 1.0
        batch.chosen = chosen.to(dev)
    return batch


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, NEG), dim=-1) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (N, T, D), mask (N, T) -> (N, D)"""
    m = mask.float()
    return (x * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x.masked_fill(~mask[..., None], NEG).max(1).values * mask.any(1, keepdim=True)


class SkeletonExtraction(nn.Module):
    """Module 1: s = softmax_i(w_s^T tanh(W_s h_i)) over the question side; q = sum_i s_i h_i."""

    def __init__(self, d: int, uniform: bool = False):
        super().__init__()
        self.uniform = uniform
        self.proj, self.score = nn.Linear(d, d), nn.Linear(d, 1, bias=False)

    def forward(self, h, mask):
        if self.uniform:
            s = mask.float() / mask.float().sum(1, keepdim=True).clamp(min=1.0)
        else:
            s = masked_softmax(self.score(torch.tanh(self.proj(h))).squeeze(-1), mask)
        return s, torch.einsum("ns,nsd->nd", s, h)  # (N, S), (N, D)


class RelevanceAwareAnswer(nn.Module):
    """Module 2: r_j = sigmoid(max_i s~_i (W_r a_j) . h_i / sqrt(d) + b_r); a~_j = r_j a_j."""

    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(d, d, bias=False)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, a, a_mask, h, h_mask, s):
        sim = torch.einsum("nad,nsd->nas", self.proj(a), h) / math.sqrt(h.shape[-1])
        weight = s / s.max(1, keepdim=True).values.clamp(min=1e-9)  # (N, S), the top token 1
        rel = (weight[:, None] * sim).masked_fill(~h_mask[:, None], NEG).max(-1).values
        r = torch.sigmoid(rel + self.bias) * a_mask  # (N, A)
        return r[..., None] * a, r


def option_match(batch, relevance=None, attention=None) -> torch.Tensor:
    """(N, P, F): how much the answer speaks of each option, as cosines between answer tokens
    and the option's tokens, on the input embeddings (the same word scores 1) and on the
    contextual states: the best over answer tokens, the mean of each token's best, and the
    best and the sum weighted by the answer tokens' relevance and fusion attention."""
    a_mask, options = batch.answer[1], batch.options
    weights = [w for w in (relevance, attention) if w is not None]
    feats = []
    for k in (3, 0):  # embeddings, states
        a = F.normalize(batch.answer[k].float(), dim=-1)
        side = F.normalize(batch.side[k].float(), dim=-1)
        cos = torch.einsum("nad,nsd->nas", a, side)
        per = cos[:, None].masked_fill(~options[:, :, None], -1.0).max(-1).values  # (N, P, A)
        per = per.masked_fill(~a_mask[:, None], 0.0)
        feats.append(per.max(-1).values)
        feats.append(per.sum(-1) / a_mask.sum(-1, keepdim=True).clamp(min=1))
        for w in weights:  # (N, A)
            feats.append((per * w[:, None]).max(-1).values)
            feats.append((per * w[:, None]).sum(-1))
    return torch.stack(feats, -1) * options.any(-1)[..., None]


class MultiHopFusion(nn.Module):
    """Module 3: g_j = w^T [a~_j; e; q] + b, c = sum_j softmax(g)_j a~_j, e = GRU(c, e), K hops."""

    def __init__(self, d: int, hops: int = 3):
        super().__init__()
        self.hops = hops
        self.score = nn.Linear(3 * d, 1)
        self.gru = nn.GRUCell(d, d)

    def forward(self, a, a_mask, q):
        e, weights = torch.zeros_like(q), []
        for _ in range(self.hops):
            both = torch.cat([a, e[:, None].expand_as(a), q[:, None].expand_as(a)], -1)
            alpha = masked_softmax(self.score(both).squeeze(-1), a_mask)  # (N, A)
            e = self.gru(torch.einsum("na,nad->nd", alpha, a), e)
            weights.append(alpha)
        return e, torch.stack(weights, 1)  # (N, D), (N, K, A)


@dataclass
class Output:
    kind_logits: torch.Tensor  # (N, 5), masked
    option_logits: torch.Tensor  # (N, P), masked
    skeleton: torch.Tensor | None = None  # (N, S)
    relevance: torch.Tensor | None = None  # (N, A)
    hops: torch.Tensor | None = None  # (N, K, A)


class AnswerModel(nn.Module):
    """An encoder, one of ARCHITECTURES and the shared heads."""

    def __init__(
        self,
        encoder: nn.Module,
        architecture: str = "antnet",
        hidden: int = 128,
        hops: int = 3,
        skeleton: bool = True,
        relevance: bool = True,
        dropout: float = 0.2,
        max_options: int = 8,
    ):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        self.encoder, self.architecture = encoder, architecture
        self.settings = {
            "architecture": architecture,
            "hidden": hidden,
            "hops": hops,
            "skeleton": skeleton,
            "relevance": relevance,
            "dropout": dropout,
            "max_options": max_options,
        }
        d = hidden
        self.proj = nn.Linear(encoder.dim, d)
        self.drop = nn.Dropout(dropout)
        self.match = None
        if architecture == "antnet":
            self.skeleton = SkeletonExtraction(d, uniform=not skeleton)
            self.relevance = RelevanceAwareAnswer(d) if relevance else None
            self.fusion = MultiHopFusion(d, hops)
            self.match = nn.Linear(12, d) if relevance else None
        elif architecture == "interactive":  # IAN: each side attends the other's pooled state
            self.attend_side = nn.Bilinear(d, d, 1)
            self.attend_answer = nn.Bilinear(d, d, 1)
        summary = 2 * d
        self.kind_head = nn.Sequential(
            nn.Linear(summary, d), nn.Tanh(), nn.Dropout(dropout), nn.Linear(d, len(L.KINDS))
        )
        self.option_query = nn.Linear(summary, d)
        self.place = nn.Embedding(max_options, d)
        self.last = nn.Parameter(torch.zeros(d))
        if self.match is None:  # the option head without match features
            self.option_attend = nn.Linear(d, d, bias=False)
        self.option_score = nn.Sequential(nn.Linear(4 * d, d), nn.Tanh(), nn.Linear(d, 1))

    @property
    def joint(self) -> bool:
        return self.architecture == "concat"

    def forward(self, batch: Batch) -> Output:
        h = self.drop(self.proj(batch.side[0]))  # (N, S, d)
        h_mask = batch.side[1]
        a = self.drop(self.proj(batch.answer[0]))  # (N, A, d)
        a_mask = batch.answer[1]
        out = Output(None, None)
        if self.architecture == "antnet":
            out.skeleton, q = self.skeleton(h, h_mask)
            if self.relevance is not None:
                a, out.relevance = self.relevance(a, a_mask, h, h_mask, out.skeleton)
            e, out.hops = self.fusion(a, a_mask, q)
            summary = torch.cat([e, q], -1)
        elif self.architecture == "interactive":
            hq, ha = masked_mean(h, h_mask), masked_mean(a, a_mask)
            ws = masked_softmax(
                self.attend_side(h, ha[:, None].expand_as(h).contiguous()).squeeze(-1), h_mask
            )
            wa = masked_softmax(
                self.attend_answer(a, hq[:, None].expand_as(a).contiguous()).squeeze(-1), a_mask
            )
            out.skeleton, out.relevance = ws, wa
            summary = torch.cat(
                [torch.einsum("ns,nsd->nd", ws, h), torch.einsum("na,nad->nd", wa, a)], -1
            )
        else:  # concat: one sequence, pooled
            both = h_mask | a_mask
            summary = torch.cat([masked_max(h, both), masked_mean(h, both)], -1)
        kind = self.kind_head(summary).masked_fill(~batch.allowed, NEG)
        out.kind_logits = kind
        out.option_logits = self._options(summary, h, batch, a, a_mask, out)
        return out

    def _options(self, summary, h, batch, a, a_mask, out):
        """Per option: the summary, its place, and either what the answer says of it (the
        option-match features: AntNet) or the option's and the answer's states (the rest)."""
        n, p, _ = batch.options.shape
        places = torch.arange(p, device=h.device).clamp(max=self.place.num_embeddings - 1)
        is_last = places[None] == (batch.n_options[:, None] - 1)  # (N, P)
        place = self.place(places)[None] + is_last[..., None] * self.last  # (N, P, d)
        q = self.option_query(summary)[:, None].expand_as(place)
        if self.architecture == "antnet" and self.match is not None:
            hop = out.hops[:, -1] if out.hops is not None else None
            m = self.match(option_match(batch, out.relevance, hop))  # (N, P, d)
            score = self.option_score(torch.cat([q, place, m, place * m], -1))
        else:
            o = torch.einsum("nps,nsd->npd", batch.options.float(), h)
            o = o / batch.options.sum(-1, keepdim=True).clamp(min=1) + place
            att = torch.einsum("npd,nad->npa", self.option_attend(o), a) / math.sqrt(o.shape[-1])
            c = torch.einsum("npa,nad->npd", masked_softmax(att, a_mask[:, None]), a)
            score = self.option_score(torch.cat([q, o, c, o * c], -1))
        valid = places[None] < batch.n_options[:, None]
        return score.squeeze(-1).masked_fill(~valid, NEG)


def losses(out: Output, batch: Batch, skeleton_weight: float = 0.0) -> torch.Tensor:
    """(N,) per example: cross-entropy of the class, BCE of the chosen options (for select),
    and the skeleton's KL divergence from its marked tokens (where marked)."""
    loss = F.cross_entropy(out.kind_logits, batch.kind, reduction="none")
    valid = out.option_logits > NEG / 2
    bce = F.binary_cross_entropy_with_logits(out.option_logits, batch.chosen, reduction="none")
    is_select = (batch.kind == L.KINDS.index("select")).float()
    loss = loss + is_select * (bce * valid).sum(1) / valid.sum(1).clamp(min=1)
    if skeleton_weight > 0 and out.skeleton is not None:
        t = batch.skeleton  # KL(target || s): zero when s puts its mass on the marked tokens
        kl = (t * (torch.log(t + 1e-9) - torch.log(out.skeleton + 1e-9))).sum(1)
        loss = loss + skeleton_weight * kl
    return loss


def decide(out: Output, n_options: list[int]) -> list[tuple[L.Label, list[float], list[float]]]:
    """Per example: the label, the class probabilities, the option probabilities. A `select`
    whose options all fall under 0.5 takes its most likely option."""
    probs = torch.softmax(out.kind_logits.float(), -1).tolist()
    opts = torch.sigmoid(out.option_logits.float()).tolist()
    made = []
    for pk, po, n in zip(probs, opts, n_options):
        kind = L.KINDS[max(range(len(pk)), key=pk.__getitem__)]
        po = po[:n]
        if kind == "select":
            chosen = [k for k, v in enumerate(po) if v > 0.5] or [max(range(n), key=po.__getitem__)]
            label = L.Label.select(chosen)
        else:
            label = L.Label(kind)
        made.append((label, pk, po))
    return made

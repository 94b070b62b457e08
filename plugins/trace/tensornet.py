"""Distributions over architectures that follow the supernet's topology: a tensor network with
one core per multi-choice edge (TRACE).

An architecture of a chain supernet is one choice per edge, ``(k_1, ..., k_L)``: an index into a
K_1 x ... x K_L tensor. TRACE writes its probability as a tensor network mirroring the supernet;
for a chain that is a tensor train

    P(k_1..k_L) = G_1[k_1] G_2[k_2] ... G_L[k_L],      G_l[k] a D_{l-1} x D_l matrix, D_0 = D_L = 1.

Our parametrisation keeps every core row-stochastic, ``G_l[a, k, b] = p(k, b | a)`` (a softmax
over the pairs (k, b) for each bond value a), so P sums to one without a normaliser: the bonds
are the hidden states of an HMM that emits the choices. Consequences used below:

- the probability of a prefix ``(k_1..k_l)`` is the sum of its forward vector (every suffix
  sums to one), so marginals need no backward pass and best-first search over prefixes finds
  the exact top chains in order (a prefix's probability bounds every completion);
- ancestral sampling draws (k_l, b_l) from row b_{l-1} of core l.

Three families, all expressed as such cores so every algorithm serves all three:

- ``independent``: D = 1, one softmax per edge (DARTS, GTN, Neural-LP style);
- ``cp``: rank R, ``sum_c pi_c prod_l p_l^c(k_l)`` (DRUM's rank-R form): cores whose bond is the
  mixture component, carried unchanged along the chain (the topology-blind ablation);
- ``tt``: rank D, the full row-stochastic tensor train (TRACE).

Every distribution holds ``heads`` independent copies (one per query relation in rule
learning); the cores have shape (H, D_{l-1}, K_l, D_l).
"""

from __future__ import annotations

import heapq
import itertools

import torch
from torch import nn

DECOMPOSITIONS = ("tt", "cp", "independent")


class ChainDistribution(nn.Module):
    def __init__(
        self,
        choices: list[int],
        *,
        decomp: str = "tt",
        rank: int = 4,
        heads: int = 1,
        init_scale: float = 0.01,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if decomp not in DECOMPOSITIONS:
            raise ValueError(f"decomposition {decomp!r} is not one of {', '.join(DECOMPOSITIONS)}")
        if not choices or min(choices) < 1 or rank < 1:
            raise ValueError("a chain needs at least one edge, one choice per edge and rank >= 1")
        self.choices, self.decomp, self.heads = list(choices), decomp, heads
        self.rank = 1 if decomp == "independent" else rank
        L, D = len(choices), self.rank

        def noise(*shape):
            return init_scale * torch.randn(*shape, generator=generator)

        if decomp == "cp":
            self.mix = nn.Parameter(noise(heads, D))
            self.logits = nn.ParameterList([nn.Parameter(noise(heads, D, k)) for k in choices])
        else:
            dims = [1] + [D] * (L - 1) + [1]
            self.logits = nn.ParameterList(
                [nn.Parameter(noise(heads, dims[j], k, dims[j + 1])) for j, k in enumerate(choices)]
            )

    @property
    def length(self) -> int:
        return len(self.choices)

    def cores(self) -> list[torch.Tensor]:
        """G_l of shape (H, D_{l-1}, K_l, D_l), each row (h, a) a distribution over (k, b)."""
        if self.decomp != "cp":
            out = []
            for g in self.logits:
                h, a, k, b = g.shape
                out.append(torch.softmax(g.reshape(h, a, k * b), dim=-1).reshape(h, a, k, b))
            return out
        pi = torch.softmax(self.mix, dim=-1)  # (H, R)
        out = []
        for j, g in enumerate(self.logits):
            p = torch.softmax(g, dim=-1)  # (H, R, K): component c's choice at edge l
            if j == 0:  # from the single start state to component c, emitting k
                core = (pi[:, :, None] * p).transpose(1, 2)[:, None]  # (H, 1, K, R)
            else:  # component c stays c
                eye = torch.eye(self.rank, dtype=p.dtype, device=p.device)
                core = p[:, :, :, None] * eye[None, :, None, :]  # (H, R, K, R)
            if j == self.length - 1:
                core = core.sum(-1, keepdim=True)  # close the bond: (H, D, K, 1)
            out.append(core)
        return out


# --- algorithms on cores (H, D_{l-1}, K, D_l) -----------------------------------------------


def log_prob(cores: list[torch.Tensor], chains: torch.Tensor, head: int = 0) -> torch.Tensor:
    """log P of each chain (n, L) under head ``head``."""
    v = torch.ones(chains.shape[0], 1, dtype=cores[0].dtype, device=cores[0].device)
    for j, g in enumerate(cores):
        v = torch.einsum("na,nab->nb", v, g[head][:, chains[:, j], :].transpose(0, 1))
    return v.sum(-1).clamp_min(1e-300).log()


def log_prob_rows(
    cores: list[torch.Tensor], chains: torch.Tensor, heads: torch.Tensor
) -> torch.Tensor:
    """log P of chain i (n, L) under head ``heads[i]``: one chain per row, mixed heads."""
    n = chains.shape[0]
    v = torch.ones(n, 1, dtype=cores[0].dtype, device=cores[0].device)
    for j, g in enumerate(cores):
        v = torch.einsum("na,nab->nb", v, g[heads, :, chains[:, j], :])  # (n, D_l)
    return v.sum(-1).clamp_min(1e-300).log()


def sample_rows(
    cores: list[torch.Tensor], heads: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One chain per row, row i drawn from head ``heads[i]`` (ancestrally, as ``sample``)."""
    n = len(heads)
    state = torch.zeros(n, dtype=torch.long, device=cores[0].device)
    out = []
    for g in cores:
        rows = g[heads, state]  # (n, K, D)
        k, d = rows.shape[1:]
        flat = torch.multinomial(rows.reshape(n, k * d), 1, generator=generator).squeeze(1)
        out.append(flat // d)
        state = flat % d
    return torch.stack(out, dim=1)


def marginals(cores: list[torch.Tensor]) -> list[torch.Tensor]:
    """p(k_l) for each edge: (H, K_l) each. The bonds' forward vectors suffice (see above)."""
    alpha = torch.ones(cores[0].shape[0], 1, dtype=cores[0].dtype, device=cores[0].device)
    out = []
    for g in cores:
        joint = torch.einsum("ha,hakb->hkb", alpha, g)
        out.append(joint.sum(-1))
        alpha = joint.sum(1)
    return out


def sample(
    cores: list[torch.Tensor], n: int, head: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n chains (n, L) drawn ancestrally: (k_l, b_l) from row b_{l-1} of core l."""
    state = torch.zeros(n, dtype=torch.long, device=cores[0].device)
    out = []
    for g in cores:
        rows = g[head][state]  # (n, K, D)
        k, d = rows.shape[1:]
        flat = torch.multinomial(rows.reshape(n, k * d), 1, generator=generator).squeeze(1)
        out.append(flat // d)
        state = flat % d
    return torch.stack(out, dim=1)


def viterbi(cores: list[torch.Tensor], head: int = 0) -> tuple[list[int], float]:
    """The most probable joint path of choices and bond values (max-product)."""
    score = torch.zeros(1, dtype=cores[0].dtype, device=cores[0].device)  # log, per bond value
    back = []
    for g in cores:
        cand = score[:, None, None] + g[head].clamp_min(1e-300).log()  # (a, K, b)
        a_k = cand.reshape(-1, cand.shape[-1])  # ((a, k), b)
        best, arg = a_k.max(dim=0)
        back.append((arg, cand.shape[1]))
        score = best
    b = 0  # D_L = 1
    chain = []
    for arg, k in reversed(back):
        ak = int(arg[b])
        chain.append(ak % k)
        b = ak // k
    return chain[::-1], float(score[0].exp())


def top_chains(
    cores: list[torch.Tensor], k: int = 1, head: int = 0, min_prob: float = 0.0
) -> list[tuple[list[int], float]]:
    """The k most probable chains with their exact probabilities, most probable first.

    Best-first search over prefixes: a prefix's probability (the sum of its forward vector) is
    at least that of any of its completions, so complete chains leave the queue in order.
    """
    gs = [g[head].detach().double().cpu() for g in cores]
    tie = itertools.count()
    queue = [(-1.0, next(tie), (), torch.ones(1, dtype=torch.float64))]
    out: list[tuple[list[int], float]] = []
    while queue and len(out) < k:
        neg, _, prefix, alpha = heapq.heappop(queue)
        if -neg < min_prob:
            break
        if len(prefix) == len(gs):
            out.append((list(prefix), -neg))
            continue
        nxt = torch.einsum("a,akb->kb", alpha, gs[len(prefix)])  # (K, D)
        probs = nxt.sum(-1)
        for choice in torch.nonzero(probs > 0).flatten().tolist():
            heapq.heappush(
                queue, (-float(probs[choice]), next(tie), (*prefix, choice), nxt[choice])
            )
    return out


def top_paths(
    cores: list[torch.Tensor],
    skip: int,
    k: int,
    *,
    min_prob: float = 0.0,
    beam: int | None = None,
    allowed=None,
    accept=None,
) -> list[tuple[list[int], float]]:
    """The k most probable *paths*, a path being a chain with its ``skip`` steps (the
    identity) dropped: P(path) sums over every chain that reduces to it. Exact, most probable
    first. ``cores``: one head's cores, (D_{l-1}, K, D_l) each.

    Best-first over prefixes s of the path. ``f_s[l]`` (D_l,) is the forward vector of "the
    first l choices, skips dropped, read s":

        f_()[l] = f_()[l-1] G_l[:, skip, :]
        f_{s+x}[l] = f_{s+x}[l-1] G_l[:, skip, :] + f_s[l-1] G_l[:, x, :]

    The cores are row-stochastic, so sum f_s[L] = P(path = s), and
    sum_l sum(f_s[l-1] G_l[:, x, :]) = P(the path starts with s + x) bounds every extension:
    paths leave the queue in order, and a prefix below ``min_prob`` is never extended.
    ``allowed(s, x)``: whether s may be extended by x; ``accept(s)``: whether s is reported.

    ``beam``: extend at most that many prefixes of each length, the most probable (they leave
    the queue first): a beam search inside the best-first one, which bounds the work on a
    nearly uniform distribution (where every short prefix outranks every whole path). Exact
    whenever no length reaches ``beam`` extensions.
    """
    import numpy as np

    gs = [g.detach().double().cpu().numpy() for g in cores]
    length, n_ops = len(gs), gs[0].shape[1]
    stay = [g[:, skip, :] for g in gs]  # (D_{l-1}, D_l)
    empty = [np.ones(1)]
    for m in stay:
        empty.append(empty[-1] @ m)
    tie = itertools.count()
    queue = [(-1.0, next(tie), (), empty, False)]
    out: list[tuple[list[int], float]] = []
    extended = [0] * (length + 1)
    while queue and len(out) < k:
        neg, _, s, f_s, complete = heapq.heappop(queue)
        if -neg < min_prob:
            break
        if complete:
            out.append((list(s), -neg))
            continue
        if beam is not None:
            if extended[len(s)] >= beam:
                continue
            extended[len(s)] += 1
        exact = float(f_s[length].sum())
        if exact > 0 and (accept is None or accept(s)):
            heapq.heappush(queue, (-exact, next(tie), s, f_s, True))
        if len(s) == length:
            continue
        # every extension x at once: f[l] (K, D_l)
        f = [np.zeros((n_ops, 1))]
        bound = np.zeros(n_ops)
        for i, g in enumerate(gs):
            step = np.einsum("a,akb->kb", f_s[i], g)  # (K, D_i)
            bound += step.sum(1)
            f.append(f[i] @ stay[i] + step)
        for x in np.flatnonzero(bound >= max(min_prob, 1e-300)).tolist():
            if x == skip or (allowed is not None and not allowed(s, x)):
                continue
            heapq.heappush(
                queue, (-float(bound[x]), next(tie), (*s, x), [fi[x] for fi in f], False)
            )
    return out

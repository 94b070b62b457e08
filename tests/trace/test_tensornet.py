"""The distributions over chains: exact against brute-force enumeration of all K^L chains."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from mltk_plugins.trace.tensornet import (
    ChainDistribution,
    log_prob,
    marginals,
    sample,
    top_chains,
    viterbi,
)

CHOICES = [3, 4, 2, 3]


def _dist(decomp, rank=3, seed=0, heads=2):
    g = torch.Generator().manual_seed(seed)
    d = ChainDistribution(
        CHOICES, decomp=decomp, rank=rank, heads=heads, init_scale=1.0, generator=g
    ).double()
    return d.requires_grad_(False)  # the tests read numbers, not gradients


def _brute(cores, head=0):
    """P of every chain by summing over every bond assignment:
    sum_b prod_l G_l[b_{l-1}, k_l, b_l]."""
    gs = [c[head].detach().numpy() for c in cores]
    dims = [g.shape[0] for g in gs] + [1]
    out = {}
    for chain in itertools.product(*[range(g.shape[1]) for g in gs]):
        total = 0.0
        for bonds in itertools.product(*[range(d) for d in dims[1:-1]]):
            b = (0, *bonds, 0)
            total += np.prod([gs[j][b[j], chain[j], b[j + 1]] for j in range(len(gs))])
        out[chain] = total
    return out


@pytest.mark.parametrize("decomp", ["tt", "cp", "independent"])
def test_the_contraction_equals_brute_force_enumeration(decomp):
    d = _dist(decomp)
    cores = d.cores()
    for head in (0, 1):
        brute = _brute(cores, head)
        assert abs(sum(brute.values()) - 1) < 1e-12
        chains = torch.tensor(list(brute))
        got = log_prob(cores, chains, head).exp().detach().numpy()
        assert np.max(np.abs(got - np.array(list(brute.values())))) < 1e-12
        for j, m in enumerate(marginals(cores)):
            by_hand = np.zeros(CHOICES[j])
            for chain, p in brute.items():
                by_hand[chain[j]] += p
            assert np.max(np.abs(m[head].detach().numpy() - by_hand)) < 1e-12


def test_rank_one_is_exactly_independent_softmaxes():
    d = _dist("independent")
    p = log_prob(d.cores(), torch.tensor([[2, 1, 0, 2]]), head=1).exp()
    by_hand = 1.0
    for j, k in enumerate([2, 1, 0, 2]):
        by_hand *= torch.softmax(d.logits[j][1].reshape(-1), 0)[k]
    assert torch.equal(p[0], by_hand) or abs(float(p[0] - by_hand)) < 1e-15
    tt1 = ChainDistribution(CHOICES, decomp="tt", rank=1, heads=2).double()
    assert [c.shape for c in tt1.cores()] == [c.shape for c in d.cores()]


def test_cp_is_a_mixture_of_independent_chains():
    d = _dist("cp", rank=3)
    pi = torch.softmax(d.mix[0], 0)
    chain = [1, 3, 0, 2]
    by_hand = sum(
        pi[c]
        * np.prod([float(torch.softmax(d.logits[j][0, c], 0)[k]) for j, k in enumerate(chain)])
        for c in range(3)
    )
    got = log_prob(d.cores(), torch.tensor([chain]), head=0).exp()[0]
    assert abs(float(got) - float(by_hand)) < 1e-14


@pytest.mark.parametrize("decomp", ["tt", "cp", "independent"])
def test_top_chains_are_the_brute_force_order_and_max_product_its_joint_argmax(decomp):
    d = _dist(decomp)
    cores = d.cores()
    brute = _brute(cores, 0)
    ranked = sorted(brute.items(), key=lambda kv: -kv[1])
    top = top_chains(cores, k=5, head=0)
    assert [tuple(c) for c, _ in top] == [c for c, _ in ranked[:5]]
    assert np.allclose([p for _, p in top], [p for _, p in ranked[:5]], rtol=0, atol=1e-12)
    # max-product: the best joint assignment of choices and bond values
    gs = [c[0].detach().numpy() for c in cores]
    dims = [g.shape[0] for g in gs] + [1]
    best, arg = -1.0, None
    for chain in itertools.product(*[range(k) for k in CHOICES]):
        for bonds in itertools.product(*[range(x) for x in dims[1:-1]]):
            b = (0, *bonds, 0)
            p = np.prod([gs[j][b[j], chain[j], b[j + 1]] for j in range(len(gs))])
            if p > best:
                best, arg = p, list(chain)
    chain, p = viterbi(cores, head=0)
    assert chain == arg and abs(p - best) < 1e-12


def test_samples_follow_p_by_a_chi_square_test():
    from scipy.stats import chisquare

    d = _dist("tt", rank=2)
    cores = d.cores()
    n = 40_000
    draws = sample(cores, n, head=1, generator=torch.Generator().manual_seed(3)).numpy()
    brute = _brute(cores, 1)
    index = {c: i for i, c in enumerate(brute)}
    counts = np.bincount([index[tuple(c)] for c in draws], minlength=len(brute))
    expected = n * np.array(list(brute.values()))
    assert chisquare(counts, expected).pvalue > 1e-3


def test_top_paths_with_a_beam_report_exact_probabilities_in_order_on_a_flat_distribution():
    """Nearly uniform: every short prefix outranks every whole path, the case the beam bounds."""
    from mltk_plugins.trace.tensornet import top_paths

    g = torch.Generator().manual_seed(3)
    d = ChainDistribution([5, 5, 5], decomp="tt", rank=2, init_scale=0.05, generator=g).double()
    cores = [c[0].detach() for c in d.cores()]
    merged: dict[tuple, float] = {}
    for chain, p in _brute([c[None] for c in cores]).items():
        key = tuple(k for k in chain if k != 4)  # choice 4 plays the identity
        merged[key] = merged.get(key, 0.0) + p
    exact = top_paths(cores, 4, 6)
    assert [tuple(p) for p, _ in exact] == sorted(merged, key=lambda s: -merged[s])[:6]
    beamed = top_paths(cores, 4, 6, beam=3)
    probs = [p for _, p in beamed]
    assert len(beamed) == 6 and probs == sorted(probs, reverse=True)
    for path, p in beamed:
        assert abs(p - merged[tuple(path)]) < 1e-12


def test_rows_with_mixed_heads_get_each_heads_probability_and_samples():
    from mltk_plugins.trace.tensornet import log_prob_rows, sample_rows

    d = _dist("tt", heads=3)
    cores = d.cores()
    chains = torch.tensor([[0, 1, 0, 2], [2, 3, 1, 0], [1, 0, 1, 1]])
    heads = torch.tensor([2, 0, 1])
    rows = log_prob_rows(cores, chains, heads)
    for i in range(3):
        one = log_prob(cores, chains[i : i + 1], head=int(heads[i]))
        assert abs(float(rows[i] - one[0])) < 1e-12
    g = torch.Generator().manual_seed(0)
    drawn = sample_rows(cores, torch.full((4000,), 2), generator=g)
    first = torch.bincount(drawn[:, 0], minlength=CHOICES[0]).double() / 4000
    want = marginals(cores)[0][2]
    assert float((first - want).abs().max()) < 0.03  # 4000 draws: about 4 standard errors

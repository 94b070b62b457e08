"""The sparse-plus-low-rank products equal the dense products, without forming the tensor."""

from __future__ import annotations

import math

import pytest
import torch
from mltk_plugins.tensor.structured import (
    LowRankSum,
    Observed,
    SparsePlusLowRank,
    fold,
    tall_mm,
    unfold,
)


def random_splr(shape, rank=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = math.prod(shape)
    lin = torch.randperm(N, generator=g)[: N // 3]
    idx = torch.stack(torch.unravel_index(lin, shape), 1)
    obs = Observed.from_indices(idx, shape)
    W = [torch.randn(shape[j], rank, generator=g, dtype=torch.float64) for j in range(len(shape))]
    V = [
        torch.randn(N // shape[j], rank, generator=g, dtype=torch.float64)
        for j in range(len(shape))
    ]
    sparse = torch.randn(obs.nnz, generator=g, dtype=torch.float64)
    return SparsePlusLowRank(obs, sparse, LowRankSum(shape, W, V)), lin


def dense_reference(Z: SparsePlusLowRank, lin) -> torch.Tensor:
    """Built independently: fold every mode's W V^T with explicit loops over modes."""
    X = torch.zeros(Z.shape, dtype=torch.float64)
    for j in range(len(Z.shape)):
        X += fold(Z.low.W[j] @ Z.low.V[j].T, Z.shape, j)
    X.view(-1)[lin] += Z.sparse
    return X


@pytest.mark.parametrize("shape", [(6, 7, 8), (3, 4, 5, 6), (9, 2, 5)])
def test_products_equal_dense_products(shape):
    Z, lin = random_splr(shape)
    X = dense_reference(Z, lin)
    g = torch.Generator().manual_seed(1)
    for d in range(len(shape)):
        Xd = unfold(X, d)
        R = torch.randn(Xd.shape[1], 4, generator=g, dtype=torch.float64)
        L = torch.randn(Xd.shape[0], 4, generator=g, dtype=torch.float64)
        ZR, ZtL = Z.matmul(d, R), Z.rmatmul(d, L)
        assert float((ZR - Xd @ R).norm() / (Xd @ R).norm()) < 1e-10
        assert float((ZtL - Xd.T @ L).norm() / (Xd.T @ L).norm()) < 1e-10


def test_unfolding_matches_the_column_index():
    shape = (3, 4, 5)
    X = torch.arange(60, dtype=torch.float64).reshape(shape)
    idx = torch.tensor([[2, 3, 4], [1, 0, 2], [0, 2, 1]])
    obs = Observed.from_indices(idx, shape)
    for d in range(3):
        Xd = unfold(X, d)
        got = Xd[obs.rows(d), obs.cols[d]]
        want = X[idx[:, 0], idx[:, 1], idx[:, 2]]
        assert torch.equal(got, want)


@pytest.mark.parametrize("shape", [(5, 6, 7), (3, 4, 5, 6)])
def test_low_rank_values_at_observed_entries(shape):
    Z, lin = random_splr(shape)
    want = Z.low.dense().reshape(-1)[lin]
    fresh = Observed.from_indices(Z.obs.idx, shape)
    assert not fresh.has_layouts()  # chunked gathers
    assert torch.allclose(Z.low.at(fresh), want, atol=1e-12)
    assert Z.obs.prepare().has_layouts()  # sampled products on the CSR layouts
    assert torch.allclose(Z.low.at(Z.obs), want, atol=1e-12)
    assert torch.allclose(Z.dense(), dense_reference(Z, lin), atol=1e-12)


def test_csr_layouts_hold_the_unfoldings():
    shape = (4, 3, 5)
    g = torch.Generator().manual_seed(3)
    N = math.prod(shape)
    lin = torch.randperm(N, generator=g)[:25]
    idx = torch.stack(torch.unravel_index(lin, shape), 1)
    vals = torch.randn(25, generator=g, dtype=torch.float64)
    X = torch.zeros(N, dtype=torch.float64)
    X[lin] = vals
    X = X.reshape(shape)
    obs = Observed.from_indices(idx, shape)
    for d in range(3):
        assert torch.equal(obs.layout(d).matrix(vals).to_dense(), unfold(X, d))
        assert torch.equal(obs.layout(d, transpose=True).matrix(vals).to_dense(), unfold(X, d).T)
    # entries already in row order need no permutation
    srt = Observed.from_indices(idx[torch.argsort(lin)], shape)
    assert srt.layout(0).perm is None and srt.layout(0).col.dtype == torch.int32


def test_combine_keeps_the_tensor_and_caps_the_stored_rank():
    Z, _ = random_splr((5, 6, 2), rank=2)  # mode 2 has 2 rows: ranks 2 + 2 are stored as 2
    other, _ = random_splr((5, 6, 2), rank=2, seed=1)
    both = Z.low.combine(1.5, other.low, -0.5)
    assert [w.shape[1] for w in both.W] == [4, 4, 2]
    want = 1.5 * Z.low.dense() - 0.5 * other.low.dense()
    assert torch.allclose(both.dense(), want, atol=1e-12)


@pytest.mark.parametrize(
    ("rows", "k", "m", "layout"),
    [
        (10_003, 3, 3, "row"),  # rows not a multiple of the block
        (10_000, 3, 2, "row"),
        (10_001, 3, 3, "column"),  # a QR factor
        (10_000, 5, 4, "strided"),
        (10_000, 12, 3, "row"),  # too wide for the blocked product
        (100, 3, 3, "row"),  # too short
    ],
)
def test_tall_mm_equals_the_plain_product(rows, k, m, layout):
    g = torch.Generator().manual_seed(rows + k)
    A = torch.randn(rows, k, generator=g, dtype=torch.float64)
    if layout == "column":
        A = A.T.contiguous().T
    elif layout == "strided":
        A = torch.randn(rows, 2 * k, generator=g, dtype=torch.float64)[:, ::2]
    B = torch.randn(m, k, generator=g, dtype=torch.float64).T  # a transposed view, as used
    out = tall_mm(A, B)
    assert out.is_contiguous() and out.shape == (rows, m)
    assert torch.allclose(out, A @ B, rtol=1e-13, atol=1e-13)
    acc = torch.ones(rows, m, dtype=torch.float64)
    assert tall_mm(A, B, add_to=acc) is acc
    assert torch.allclose(acc, 1 + A @ B, rtol=1e-13, atol=1e-13)

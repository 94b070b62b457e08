"""Small problems shared by the tensor tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import math

import torch
from mltk_plugins.tensor.structured import Observed

torch.set_num_threads(1)


def low_rank_problem(shape=(14, 15, 16), rank=2, fraction=0.35, noise=0.01, seed=0):
    """A CP rank-``rank`` tensor, ``fraction`` of it observed: (obs, values, dense truth, idx)."""
    g = torch.Generator().manual_seed(seed)
    U = [torch.randn(n, rank, generator=g, dtype=torch.float64) for n in shape]
    X = torch.einsum("ir,jr,kr->ijk", *U) if len(shape) == 3 else None
    N = math.prod(shape)
    lin = torch.randperm(N, generator=g)[: int(fraction * N)]
    idx = torch.stack(torch.unravel_index(lin, shape), 1)
    vals = X.reshape(-1)[lin] + noise * torch.randn(len(lin), generator=g, dtype=torch.float64)
    return Observed.from_indices(idx, shape), vals, X, idx


def split_validation(obs, vals, idx, fraction=0.9, seed=0):
    """The observed entries split into training and validation: (o_tr, v_tr, o_va, v_va, tr, va)."""
    perm = torch.randperm(obs.nnz, generator=torch.Generator().manual_seed(seed))
    tr, va = perm[: int(fraction * len(perm))], perm[int(fraction * len(perm)) :]
    o_tr = Observed.from_indices(idx[tr], obs.shape)
    o_va = Observed.from_indices(idx[va], obs.shape)
    return o_tr, vals[tr], o_va, vals[va], tr, va

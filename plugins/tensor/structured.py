"""The "sparse plus low-rank" tensor and its unfolding products, without ever forming it densely.

NORT keeps its iterate as a weighted sum over modes of low-rank unfoldings (Sec. 3.2 of
arXiv:2205.03059):

    X = sum_j fold_j(W_j V_j^T),    W_j: (n_j, r_j),  V_j: (prod_{i != j} n_i, r_j),

with the mode weight alpha_j and the singular values already multiplied into W_j. The gradient
step adds a part S that lives only on the observed entries Omega, so every unfolding
Z_<d> = S_<d> + sum_j [fold_j(W_j V_j^T)]_<d> is sparse plus low-rank. The partial SVD of Z_<d>
needs only the two products Z_<d> R and Z_<d>^T L, computed here in
O(|Omega| r + sum_j prod_{i != j} n_i r^2) time: the sparse part by gather/scatter on Omega, the
same-mode part by two thin matrix products, and every cross-mode part by two small tensor
contractions (Eq. 12-13 of the paper) -- nothing of size prod_i n_i is created.

Unfolding convention: X_<d> = X.movedim(d, 0).reshape(n_d, -1), i.e. the columns run over the
remaining modes in C order. ``column_index`` gives that column for each observed coordinate.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import torch

CHUNK = 1 << 22  # numbers in one gather/scatter temporary (bounds the extra memory)
AT_CHUNK = 1 << 15  # entries per chunk when evaluating X at coordinates (rank-wide temporaries)


def column_index(idx: torch.Tensor, shape: tuple[int, ...], d: int) -> torch.Tensor:
    """Column of each coordinate (rows of ``idx``) in the mode-d unfolding, as int64."""
    col = torch.zeros(idx.shape[0], dtype=torch.int64, device=idx.device)
    for j in range(len(shape)):
        if j == d:
            continue
        col.mul_(shape[j]).add_(idx[:, j].to(torch.int64))
    return col


def _chunk(width: int) -> int:
    """Observed entries per gather/scatter chunk so that a temporary holds about CHUNK numbers."""
    return max(1024, CHUNK // max(width, 1))


def other_size(shape: tuple[int, ...], d: int) -> int:
    return math.prod(shape) // shape[d]


@dataclass
class Observed:
    """Coordinates of the observed entries with the per-mode row/column indices precomputed."""

    shape: tuple[int, ...]
    idx: torch.Tensor  # (nnz, D) int64 coordinates
    cols: list[torch.Tensor]  # cols[d]: (nnz,) column in the mode-d unfolding

    @classmethod
    def from_indices(cls, idx: torch.Tensor, shape: tuple[int, ...]) -> Observed:
        idx = idx.to(torch.int64)
        cols = [column_index(idx, shape, d) for d in range(len(shape))]
        return cls(tuple(int(s) for s in shape), idx, cols)

    @property
    def nnz(self) -> int:
        return int(self.idx.shape[0])

    def rows(self, d: int) -> torch.Tensor:
        return self.idx[:, d]


@dataclass
class LowRankSum:
    """X = sum_j fold_j(W_j V_j^T): one (W_j, V_j) pair per mode (rank 0 allowed)."""

    shape: tuple[int, ...]
    W: list[torch.Tensor]  # W[j]: (n_j, r_j), mode weight and singular values folded in
    V: list[torch.Tensor]  # V[j]: (prod_{i != j} n_i, r_j)

    def combine(self, a: float, other: LowRankSum, b: float) -> LowRankSum:
        """a * self + b * other, by concatenating factors (ranks add)."""
        W = [torch.cat([a * w1, b * w0], 1) for w1, w0 in zip(self.W, other.W, strict=False)]
        V = [torch.cat([v1, v0], 1) for v1, v0 in zip(self.V, other.V, strict=False)]
        return LowRankSum(self.shape, W, V)

    def at(self, obs: Observed) -> torch.Tensor:
        """Values of X at the observed coordinates, (nnz,)."""
        dtype = self.W[0].dtype
        out = torch.zeros(obs.nnz, dtype=dtype, device=self.W[0].device)
        for d in range(len(self.shape)):
            if self.W[d].shape[1] == 0:
                continue
            rows, cols = obs.rows(d), obs.cols[d]
            for a in range(0, obs.nnz, AT_CHUNK):
                b = min(a + AT_CHUNK, obs.nnz)
                w = self.W[d].index_select(
                    0, rows[a:b]
                )  # index_select: much faster than fancy indexing
                out[a:b] += (w * self.V[d].index_select(0, cols[a:b])).sum(1)
        return out

    def dense(self) -> torch.Tensor:
        """The full tensor (small problems and tests only)."""
        X = torch.zeros(self.shape, dtype=self.W[0].dtype, device=self.W[0].device)
        for d in range(len(self.shape)):
            M = self.W[d] @ self.V[d].T  # (n_d, prod/n_d)
            X += fold(M, self.shape, d)
        return X


def unfold(X: torch.Tensor, d: int) -> torch.Tensor:
    return X.movedim(d, 0).reshape(X.shape[d], -1)


def fold(M: torch.Tensor, shape: tuple[int, ...], d: int) -> torch.Tensor:
    rest = [shape[j] for j in range(len(shape)) if j != d]
    return M.reshape([shape[d], *rest]).movedim(0, d)


def _letters(D: int) -> str:
    if D > 20:
        raise ValueError("tensors of order above 20 are not supported")
    return string.ascii_lowercase[:D]


class SparsePlusLowRank:
    """Z = S + L, S on the observed entries (values ``sparse``), L a LowRankSum."""

    def __init__(self, obs: Observed, sparse: torch.Tensor, low: LowRankSum):
        self.obs, self.sparse, self.low = obs, sparse, low
        self.shape = obs.shape
        self.D = len(self.shape)
        self.letters = _letters(self.D)

    # -- Z_<d> R -------------------------------------------------------------------------
    def matmul(self, d: int, R: torch.Tensor) -> torch.Tensor:
        """Z_<d> @ R for R of shape (prod/n_d, c); returns (n_d, c)."""
        n_d, c = self.shape[d], R.shape[1]
        out = torch.zeros(n_d, c, dtype=R.dtype, device=R.device)
        rows, cols, s = self.obs.rows(d), self.obs.cols[d], self.sparse
        step = _chunk(c)
        for a in range(0, self.obs.nnz, step):
            b = min(a + step, self.obs.nnz)
            out.index_add_(0, rows[a:b], s[a:b, None] * R.index_select(0, cols[a:b]))
        for j in range(self.D):
            W, V = self.low.W[j], self.low.V[j]
            if W.shape[1] == 0:
                continue
            if j == d:
                out += W @ (V.T @ R)
            else:
                out += self._cross_matmul(d, j, W, V, R)
        return out

    def _cross_matmul(self, d, j, W, V, R):
        # [fold_j(W V^T)]_<d> R = sum_r over the other modes of W[i_j, r] V[i_-j, r] R[i_-d, c]
        L = self.letters
        rest_d = "".join(L[i] for i in range(self.D) if i != d)
        rest_j = "".join(L[i] for i in range(self.D) if i != j)
        rest_dj = "".join(L[i] for i in range(self.D) if i not in (d, j))
        Rt = R.reshape([self.shape[i] for i in range(self.D) if i != d] + [R.shape[1]])
        Vt = V.reshape([self.shape[i] for i in range(self.D) if i != j] + [V.shape[1]])
        P = torch.einsum(f"{rest_d}y,{L[j]}z->{rest_dj}yz", Rt, W)  # contract mode j
        return torch.einsum(f"{rest_j}z,{rest_dj}yz->{L[d]}y", Vt, P)

    # -- Z_<d>^T L -----------------------------------------------------------------------
    def rmatmul(self, d: int, Lm: torch.Tensor) -> torch.Tensor:
        """Z_<d>^T @ Lm for Lm of shape (n_d, c); returns (prod/n_d, c)."""
        m, c = other_size(self.shape, d), Lm.shape[1]
        out = torch.zeros(m, c, dtype=Lm.dtype, device=Lm.device)
        rows, cols, s = self.obs.rows(d), self.obs.cols[d], self.sparse
        step = _chunk(c)
        for a in range(0, self.obs.nnz, step):
            b = min(a + step, self.obs.nnz)
            out.index_add_(0, cols[a:b], s[a:b, None] * Lm.index_select(0, rows[a:b]))
        for j in range(self.D):
            W, V = self.low.W[j], self.low.V[j]
            if W.shape[1] == 0:
                continue
            if j == d:
                out += V @ (W.T @ Lm)
            else:
                out += self._cross_rmatmul(d, j, W, V, Lm)
        return out

    def _cross_rmatmul(self, d, j, W, V, Lm):
        L = self.letters
        rest_d = "".join(L[i] for i in range(self.D) if i != d)
        rest_j = "".join(L[i] for i in range(self.D) if i != j)
        rest_dj = "".join(L[i] for i in range(self.D) if i not in (d, j))
        Vt = V.reshape([self.shape[i] for i in range(self.D) if i != j] + [V.shape[1]])
        Q = torch.einsum(f"{rest_j}z,{L[d]}y->{rest_dj}zy", Vt, Lm)  # contract mode d
        out = torch.einsum(f"{L[j]}z,{rest_dj}zy->{rest_d}y", W, Q)
        return out.reshape(-1, Lm.shape[1])

    def dense(self) -> torch.Tensor:
        """The full tensor (tests only)."""
        X = self.low.dense()
        X.view(-1)[self._linear()] += self.sparse
        return X

    def _linear(self) -> torch.Tensor:
        lin = torch.zeros(self.obs.nnz, dtype=torch.int64, device=self.obs.idx.device)
        for j in range(self.D):
            lin.mul_(self.shape[j]).add_(self.obs.idx[:, j])
        return lin

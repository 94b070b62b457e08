"""The "sparse plus low-rank" tensor and its unfolding products, without ever forming it densely.

NORT keeps its iterate as a weighted sum over modes of low-rank unfoldings (Sec. 3.2 of
arXiv:2205.03059):

    X = sum_j fold_j(W_j V_j^T),    W_j: (n_j, r_j),  V_j: (prod_{i != j} n_i, r_j),

with the mode weight alpha_j and the singular values already multiplied into W_j. The gradient
step adds a part S that lives only on the observed entries Omega, so every unfolding
Z_<d> = S_<d> + sum_j [fold_j(W_j V_j^T)]_<d> is sparse plus low-rank. The partial SVD of Z_<d>
needs only the two products Z_<d> R and Z_<d>^T L, computed here in
O(|Omega| r + sum_j prod_{i != j} n_i r^2) time: the sparse part as a sparse (CSR) matrix times a
thin dense one, the same-mode part by two thin matrix products, and every cross-mode part by two
small tensor contractions (Eq. 12-13 of the paper) -- nothing of size prod_i n_i is created.

The CSR layouts of S_<d> and S_<d>^T (row pointers, column indices and the permutation from the
order of the observed entries) depend only on Omega, so they are built once per mode and reused
every iteration; only the values change. The low-rank part's values on Omega (the residual of
every iteration) are a sampled product W_d V_d^T at the CSR pattern of mode d.

Unfolding convention: X_<d> = X.movedim(d, 0).reshape(n_d, -1), i.e. the columns run over the
remaining modes in C order. ``column_index`` gives that column for each observed coordinate.
"""

from __future__ import annotations

import math
import string
import warnings
from dataclasses import dataclass, field

import torch


def _csr(crow, col, values, size) -> torch.Tensor:
    """A CSR matrix, without torch's once-per-process notice that CSR support is beta."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


AT_CHUNK = 1 << 15  # entries per chunk when evaluating X at coordinates (rank-wide temporaries)
AT_CHUNK_GPU = 1 << 18  # on a GPU: fewer, larger kernels
SKINNY_BLOCK = 4  # rows per block in tall_mm


def tall_mm(A: torch.Tensor, B: torch.Tensor, add_to: torch.Tensor | None = None) -> torch.Tensor:
    """A @ B as a contiguous (N, B.shape[1]) tensor, fast for a tall, thin A (N x k, k <= 8);
    with ``add_to``, A @ B is added into it (in place) and it is returned.

    CPU BLAS multiplies a 3-column matrix (an image's colour-mode factor, one row per pixel)
    several times slower than memory allows. Taking the rows SKINNY_BLOCK at a time against
    kron(I, B) computes the same products (plus exact zeros) in one wider GEMM; a column-major A
    (a QR factor) is multiplied as (B^T A^T)^T instead. Other shapes take the plain product.
    """
    N, k = A.shape
    if A.device.type != "cpu" or k > 8 or N < 4096:
        return (A @ B).contiguous() if add_to is None else add_to.addmm_(A, B)
    if add_to is not None:
        return add_to.add_(tall_mm(A, B))
    if not A.is_contiguous():
        if A.T.is_contiguous():
            return (B.T @ A.T).T.contiguous()
        A = A.contiguous()
    b, m = SKINNY_BLOCK, B.shape[1]
    n = N - N % b
    out = A.new_empty(N, m)
    K = torch.kron(torch.eye(b, dtype=B.dtype, device=B.device), B.contiguous())
    torch.mm(A[:n].view(-1, k * b), K, out=out[:n].view(-1, m * b))
    if n < N:
        torch.mm(A[n:], B, out=out[n:])
    return out


def column_index(idx: torch.Tensor, shape: tuple[int, ...], d: int) -> torch.Tensor:
    """Column of each coordinate (rows of ``idx``) in the mode-d unfolding, as int64."""
    col = torch.zeros(idx.shape[0], dtype=torch.int64, device=idx.device)
    for j in range(len(shape)):
        if j == d:
            continue
        col.mul_(shape[j]).add_(idx[:, j].to(torch.int64))
    return col


def other_size(shape: tuple[int, ...], d: int) -> int:
    return math.prod(shape) // shape[d]


@dataclass
class Layout:
    """The CSR pattern of a sparse matrix on the observed entries (an unfolding or its transpose).

    ``perm[k]`` is the observed entry stored at CSR position k (None: the entries are already in
    CSR order). Indices are int32 when every index fits, halving their memory.
    """

    size: tuple[int, int]
    crow: torch.Tensor
    col: torch.Tensor
    perm: torch.Tensor | None

    @classmethod
    def build(cls, rows: torch.Tensor, cols: torch.Tensor, size: tuple[int, int]) -> Layout:
        n, m = size
        nnz = rows.numel()
        small = max(n, m, nnz) < 2**31 - 1
        itype = torch.int32 if small else torch.int64
        perm = torch.argsort(rows * m + cols, stable=True)
        if bool((perm == torch.arange(nnz, device=perm.device)).all()):
            perm = None
            col = cols.to(itype)
            counts = torch.bincount(rows, minlength=n)
        else:
            col = cols.index_select(0, perm).to(itype)
            counts = torch.bincount(rows, minlength=n)
            perm = perm.to(itype)
        crow = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
        torch.cumsum(counts, 0, out=crow[1:])
        return cls((n, m), crow.to(itype), col, perm)

    def ordered(self, values: torch.Tensor) -> torch.Tensor:
        """Per-entry values (in the observed order) rearranged into CSR order."""
        return values if self.perm is None else values.index_select(0, self.perm)

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        """The sparse CSR matrix with these per-entry values (given in the observed order)."""
        return _csr(self.crow, self.col, self.ordered(values), self.size)

    def scatter(self, out: torch.Tensor, csr_values: torch.Tensor) -> None:
        """out[perm] += csr_values: CSR-ordered values added back in the observed order."""
        if self.perm is None:
            out += csr_values
        else:
            out.index_add_(0, self.perm, csr_values)


@dataclass
class Observed:
    """Coordinates of the observed entries; the per-mode CSR layouts are built on first use."""

    shape: tuple[int, ...]
    idx: torch.Tensor  # (nnz, D) int64 coordinates
    _layouts: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_indices(cls, idx: torch.Tensor, shape: tuple[int, ...]) -> Observed:
        return cls(tuple(int(s) for s in shape), idx.to(torch.int64))

    @property
    def nnz(self) -> int:
        return int(self.idx.shape[0])

    def rows(self, d: int) -> torch.Tensor:
        return self.idx[:, d]

    @property
    def cols(self) -> list[torch.Tensor]:
        """cols[d]: the column of every entry in the mode-d unfolding (computed on each call)."""
        return [column_index(self.idx, self.shape, d) for d in range(len(self.shape))]

    def layout(self, d: int, transpose: bool = False) -> Layout:
        """CSR pattern of S_<d> (or of S_<d>^T), built once and kept."""
        key = (d, transpose)
        if key not in self._layouts:
            rows, cols = self.rows(d), column_index(self.idx, self.shape, d)
            n, m = self.shape[d], other_size(self.shape, d)
            if transpose:
                self._layouts[key] = Layout.build(cols, rows, (m, n))
            else:
                self._layouts[key] = Layout.build(rows, cols, (n, m))
        return self._layouts[key]

    def prepare(self) -> Observed:
        """Build every mode's CSR layouts (of S_<d> and S_<d>^T) now; returns self."""
        for d in range(len(self.shape)):
            self.layout(d)
            self.layout(d, transpose=True)
        return self

    def has_layouts(self) -> bool:
        return all((d, False) in self._layouts for d in range(len(self.shape)))


@dataclass
class LowRankSum:
    """X = sum_j fold_j(W_j V_j^T): one (W_j, V_j) pair per mode (rank 0 allowed)."""

    shape: tuple[int, ...]
    W: list[torch.Tensor]  # W[j]: (n_j, r_j), mode weight and singular values folded in
    V: list[torch.Tensor]  # V[j]: (prod_{i != j} n_i, r_j)

    def combine(self, a: float, other: LowRankSum, b: float) -> LowRankSum:
        """a * self + b * other, by concatenating factors (ranks add).

        When the ranks add up to more than the mode's size n_j (an image's 3 channels), the same
        matrix is stored exactly as I_{n_j} (a V1 W1^T + b V0 W0^T)^T instead: n_j columns, not
        r1 + r0.
        """
        W, V = [], []
        for w1, v1, w0, v0 in zip(self.W, self.V, other.W, other.V, strict=False):
            n = w1.shape[0]
            if w1.shape[1] + w0.shape[1] > n:
                W.append(torch.eye(n, dtype=w1.dtype, device=w1.device))
                v = tall_mm(v1, (a * w1).T)
                V.append(v.add_(tall_mm(v0, w0.T), alpha=b))
            else:
                W.append(torch.cat([a * w1, b * w0], 1))
                V.append(torch.cat([v1, v0], 1))
        return LowRankSum(self.shape, W, V)

    def at(self, obs: Observed) -> torch.Tensor:
        """Values of X at the observed coordinates, (nnz,).

        With the CSR layouts of ``obs`` built (the training entries, used by the solver): one
        sampled product W_d V_d^T per mode. Otherwise (validation or test entries, evaluated a
        few times): chunked gathers that keep no per-entry index arrays.
        """
        dtype = self.W[0].dtype
        out = torch.zeros(obs.nnz, dtype=dtype, device=self.W[0].device)
        if obs.has_layouts():
            for d in range(len(self.shape)):
                if self.W[d].shape[1] == 0:
                    continue
                lay = obs.layout(d)
                pattern = _csr(lay.crow, lay.col, out.new_zeros(obs.nnz), lay.size)
                vals = torch.sparse.sampled_addmm(pattern, self.W[d], self.V[d].T, beta=0.0)
                lay.scatter(out, vals.values())
            return out
        chunk = AT_CHUNK if out.device.type == "cpu" else AT_CHUNK_GPU
        for a in range(0, obs.nnz, chunk):
            b = min(a + chunk, obs.nnz)
            part = obs.idx[a:b]
            for d in range(len(self.shape)):
                if self.W[d].shape[1] == 0:
                    continue
                # index_select: much faster than fancy indexing
                w = self.W[d].index_select(0, part[:, d])
                v = self.V[d].index_select(0, column_index(part, self.shape, d))
                out[a:b] += (w * v).sum(1)
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
        out = self.obs.layout(d).matrix(self.sparse) @ R
        for j in range(self.D):
            W, V = self.low.W[j], self.low.V[j]
            if W.shape[1] == 0:
                continue
            if j == d:
                out.addmm_(W, V.T @ R)
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
        out = self.obs.layout(d, transpose=True).matrix(self.sparse) @ Lm
        for j in range(self.D):
            W, V = self.low.W[j], self.low.V[j]
            if W.shape[1] == 0:
                continue
            if j == d:
                tall_mm(V, W.T @ Lm, add_to=out)
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

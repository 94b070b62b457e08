"""Sparse operator stacks: built as CSR without torch's beta notices, and multiplied on the
CPU by scipy, with autograd (faster than torch's CSR kernel on the meta-path stacks)."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch


@contextlib.contextmanager
def _beta_sparse():
    """Silence torch's notices that sparse CSR support is in beta, here only (not for the
    whole process)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def csr(index: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR matrix from COO entries (duplicates summed)."""
    with _beta_sparse():
        return torch.sparse_coo_tensor(index, values, shape).coalesce().to_sparse_csr()


def _scipy(m: torch.Tensor):
    """A CPU sparse CSR tensor as a scipy matrix over the same arrays."""
    import scipy.sparse as sp

    return sp.csr_matrix(
        (m.values().numpy(), m.col_indices().numpy(), m.crow_indices().numpy()),
        shape=tuple(m.shape),
    )


def csr_rows(m: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The rows ``rows`` of a sparse CSR matrix, as CSR."""
    s = _scipy(m)[rows.numpy()]
    with _beta_sparse():
        return torch.sparse_csr_tensor(
            torch.as_tensor(s.indptr, dtype=torch.long),
            torch.as_tensor(s.indices, dtype=torch.long),
            torch.as_tensor(s.data),
            size=s.shape,
        )


class _CsrProduct(torch.autograd.Function):
    """``m @ h`` for a constant sparse CSR m on the CPU, by scipy; the gradient is
    ``m^T @ grad``."""

    @staticmethod
    def _product(m: torch.Tensor, h: torch.Tensor, transpose: bool) -> torch.Tensor:
        s = _scipy(m)
        out = (s.T if transpose else s) @ h.detach().numpy()
        return torch.from_numpy(np.ascontiguousarray(out)).to(h.dtype)

    @staticmethod
    def forward(ctx, m, h):
        ctx.m = m
        return _CsrProduct._product(m, h, False)

    @staticmethod
    def backward(ctx, grad):
        return None, _CsrProduct._product(ctx.m, grad.contiguous(), True)


def spmm(m: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``m @ h``: by scipy on the CPU, by torch elsewhere."""
    return _CsrProduct.apply(m, h) if m.device.type == "cpu" else m @ h

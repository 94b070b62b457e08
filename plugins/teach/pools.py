"""What the teacher sees and the learner updates: f on the pool, kept in step with the expansion.

The learner is ``f = f0 + sum_j alpha_j K(x_j, .)``; on the pool its values, the residual and the
greedy scores are updated incrementally after each step (Sec. 4 of the paper: the teacher needs
``f^t(x)`` at every candidate x). Two implementations of one interface:

- ``DensePool`` (torch, any device): a step evaluates ``K(x_j, .)`` on the whole pool, as the
  authors' notebooks do; the "whole pool" teacher multiplies by a cached Gram matrix.
- ``GridPool`` (numpy, the CPU's fast path for images): a stationary kernel on unit-spaced pixels
  is a truncated stencil, so a step touches only the stencil's support; the argmax reads a
  per-row maximum of the scores, refreshed only on the rows a step touched. An iteration then
  costs the kernel's support, not the pool size.

Scores: the exact greedy rule ranks x by ``|dL/df(f(x), y*(x))| sqrt(K(x, x))`` (the H-norm of
the functional gradient at x); the paper's simplification ranks by ``|f(x) - f*(x)|``, the same
order for the square loss with a normalised kernel. Ties go to the lowest index.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import losses as L
from .kernels import Kernel

GRAM_LIMIT = 4096  # pools up to this size cache K(pool, pool) for the whole-pool teacher
BLOCK = 2**24  # kernel values evaluated at once by a step of a larger pack
RESYNC_EVERY = 4096  # grid: recompute the incremental sums exactly this often


def stopping_loss(loss: str, total: float, n: int) -> float:
    """The stopping criterion from the sum of pointwise losses over the pool: the notebooks'
    ``||f - f*||_2 / N`` for the square loss, the mean loss for hinge and logistic."""
    return math.sqrt(max(total, 0.0)) / n if loss == "square" else total / n


def topk_lowest(score, k: int):
    """Indices of the k largest scores, distinct, ties to the lowest index (numpy or torch)."""
    n = score.shape[0]
    if k >= n:
        return (
            np.arange(n) if isinstance(score, np.ndarray) else torch.arange(n, device=score.device)
        )
    if isinstance(score, np.ndarray):
        thr = np.partition(score, n - k)[n - k]
        above = np.flatnonzero(score > thr)
        equal = np.flatnonzero(score == thr)[: k - len(above)]
        return np.sort(np.concatenate([above, equal]))
    thr = torch.topk(score, k).values[-1]
    above = torch.nonzero(score > thr).flatten()
    equal = torch.nonzero(score == thr).flatten()[: k - len(above)]
    return torch.sort(torch.cat([above, equal])).values


class DensePool:
    """f on an arbitrary pool X (N, d), in torch."""

    def __init__(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        f0: torch.Tensor,
        kernel: Kernel,
        loss: str = "square",
        rule: str = "residual",
        candidates: np.ndarray | None = None,
    ):
        self.x, self.target, self.kernel, self.loss, self.rule = x, target, kernel, loss, rule
        self.f = f0.clone()
        self.n = x.shape[0]
        self.diag = kernel.diagonal(x)
        self.mask = None
        if candidates is not None:
            self.mask = torch.zeros(self.n, dtype=torch.bool, device=x.device)
            self.mask[torch.as_tensor(candidates, device=x.device)] = True
        self._gram = None

    def values(self) -> np.ndarray:
        """A copy of f on the pool (numpy)."""
        return self.f.detach().cpu().numpy().reshape(-1).copy()

    def score(self) -> torch.Tensor:
        if self.rule == "residual":
            s = (self.f - self.target).abs()
        else:
            s = L.derivative(self.loss, self.f, self.target).abs() * self.diag.sqrt()
        # outside the candidates a score of -1: never picked, even when every candidate is at 0
        return torch.where(self.mask, s, -1.0) if self.mask is not None else s

    def pick(self, k: int) -> np.ndarray:
        s = self.score()
        if k == 1:
            return np.array([int(torch.argmax(s))])  # torch returns the first maximum
        return topk_lowest(s, k).cpu().numpy()

    def at(self, idx: np.ndarray) -> np.ndarray:
        return self.f[torch.as_tensor(idx, device=self.f.device)].cpu().numpy()

    def add(self, idx: np.ndarray, alphas: np.ndarray) -> None:
        """f <- f + sum_i alpha_i K(x_i, .) on the whole pool."""
        a = torch.as_tensor(alphas, dtype=self.f.dtype, device=self.f.device)
        if len(idx) == self.n and self.n <= GRAM_LIMIT:
            if self._gram is None:
                self._gram = self.kernel(self.x, self.x)
            self.f += a @ self._gram
            return
        ii = torch.as_tensor(idx, device=self.f.device)
        rows = max(1, BLOCK // self.n)  # kernel blocks of at most BLOCK values
        for s in range(0, len(idx), rows):
            self.f += a[s : s + rows] @ self.kernel(self.x[ii[s : s + rows]], self.x)

    def total(self) -> float:
        return float(L.value(self.loss, self.f, self.target).sum())

    def greedy_ratio(self) -> float:
        """gamma = mean over the pool of S(x) over its max, S(x) = (dL/df)^2 K(x, x)."""
        s = L.derivative(self.loss, self.f, self.target) ** 2 * self.diag
        top = float(s.max())
        return float(s.mean()) / top if top > 0 else 1.0


class GridPool:
    """f on an H x W pixel grid (x = (row, col)) with a stationary kernel's truncated stencil."""

    def __init__(
        self,
        target: np.ndarray,
        f0: np.ndarray,
        kernel: Kernel,
        loss: str = "square",
        rule: str = "residual",
        candidates: np.ndarray | None = None,
    ):
        if not kernel.stationary:
            raise ValueError("the grid path needs a stationary kernel (rbf or laplace)")
        self.target = np.ascontiguousarray(target, dtype=np.float64)
        self.f = np.array(f0, dtype=np.float64)
        self.h, self.w = self.target.shape
        self.n = self.h * self.w
        self.kernel, self.loss, self.rule = kernel, loss, rule
        self.stencil = kernel.stencil()
        self.r = self.stencil.shape[0] // 2
        self.mask = None
        if candidates is not None:
            self.mask = np.zeros(self.n, dtype=bool)
            self.mask[candidates] = True
            self.mask = self.mask.reshape(self.h, self.w)
        self._steps = 0
        self._refresh()

    # --- the incremental bookkeeping -------------------------------------------------------
    def _score(self, f, y, mask):
        if self.rule == "residual":
            s = np.abs(f - y)
        else:  # K(x, x) = 1 for a stationary kernel
            s = np.abs(L.derivative(self.loss, f, y))
        return np.where(mask, s, -1.0) if mask is not None else s

    def _refresh(self) -> None:
        """Recompute every derived array exactly from f."""
        self.s = self._score(self.f, self.target, self.mask)
        self.rowmax = self.s.max(axis=1)
        self.sum_loss = float(L.value(self.loss, self.f, self.target).sum())
        self.sum_s = float((L.derivative(self.loss, self.f, self.target) ** 2).sum())

    def _window(self, i: int, j: int):
        r = self.r
        i0, i1, j0, j1 = (
            max(i - r, 0),
            min(i + r + 1, self.h),
            max(j - r, 0),
            min(j + r + 1, self.w),
        )
        return (slice(i0, i1), slice(j0, j1)), (
            slice(i0 - i + r, i1 - i + r),
            slice(j0 - j + r, j1 - j + r),
        )

    def values(self) -> np.ndarray:
        return self.f.reshape(-1).copy()

    def pick(self, k: int) -> np.ndarray:
        if k == 1:
            i = int(np.argmax(self.rowmax))  # the first maximum: the lowest row, then column
            return np.array([i * self.w + int(np.argmax(self.s[i]))])
        return topk_lowest(self.s.reshape(-1), k)

    def at(self, idx: np.ndarray) -> np.ndarray:
        return self.f.reshape(-1)[idx]

    def add(self, idx: np.ndarray, alphas: np.ndarray) -> None:
        self._steps += 1
        if len(idx) > 32:  # many centres: one convolution of the scattered alphas
            from scipy.signal import fftconvolve

            a = np.zeros(self.n)
            np.add.at(a, idx, alphas)
            self.f += fftconvolve(a.reshape(self.h, self.w), self.stencil, mode="same")
            self._refresh()
            return
        for c, alpha in zip(idx.tolist(), alphas.tolist()):
            (wi, wj), (si, sj) = self._window(*divmod(c, self.w))
            f_old, y = self.f[wi, wj], self.target[wi, wj]
            f_new = f_old + alpha * self.stencil[si, sj]
            if self.loss == "square":  # the common case, without the general calls
                d_old, d_new = f_old - y, f_new - y
                q_old, q_new = d_old * d_old, d_new * d_new
                self.sum_loss += float(q_new.sum() - q_old.sum())
                self.sum_s += 4.0 * float(q_new.sum() - q_old.sum())
                s_new = np.abs(d_new)
            else:
                self.sum_loss += float(
                    L.value(self.loss, f_new, y).sum() - L.value(self.loss, f_old, y).sum()
                )
                g_old, g_new = L.derivative(self.loss, f_old, y), L.derivative(self.loss, f_new, y)
                self.sum_s += float((g_new**2).sum() - (g_old**2).sum())
                s_new = np.abs(g_new) if self.rule != "residual" else np.abs(f_new - y)
            self.f[wi, wj] = f_new
            self.s[wi, wj] = (
                np.where(self.mask[wi, wj], s_new, -1.0) if self.mask is not None else s_new
            )
            self.rowmax[wi] = self.s[wi].max(axis=1)
        if self._steps % RESYNC_EVERY == 0:
            self._refresh()

    def total(self) -> float:
        return self.sum_loss

    def exact_total(self) -> float:
        self._refresh()
        return self.sum_loss

    def greedy_ratio(self) -> float:
        top = float(self.rowmax.max())
        if self.rule == "residual" and self.loss == "square":
            top = 2 * top  # S uses dL/df = -2 r
        elif self.rule == "residual":
            top = float(np.abs(L.derivative(self.loss, self.f, self.target)).max())
        return (self.sum_s / self.n) / (top * top) if top > 0 else 1.0

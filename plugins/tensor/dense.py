"""Dense reference solvers on the same objective, for honest comparison with NORT.

- ``dense_proximal_average``: the proximal-average gradient algorithm (Zhong and Kwok, 2014; the
  paper's "PA" baseline) written the direct way -- a dense iterate, a fold/unfold and a full SVD
  of every unfolding per iteration. Same objective, same lambda convention, same surrogate
  objective and same momentum rule as NORT; it is what NORT avoids.
- ``convex_admm``: the convex overlapped nuclear norm model
  min_X 1/2 ||P_Omega(X - O)||^2 + sum_d lambda_d ||X_<d>||_* solved exactly by ADMM with one
  split Y_d = X per mode (the HaLRTC scheme of Liu et al., 2013, with the squared loss).

Both hold several dense tensors of the full size, so they only suit tensors that fit in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from . import penalties
from .nort import History, component_singular_values
from .structured import fold, unfold


def _masked(shape, idx, values, dtype, device):
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    Obs = torch.zeros(shape, dtype=dtype, device=device)
    ix = tuple(idx[:, d] for d in range(len(shape)))
    mask[ix] = True
    Obs[ix] = values
    return mask, Obs


def dense_proximal_average(
    shape,
    idx: torch.Tensor,
    values: torch.Tensor,
    lam: list[float],
    penalty: str,
    theta: float,
    max_iter: int = 300,
    tol: float = 1e-5,
    momentum: str = "adaptive",
    gamma0: float = 0.5,
    gamma_max: float = 0.9,
    p: float = 0.5,
    monitor: Callable[[torch.Tensor], float] | None = None,
    time_limit: float | None = None,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, History]:
    """Dense proximal average (from ``init``, else zero); returns the dense result and history."""
    shape = tuple(shape)
    D = len(shape)
    Lam = float(sum(lam))
    alpha = [x / Lam for x in lam]
    mask, Obs = _masked(shape, idx, values, values.dtype, values.device)
    hist = History()

    def prox_all(Z):
        X = torch.zeros_like(Z)
        comps = []
        for d in range(D):
            U, S, Vh = torch.linalg.svd(unfold(Z, d), full_matrices=False)
            s = penalties.prox(S, Lam, theta, penalty)
            r = int((s > 0).sum())
            W, V = U[:, :r] * s[:r], Vh[:r].T
            X += alpha[d] * fold(W @ V.T, shape, d)
            comps.append((W, V, s[:r]))
        return X, comps

    def reg(svals):
        return sum(
            a * float(penalties.value(s, Lam, theta, penalty))
            for a, s in zip(alpha, svals, strict=False)
        )

    def loss(X):
        return 0.5 * float(((X - Obs)[mask] ** 2).sum())

    X1 = (
        torch.zeros(shape, dtype=values.dtype, device=values.device)
        if init is None
        else init.clone()
    )
    empty = (values.new_zeros(shape[0], 0), values.new_zeros(1, 0), values.new_zeros(0))
    X0, c1 = X1, [empty] * D
    c0 = c1
    F1 = loss(X1)
    gamma, clock = gamma0, 0.0
    for it in range(max_iter):
        start = time.perf_counter()
        point = X1
        if it > 0 and momentum == "adaptive":
            cand = X1 + gamma * (X1 - X0)
            sv = []
            for (W1, V1, _), (W0, V0, _) in zip(c1, c0, strict=False):
                if V0.shape[0] != V1.shape[0]:  # the zero start has no components
                    W0, V0 = W1[:, :0], V1[:, :0]
                W = torch.cat([(1 + gamma) * W1, -gamma * W0], 1)
                sv.append(component_singular_values(W, torch.cat([V1, V0], 1)))
            Fv = loss(cand) + reg(sv)
            if Fv <= F1:
                point = cand
                gamma = min(gamma / p, gamma_max)
            else:
                gamma = p * gamma
        Z = torch.where(mask, Obs, point)  # point - P_Omega(point - O), step 1
        Xn, cn = prox_all(Z)
        X0, X1, c0, c1 = X1, Xn, c1, cn
        F_prev, F1 = F1, loss(X1) + reg([c[2] for c in c1])
        clock += time.perf_counter() - start
        hist.objective.append(F1)
        hist.time.append(clock)
        hist.ranks.append([int(c[2].numel()) for c in c1])
        if monitor is not None:
            hist.rmse.append(float(monitor(X1)))
            hist.rmse_time.append(clock)
        if it > 0 and abs(F_prev - F1) <= tol * max(abs(F1), 1e-30):
            break
        if time_limit is not None and clock > time_limit:
            break
    return X1, hist


def convex_admm(
    shape,
    idx: torch.Tensor,
    values: torch.Tensor,
    lam: list[float],
    rho: float | None = None,
    max_iter: int = 300,
    tol: float = 1e-5,
    monitor: Callable[[torch.Tensor], float] | None = None,
    time_limit: float | None = None,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, History]:
    """ADMM for 1/2 ||P_Omega(X - O)||^2 + sum_d lambda_d ||X_<d>||_* (convex, exact).

    The reported objective uses the split variables' singular values (free from the SVDs the
    updates compute anyway); it stops when that changes by less than ``tol`` and the splits
    agree with X to ``sqrt(tol)`` relative.
    """
    shape = tuple(shape)
    D = len(shape)
    mask, Obs = _masked(shape, idx, values, values.dtype, values.device)
    rho = rho if rho is not None else 1.0 / D  # the augmented weight per split
    X = (
        torch.zeros(shape, dtype=values.dtype, device=values.device)
        if init is None
        else init.clone()
    )
    Y = [X.clone() for _ in range(D)]
    M = [torch.zeros_like(X) for _ in range(D)]  # scaled duals
    hist = History()
    clock = 0.0
    F_prev = None
    denom = mask.to(values.dtype) + D * rho
    observed = torch.where(mask, Obs, torch.zeros_like(Obs))
    for _ in range(max_iter):
        start = time.perf_counter()
        # X-step: (P_Omega + D rho I) X = P_Omega O + rho sum_d (Y_d - M_d)
        X = (observed + rho * sum(Y[d] - M[d] for d in range(D))) / denom
        nuc, resid = 0.0, 0.0
        for d in range(D):
            U, S, Vh = torch.linalg.svd(unfold(X + M[d], d), full_matrices=False)
            s = (S - lam[d] / rho).clamp_min(0)
            r = int((s > 0).sum())
            Y[d] = fold((U[:, :r] * s[:r]) @ Vh[:r], shape, d)
            M[d] = M[d] + X - Y[d]
            nuc += lam[d] * float(s.sum())
            resid = max(resid, float((X - Y[d]).norm() / X.norm().clamp_min(1e-30)))
        F = 0.5 * float(((X - Obs)[mask] ** 2).sum()) + nuc
        clock += time.perf_counter() - start
        hist.objective.append(F)
        hist.time.append(clock)
        if monitor is not None:
            hist.rmse.append(float(monitor(X)))
            hist.rmse_time.append(clock)
        if F_prev is not None and abs(F_prev - F) <= tol * max(abs(F), 1e-30) and resid < tol**0.5:
            break
        F_prev = F
        if time_limit is not None and clock > time_limit:
            break
    return X, hist


def true_objective(X: torch.Tensor, idx, values, lam, penalty, theta) -> float:
    """F(X) = 1/2 ||P_Omega(X - O)||^2 + sum_d lambda_d phi(X_<d>) on a dense tensor.

    For the convex penalty this is the exact objective; for a nonconvex one it uses the
    per-mode weight lambda_d with the penalty shape of ``penalties.value`` at threshold lambda_d.
    """
    ix = tuple(idx[:, d] for d in range(X.dim()))
    loss = 0.5 * float(((X[ix] - values) ** 2).sum())
    reg = 0.0
    for d in range(X.dim()):
        s = torch.linalg.svdvals(unfold(X, d))
        reg += float(penalties.value(s, lam[d], theta, penalty))
    return loss + reg

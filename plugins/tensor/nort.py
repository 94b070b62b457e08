"""NORT: the proximal-average solver with sparse-plus-low-rank iterates (arXiv:2205.03059, Alg. 3).

Objective (the lambda convention of this plugin):

    F(X) = 1/2 ||P_Omega(X - O)||_F^2 + sum_d lambda_d phi(X_<d>)

``lambda_d`` is the weight of mode d in the objective. The proximal average (Sec. 3.1) writes the
regulariser as Lambda * sum_d alpha_d phi(.) with Lambda = sum_d lambda_d and alpha_d =
lambda_d / Lambda, so one iteration is

    V_t     = X_t + gamma_t (X_t - X_{t-1})                   (momentum, see below)
    Z       = V_t - grad f(V_t) = V_t + P_Omega(O - V_t)       (sparse plus low rank; step 1/tau, tau = 1)
    Y_d     = prox_{Lambda phi}(Z_<d>)   for every mode d      (partial SVD by power method)
    X_{t+1} = sum_d alpha_d fold_d(Y_d)

so every mode's singular values are thresholded at Lambda = sum_d lambda_d (= D lambda for a
scalar lambda). The authors' MATLAB code passes that threshold as its ``lambda``: its lambda is
D times ours. The objective that NORT decreases and reports is the proximal-average surrogate
F_PA = 1/2 ||P_Omega(X - O)||^2 + sum_d alpha_d * Lambda-penalty(sigma(Y_d)), evaluated from
the factors (for the nuclear norm it upper-bounds F(X)).

The iterate is stored as factors (U_d, s_d, V_d) per mode and never densified; Z's products
come from mltk_plugins.tensor.structured.

Momentum rules:
- ``adaptive`` (the JMLR paper): accept the extrapolated V_t when F_PA(V_t) <= F_PA(X_t) and grow
  gamma <- min(gamma / p, gamma_max); otherwise use X_t and shrink gamma <- p gamma.
- ``restart`` (the authors' code): beta = (c - 1) / (c + 2); c grows while the objective
  decreases and restarts at 1 when it does not.
- ``none``: plain proximal-average gradient descent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from . import penalties
from .structured import LowRankSum, Observed, SparsePlusLowRank, other_size, tall_mm


@dataclass
class Factors:
    """Per-mode truncated SVDs Y_d = U_d diag(s_d) V_d^T and mode weights alpha."""

    shape: tuple[int, ...]
    U: list[torch.Tensor]
    s: list[torch.Tensor]
    V: list[torch.Tensor]
    alpha: list[float]

    @classmethod
    def zeros(cls, shape, alpha, dtype, device) -> Factors:
        D = len(shape)
        return cls(
            tuple(shape),
            [torch.zeros(shape[d], 0, dtype=dtype, device=device) for d in range(D)],
            [torch.zeros(0, dtype=dtype, device=device) for _ in range(D)],
            [torch.zeros(other_size(shape, d), 0, dtype=dtype, device=device) for d in range(D)],
            list(alpha),
        )

    def low(self) -> LowRankSum:
        W = [a * U * s for a, U, s in zip(self.alpha, self.U, self.s, strict=False)]
        return LowRankSum(self.shape, W, list(self.V))

    @property
    def ranks(self) -> list[int]:
        return [int(s.numel()) for s in self.s]

    def dense(self) -> torch.Tensor:
        return self.low().dense()


@dataclass
class NortOptions:
    penalty: str = "lsp"
    theta: float = 1.0
    max_rank: tuple[int, ...] = (50, 50, 50)
    max_iter: int = 300
    tol: float = 1e-5  # relative change of the objective
    momentum: str = "adaptive"  # adaptive | restart | none
    gamma0: float = 0.5
    gamma_max: float = 0.9
    p: float = 0.5
    power_iters: int = 1
    explore: int = 3  # random columns added to the warm start while below the rank cap
    monitor_every: int = 5  # iterations between test-RMSE evaluations (not timed)
    time_limit: float | None = None


@dataclass
class History:
    objective: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    rmse: list[float] = field(default_factory=list)  # test RMSE, every ``monitor_every`` iterations
    rmse_time: list[float] = field(default_factory=list)
    ranks: list[list[int]] = field(default_factory=list)
    gamma: list[float] = field(default_factory=list)
    # (index of the phase's first iteration, name): the lambda path, the search near its best,
    # the chosen lambda run to convergence, the refit. The objective jumps between them.
    phases: list[tuple[int, str]] = field(default_factory=list)

    def phase(self, name: str) -> None:
        """Start a phase at the next iteration."""
        self.phases.append((len(self.objective), name))

    def extend(self, other: History, phase: str) -> None:
        """Append another run's iterations as ``phase`` (a new phase unless it is the current
        one); the other run's clock starts where this one's ends."""
        if not self.phases or self.phases[-1][1] != phase:
            self.phase(phase)
        t0 = self.time[-1] if self.time else 0.0
        self.objective += other.objective
        self.time += [t0 + t for t in other.time]
        self.rmse += other.rmse
        self.rmse_time += [t0 + t for t in other.rmse_time]
        self.ranks += other.ranks
        self.gamma += other.gamma

    def spans(self) -> list[tuple[str, int, int]]:
        """Each phase as (name, first iteration, one past its last)."""
        ends = [start for start, _ in self.phases[1:]] + [len(self.objective)]
        return [(name, start, end) for (start, name), end in zip(self.phases, ends, strict=True)]

    def phase_of(self) -> list[str]:
        """Each iteration's phase name ("" before the first phase)."""
        names = [""] * len(self.objective)
        for name, start, end in self.spans():
            names[start:end] = [name] * (end - start)
        return names


def _orth(A: torch.Tensor) -> torch.Tensor:
    return torch.linalg.qr(A, mode="reduced")[0]


def component_singular_values(W: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Singular values of W V^T (thin factors) without forming it: QR of W, eig of V^T V."""
    if W.shape[1] == 0:
        return W.new_zeros(0)
    _, Rw = torch.linalg.qr(W, mode="reduced")
    G = V.T @ V
    evals, evecs = torch.linalg.eigh(G)
    C = Rw @ (evecs * evals.clamp_min(0).sqrt())
    return torch.linalg.svdvals(C)


class NORT:
    """Solver state for one problem (observed coordinates, values) at given lambdas."""

    def __init__(
        self,
        obs: Observed,
        values: torch.Tensor,
        lam: list[float],
        opts: NortOptions,
        generator: torch.Generator | None = None,
    ):
        self.obs, self.values, self.opts = obs.prepare(), values, opts
        self.shape = obs.shape
        self.D = len(self.shape)
        self.dtype, self.device = values.dtype, values.device
        self.gen = generator or torch.Generator().manual_seed(0)
        self.set_lambda(lam)
        penalties.check_theta(opts.penalty, opts.theta)

    def set_lambda(self, lam: list[float]) -> None:
        if len(lam) != self.D:
            raise ValueError(f"need one lambda per mode ({self.D}), got {len(lam)}")
        self.lam = [float(x) for x in lam]
        self.Lam = sum(self.lam)
        self.alpha = [x / self.Lam for x in self.lam] if self.Lam > 0 else [1 / self.D] * self.D

    # -- objective -------------------------------------------------------------------------
    def regulariser(self, svals: list[torch.Tensor]) -> float:
        o = self.opts
        return sum(
            a * float(penalties.value(s, self.Lam, o.theta, o.penalty))
            for a, s in zip(self.alpha, svals, strict=False)
        )

    def objective(self, X: Factors, at_obs: torch.Tensor) -> float:
        loss = 0.5 * float(((self.values - at_obs) ** 2).sum())
        return loss + self.regulariser(X.s)

    # -- one proximal step ---------------------------------------------------------------
    def _randn(self, *size) -> torch.Tensor:
        return torch.randn(*size, generator=self.gen, dtype=torch.float64).to(
            self.device, self.dtype
        )

    def _eye(self, n: int) -> torch.Tensor:
        return torch.eye(n, dtype=self.dtype, device=self.device)

    def prox_step(self, point: LowRankSum, point_at_obs: torch.Tensor, warm: list) -> Factors:
        """X_{t+1} from the (extrapolated) point: gradient step, per-mode prox, average."""
        o = self.opts
        Z = SparsePlusLowRank(self.obs, self.values - point_at_obs, point)
        U_new, s_new, V_new = [], [], []
        for d in range(self.D):
            n_d, m_d = self.shape[d], other_size(self.shape, d)
            k = min(o.max_rank[d], n_d, m_d)
            if k == n_d:
                # the rank cap allows the whole mode (an image's 3 channels, or every mode of a
                # small tensor): one product with the identity gives the exact SVD. Z_<d>^T = Qv R
                # gives Z_<d> = R^T Qv^T, so neither power iterations nor a second product are
                # needed.
                Qv, Rv = torch.linalg.qr(Z.rmatmul(d, self._eye(n_d)), mode="reduced")
                B = Rv.T
            else:
                basis = warm[d]
                if basis.shape[1] < k:
                    extra = min(o.explore, k - basis.shape[1]) if basis.shape[1] else k
                    basis = torch.cat([basis, self._randn(n_d, extra)], 1)
                Q = _orth(basis)[:, :k]
                for it in range(o.power_iters):
                    Qv = _orth(Z.rmatmul(d, Q))  # (m_d, k)
                    if it + 1 < o.power_iters:
                        Q = _orth(Z.matmul(d, Qv))
                B = Z.matmul(d, Qv)  # (n_d, k): Z_<d> ~ B Qv^T
            Ub, Rb = torch.linalg.qr(B, mode="reduced")
            Us, S, Vh = torch.linalg.svd(Rb)
            s = penalties.prox(S, self.Lam, o.theta, o.penalty)
            keep = int((s > 0).sum())
            keep = min(keep, o.max_rank[d])
            U_new.append((Ub @ Us[:, :keep]).contiguous())
            s_new.append(s[:keep].contiguous())
            V_new.append(tall_mm(Qv, Vh[:keep].T))
        return Factors(self.shape, U_new, s_new, V_new, list(self.alpha))

    # -- the loop ------------------------------------------------------------------------
    def run(
        self,
        init: Factors | None = None,
        monitor: Callable[[Factors], float] | None = None,
        history: History | None = None,
        t0: float = 0.0,
        stop: Callable[[Factors], bool] | None = None,
    ) -> tuple[Factors, History]:
        """Iterate from ``init`` (zero when None) until the objective stalls, max_iter, or
        ``stop`` (called with every iterate, inside the clock) says so."""
        o = self.opts
        hist = history if history is not None else History()
        X1 = (
            init
            if init is not None
            else Factors.zeros(self.shape, self.alpha, self.dtype, self.device)
        )
        X1 = Factors(X1.shape, X1.U, X1.s, X1.V, list(self.alpha))  # new lambdas -> new weights
        X0 = X1
        low1 = X1.low()
        prt1 = low1.at(self.obs) if sum(X1.ranks) else torch.zeros_like(self.values)
        prt0 = prt1
        F1 = self.objective(X1, prt1)
        gamma, c = o.gamma0, 1
        clock = t0
        F_prev = None
        for it in range(o.max_iter):
            start = time.perf_counter()
            low0 = X0.low()
            point, point_obs, warm = low1, prt1, [X1.U[d] for d in range(self.D)]
            if it > 0 and o.momentum != "none":
                if o.momentum == "adaptive":
                    g = gamma
                else:
                    g = (c - 1) / (c + 2)
                if g > 0:
                    cand = low1.combine(1 + g, low0, -g)
                    cand_obs = (1 + g) * prt1 - g * prt0
                    if o.momentum == "adaptive":
                        sv = [
                            component_singular_values(W / a if a else W, V)
                            for W, V, a in zip(cand.W, cand.V, self.alpha, strict=False)
                        ]
                        Fv = 0.5 * float(((self.values - cand_obs) ** 2).sum()) + self.regulariser(
                            sv
                        )
                        if Fv <= F1:
                            point, point_obs = cand, cand_obs
                            gamma = min(gamma / o.p, o.gamma_max)
                        else:
                            gamma = o.p * gamma
                    else:
                        point, point_obs = cand, cand_obs
                    if point is cand:
                        warm = [torch.cat([X1.U[d], X0.U[d]], 1) for d in range(self.D)]
                    cand = cand_obs = None  # a rejected extrapolation is not kept in memory
            low0 = None  # nor X_{t-1}'s factors, once extrapolated from
            X_new = self.prox_step(point, point_obs, warm)
            point = point_obs = None
            prt_new = X_new.low().at(self.obs)
            F_new = self.objective(X_new, prt_new)
            if o.momentum == "restart":
                c = c + 1 if F_new < F1 else 1
            X0, prt0 = X1, prt1
            X1, prt1, low1 = X_new, prt_new, X_new.low()
            F_prev, F1 = F1, F_new
            halt = stop is not None and stop(X1)
            if self.device.type == "cuda":  # the clock reads finished work, not queued kernels
                torch.cuda.synchronize(self.device)
            clock += time.perf_counter() - start
            hist.objective.append(F1)
            hist.time.append(clock)
            hist.ranks.append(X1.ranks)
            hist.gamma.append(gamma if o.momentum == "adaptive" else (c - 1) / (c + 2))
            if monitor is not None and (it % o.monitor_every == 0 or it + 1 == o.max_iter):
                hist.rmse.append(float(monitor(X1)))
                hist.rmse_time.append(clock)
            if halt or (it > 0 and abs(F_prev - F1) <= o.tol * max(abs(F1), 1e-30)):
                break
            if o.time_limit is not None and clock - t0 > o.time_limit:
                break
            if not math.isfinite(F1):
                raise FloatingPointError(
                    "the objective became non-finite; lower --lambda or check the data"
                )
        return X1, hist


def sparse_spectral_norms(
    obs: Observed, values: torch.Tensor, iters: int = 20, seed: int = 0
) -> list[float]:
    """Largest singular value of every unfolding of the zero-filled observed tensor."""
    shape = obs.shape
    empty = LowRankSum(
        shape,
        [values.new_zeros(shape[d], 0) for d in range(len(shape))],
        [values.new_zeros(other_size(shape, d), 0) for d in range(len(shape))],
    )
    Z = SparsePlusLowRank(obs, values, empty)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for d in range(len(shape)):
        u = torch.randn(shape[d], 1, generator=gen, dtype=torch.float64).to(values)
        sigma = 0.0
        for _ in range(iters):
            v = Z.rmatmul(d, u)
            v = v / v.norm().clamp_min(1e-30)
            u = Z.matmul(d, v)
            sigma = float(u.norm())
            u = u / max(sigma, 1e-30)
        out.append(sigma)
    return out


def predict_at(X: Factors, obs: Observed) -> torch.Tensor:
    return X.low().at(obs)

"""From a config to what a teaching run needs: the problem, the kernel, the resolved settings
(the problem's defaults filled in, the eta warning given) and the learner's pool."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from mltk.errors import UsageError

from . import data as D
from . import losses as L
from .config import TeachConfig
from .kernels import Kernel
from .pools import DensePool, GridPool, stopping_loss
from .teaching import Settings

TOY_SNAPSHOTS = (0, 150, 450, 1000, 2000, 3000)  # the paper's 1-D figure
GRID_SNAPSHOTS = (0, 100, 300, 1000, 3000, 10000)


@dataclass
class Plan:
    problem: D.Problem
    kernel: Kernel
    settings: Settings
    rule: str  # residual | exact
    support: str  # dense | truncated
    initial_loss: float
    eta_bound: float
    config: TeachConfig  # with every default resolved (what config.json records)


def eta_bound(loss: str, max_diagonal: float) -> float:
    """The step size the paper's results assume: eta <= 1 / (2 L_L M_K), L_L the Lipschitz
    constant of dL/df in f and M_K = max K(x, x) (square loss and RBF: 1/4)."""
    ll = L.L_LIPSCHITZ[loss]
    return math.inf if ll == 0 else 1.0 / (2 * ll * max_diagonal)


def plan(cfg: TeachConfig, device=None, warn=None) -> Plan:
    prob = D.load(
        cfg.data,
        size=cfg.size,
        f0=cfg.f0,
        alternative=cfg.target_alt,
        face=cfg.face,
        start_face=cfg.start_face,
    )
    toy = prob.name == "toy1d" and cfg.data == "toy1d"
    kernel = Kernel(cfg.kernel, cfg.bandwidth or (0.5 if toy else 1.0), cfg.degree, cfg.coef0)
    if cfg.loss != "square" and not np.all(np.isin(prob.target, (-1.0, 1.0))):
        odd = prob.target[~np.isin(prob.target, (-1.0, 1.0))][0]
        raise UsageError(
            f"--loss {cfg.loss} needs targets of -1 and +1; {prob.name} has "
            f"values such as {odd:g} (use --loss square)"
        )
    import torch

    max_diag = 1.0 if kernel.stationary else float(kernel.diagonal(torch.from_numpy(prob.x)).max())
    bound = eta_bound(cfg.loss, max_diag)
    eta = cfg.eta or (0.01 if toy else (bound if math.isfinite(bound) else 0.25))
    if eta > bound * (1 + 1e-12) and warn is not None:
        warn(
            f"--eta {eta:g} is above 1/(2 L M_K) = {bound:.4g}, the largest step the paper's "
            "convergence results cover; the loss may oscillate or diverge"
        )
    initial = stopping_loss(cfg.loss, float(L.value(cfg.loss, prob.f0, prob.target).sum()), prob.n)
    eps_rel = cfg.eps_rel
    if cfg.eps is None and eps_rel is None and not toy:
        eps_rel = 0.05
    eps = cfg.eps or (eps_rel * initial if eps_rel else 1e-4)
    rule = cfg.rule
    if rule == "auto":
        rule = "exact" if (not kernel.stationary or cfg.loss != "square") else "residual"
    support = cfg.support
    on_cpu = device is None or getattr(device, "type", "cpu") == "cpu"
    can_truncate = prob.grid is not None and kernel.stationary
    if support == "truncated" and not can_truncate:
        raise UsageError("--support truncated needs an image grid and an rbf or laplace kernel")
    if support == "auto":
        support = "truncated" if can_truncate and on_cpu else "dense"
    snaps = cfg.snapshots or (TOY_SNAPSHOTS if prob.grid is None else GRID_SNAPSHOTS)
    settings = Settings(
        eta=eta,
        eps=eps,
        max_iter=cfg.max_iter,
        loss=cfg.loss,
        aggregate=cfg.aggregate,
        pool_fraction=cfg.pool_fraction,
        alt_probability=cfg.alt_probability,
        snapshots=tuple(snaps),
    )
    resolved = replace(
        cfg,
        bandwidth=kernel.h,
        eta=eta,
        eps=eps,
        eps_rel=eps_rel,
        rule=rule,
        support=support,
        snapshots=tuple(snaps),
    )
    return Plan(prob, kernel, settings, rule, support, initial, bound, resolved)


def pool_factory(p: Plan, device=None, dtype=None):
    """``candidates -> pool`` for ``teaching.teach``."""
    prob = p.problem
    if p.support == "truncated":
        h, w = prob.grid
        return lambda c: GridPool(
            prob.target.reshape(h, w),
            prob.f0.reshape(h, w),
            p.kernel,
            p.settings.loss,
            p.rule,
            candidates=c,
        )
    import torch

    dtype = dtype or torch.float64
    x, y, f0 = (
        torch.as_tensor(a, dtype=dtype, device=device) for a in (prob.x, prob.target, prob.f0)
    )
    return lambda c: DensePool(x, y, f0, p.kernel, p.settings.loss, p.rule, candidates=c)

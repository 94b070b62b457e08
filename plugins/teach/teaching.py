"""Algorithm 1 of the paper: the teacher feeds examples, the learner takes functional gradient
steps, until ``loss < eps`` or T steps.

    f^{t+1} = f^t - eta G,    G = mean over the pack of dL/df(f^t(x_i), y_i) K(x_i, .)

(``aggregate="sum"`` drops the mean). The loss is the notebooks' ``||f - f*||_2 / N`` over the
pool, recorded at t = 0 (f0) and after every step; the iterative teaching dimension ITD_eps is
the first t at which it is below eps. Each step also logs the greedy ratio
``gamma_t = E_x S(f^t; x) / max_x S(f^t; x)`` with ``S(f; x) = ||dL/df(f(x), f*(x)) K(x, .)||_H^2``
(for the square loss and K(x, x) = 1: ``mean(r^2) / max(r^2)``) and ``psi(t) = sum gamma``: the
paper bounds ``min_t S`` by ``2 L(f0) / (eta t)`` for RFT and ``2 L(f0) / (eta psi(t))`` for GFT,
so ``1 / mean(gamma)`` is the speed-up of GFT over RFT the theory predicts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import losses as L
from .pools import stopping_loss
from .teachers import Picker, Teacher

SEQUENCE_LIMIT = 64  # packs up to this size are recorded example by example


@dataclass(frozen=True)
class Settings:
    eta: float = 0.01
    eps: float = 1e-4
    max_iter: int = 20_000
    loss: str = "square"
    aggregate: str = "mean"  # mean | sum over the pack
    pool_fraction: float = 0.8  # pool-gft
    alt_probability: float = 0.2  # alt-gft
    snapshots: tuple[int, ...] = ()


@dataclass
class Trace:
    """One teacher's run: the loss curve, the greedy ratios, the sequence and the expansion."""

    teacher: Teacher
    seed: int
    losses: np.ndarray  # (steps + 1,): t = 0 is f0
    gammas: np.ndarray  # (steps,)
    itd: int | None  # first t with loss < eps, None if T was reached first
    coef: np.ndarray  # (N,): alpha summed per pool point: f = f0 + sum_i coef_i K(x_i, .)
    final: np.ndarray  # (N,): f on the pool at the end
    seconds: float
    sequence: dict[str, np.ndarray] = field(default_factory=dict)  # t, index, label, alpha
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)  # t -> f^t on the pool
    picks: dict[int, np.ndarray] = field(default_factory=dict)  # t -> indices taught at t

    @property
    def steps(self) -> int:
        return len(self.gammas)

    @property
    def iterations_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("inf")

    @property
    def examples(self) -> int:
        """Distinct pool points in the teaching set."""
        return int(np.count_nonzero(self.coef))


def teach(
    build_pool,
    target: np.ndarray,
    teacher: Teacher,
    settings: Settings,
    *,
    seed: int = 0,
    alternative: np.ndarray | None = None,
    on_step=None,
) -> Trace:
    """Run one teacher to ``loss < eps`` or ``max_iter`` steps. ``build_pool(candidates)`` makes
    the learner's pool (a DensePool or GridPool; ``candidates``: pool-gft's fixed subset, drawn
    from ``seed``); ``alternative`` is alt-gft's other target on the pool."""
    picker = Picker(
        teacher,
        len(target),
        seed,
        pool_fraction=settings.pool_fraction,
        alt_probability=settings.alt_probability,
    )
    if teacher.kind == "alt-gft" and alternative is None:
        raise ValueError("alt-gft needs an alternative target")
    pool = build_pool(picker.candidates)
    trace = _loop(pool, target, picker, settings, alternative, on_step)
    trace.seed = seed
    return trace


def _loop(pool, target, picker: Picker, s: Settings, alternative, on_step) -> Trace:
    n, loss_kind, eps = pool.n, s.loss, s.eps
    exact_total = getattr(pool, "exact_total", None)
    mean = s.aggregate == "mean"
    coef = np.zeros(n)
    losses = [stopping_loss(loss_kind, pool.total(), n)]
    gammas: list[float] = []
    seq: dict[str, list] = {"t": [], "index": [], "label": [], "alpha": []}
    record = picker.k <= SEQUENCE_LIMIT
    snaps, picks, wanted = {}, {}, set(s.snapshots)
    itd, t, t0 = None, 0, time.perf_counter()
    while True:
        loss = losses[-1]
        if exact_total is not None and abs(loss - eps) <= 1e-6 * eps:
            loss = losses[-1] = stopping_loss(loss_kind, exact_total(), n)  # no drift at the edge
        if loss < eps:
            itd = t
            break
        if t >= s.max_iter:
            break
        if t in wanted:
            snaps[t] = pool.values()
        gammas.append(pool.greedy_ratio())
        idx = picker.pick(pool)
        labels = (alternative if picker.use_alternative() else target)[idx]
        g = L.derivative(loss_kind, pool.at(idx), labels)
        alphas = -s.eta * g / (len(idx) if mean else 1.0)
        pool.add(idx, alphas)
        np.add.at(coef, idx, alphas)
        if t in wanted:
            picks[t] = idx
        if record:
            seq["t"].append(np.full(len(idx), t))
            seq["index"].append(idx)
            seq["label"].append(labels)
            seq["alpha"].append(alphas)
        t += 1
        losses.append(stopping_loss(loss_kind, pool.total(), n))
        if on_step is not None:
            on_step(t, losses[-1], gammas[-1])
    seconds = time.perf_counter() - t0
    if exact_total is not None:  # the last value exactly, whatever the increments did
        losses[-1] = stopping_loss(loss_kind, exact_total(), n)
    sequence = (
        {k: np.concatenate(v) if v else np.zeros(0) for k, v in seq.items()} if record else {}
    )
    return Trace(
        picker.teacher,
        0,
        np.asarray(losses),
        np.asarray(gammas),
        itd,
        coef,
        pool.values(),
        seconds,
        sequence,
        snaps,
        picks,
    )

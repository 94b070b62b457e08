"""The growth space and the search at each arrival.

A growth is a list of operators applied in order, written ``depth+1`` (a layer in both towers),
``depth+1:text`` / ``depth+1:vision`` (one tower), ``width2`` (both towers x2; ``width1.5``:
Net2Net's random mapping), ``shared+1`` (a shared layer on top of both towers) and ``none``;
``&`` joins operators of one arrival (``depth+1&width2``), and a schedule lists one growth per
arrival after the first, comma-separated (``depth+1,width2``).

The space at an arrival is every single operator and every pair of operators of two kinds, plus
"no growth", whose grown model stays within the parameter budget: ``params_per_pair`` times the
pairs seen so far (the space grows with the data). Each candidate inherits the current weights
(with PIM if asked), trains ``proxy_steps`` on the new and replayed pairs, and is scored by its
validation zero-shot accuracy minus ``lam`` x GFLOPs per pair; the best one trains on. The
candidates' proxy training counts in the FLOPs spent.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from . import growth as G
from .ops import _OP, OPS, describe


def apply(model, ops: list[str], *, depth_init: str = "zero", noise: float = 0.0, seed: int = 0):
    """The model grown by ``ops`` in order (a new model; the input is untouched)."""
    for i, op in enumerate(ops):
        m = _OP.match(op)
        if m is None:
            raise ValueError(f"unknown growth {op!r}")
        if m.group(1):
            model = G.deepen(model, m.group(2) or "both", int(m.group(1)), depth_init)
        elif m.group(3):
            model = G.widen(model, float(m.group(3)), m.group(4) or "both", noise, seed + i)
        elif m.group(5):
            model = G.share(model, int(m.group(5)))
    return model


def space(shareable: bool) -> list[list[str]]:
    """No growth, every single operator, and every pair of a depth operator with another
    kind (or of two other kinds)."""
    ops = [op for op in OPS if shareable or op != "shared+1"]
    singles = [[op] for op in ops]
    depth = [op for op in ops if op.startswith("depth")]
    # two depth operators are one depth step (text + vision = both) or a lopsided one: not paired
    pairs = [list(p) for p in itertools.combinations(ops, 2) if not set(p) <= set(depth)]
    return [[], *singles, *pairs]


@dataclass
class Candidate:
    ops: list[str]
    params: int
    gflops: float
    accuracy: float = float("nan")
    score: float = float("nan")
    train_flops: float = 0.0
    model: object = None


def search(
    model,
    candidates: list[list[str]],
    *,
    budget: int,
    grow: Callable,
    measure: Callable,
    proxy: Callable,
    lam: float,
    log=None,
) -> tuple[Candidate, list]:
    """The best candidate: ``grow(model, ops)`` builds it, ``measure(m) -> (params, gflops)``,
    ``proxy(m) -> (accuracy, train_flops)`` trains and scores it; those over ``budget``
    parameters are skipped. Ties go to the earlier (smaller) candidate."""
    fitting = []
    for ops in candidates:
        grown = grow(model, ops)
        params, gflops = measure(grown)
        if params > budget and ops:
            if log:
                log(f"  {describe(ops):24s} {params:>10,} params: over the budget {budget:,}")
            continue
        fitting.append((Candidate(ops, params, gflops), grown))
    if len(fitting) == 1:  # nothing to compare: no proxy training spent
        only, grown = fitting[0]
        only.model = grown
        return only, [only]
    rows = []
    best = None
    for c, grown in fitting:
        c.accuracy, c.train_flops = proxy(grown)
        c.score = c.accuracy - lam * c.gflops
        if log:
            log(
                f"  {describe(c.ops):24s} {c.params:>10,} params, {c.gflops:.4f} GFLOPs/pair: "
                f"zero-shot {c.accuracy:.3f}, score {c.score:.4f}"
            )
        rows.append(c)
        if best is None or c.score > best.score:
            if best is not None:
                best.model = None
            best, c.model = c, grown
        else:
            del grown
    return best, rows

"""The teachers of Algorithm 1: which k examples the learner sees at step t, and their labels.

- ``gft``: greedy functional teaching, the k pool points where the learner is worst (the largest
  ``|f(x) - f*(x)|``, distinct within a pack; or the exact ``argmax ||dL/df K(x, .)||_H``);
- ``rft``: random functional teaching, k points uniform with replacement;
- ``whole``: every pool point each step (plain functional gradient descent);
- ``pool-gft``: greedy over a fixed random fraction p of the pool (the notebooks draw it once);
- ``alt-gft``: greedy picks, but with probability q a step's labels come from an alternative
  target (one draw per step, as the notebooks do): a noisy teacher.

k is a count (``gft-1``) or a fraction of the pool (``rft-0.05``: ``int(0.05 N)`` points, as the
notebooks compute it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mltk.errors import UsageError

KINDS = ("gft", "rft", "whole", "pool-gft", "alt-gft")
LABELS = {
    "gft": "GFT",
    "rft": "RFT",
    "whole": "Whole",
    "pool-gft": "Pool GFT",
    "alt-gft": "Alt GFT",
}


@dataclass(frozen=True)
class Teacher:
    kind: str
    k: float = 1  # a count (>= 1) or a fraction of the pool (0 < k < 1)

    @property
    def name(self) -> str:
        """As the command line spells it: gft-1, rft-0.05, whole."""
        return "whole" if self.kind == "whole" else f"{self.kind}-{_num(self.k)}"

    @property
    def label(self) -> str:
        """As the paper's legends spell it: GFT-1, RFT-0.05, Whole."""
        return "Whole" if self.kind == "whole" else f"{LABELS[self.kind]}-{_num(self.k)}"

    @property
    def random(self) -> bool:
        """Its picks or labels depend on the seed."""
        return self.kind in ("rft", "pool-gft", "alt-gft")

    def size(self, n: int) -> int:
        """Examples per step on a pool of n points."""
        if self.kind == "whole":
            return n
        return int(self.k) if self.k >= 1 else max(1, int(self.k * n))


def _num(k: float) -> str:
    return str(int(k)) if float(k).is_integer() else f"{k:g}"


def parse(names: tuple[str, ...] | list[str], default_k: float) -> list[Teacher]:
    """``gft``, ``gft-14``, ``rft-0.05``, ``whole``, ``pool-gft-1``, ``alt-gft`` -> Teachers."""
    out = []
    for raw in names:
        name = raw.strip().lower()
        kind, k = name, default_k
        head, _, tail = name.rpartition("-")
        if head and _is_number(tail):
            kind, k = head, float(tail)
        if kind not in KINDS:
            raise UsageError(
                f"--teacher {raw!r} is not one of {', '.join(KINDS)} (optionally with -K, e.g. "
                "gft-1 or rft-0.05)"
            )
        if not (k >= 1 and float(k).is_integer()) and not 0 < k < 1:
            raise UsageError(
                f"--teacher {raw!r}: k must be a whole count >= 1 or a pool fraction in (0, 1)"
            )
        out.append(Teacher(kind, 1 if kind == "whole" else k))
    if len({t.name for t in out}) != len(out):
        raise UsageError(f"--teacher lists the same teacher twice: {', '.join(names)}")
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class Picker:
    """One teacher's choices over a run: the candidate set, the random stream, the labels."""

    def __init__(
        self,
        teacher: Teacher,
        n: int,
        seed: int,
        *,
        pool_fraction: float = 0.8,
        alt_probability: float = 0.2,
    ):
        self.teacher, self.n = teacher, n
        self.k = teacher.size(n)
        if self.k > n:
            raise UsageError(
                f"{teacher.name} asks for {self.k} examples per step; the pool has {n}"
            )
        self.rng = np.random.default_rng(seed)
        self.candidates = None
        if teacher.kind == "pool-gft":  # one fixed subset for the whole run
            m = max(self.k, int(pool_fraction * n))
            self.candidates = np.sort(self.rng.choice(n, m, replace=False))
        self.q = alt_probability

    def pick(self, pool) -> np.ndarray:
        kind = self.teacher.kind
        if kind == "whole":
            return np.arange(self.n)
        if kind == "rft":
            return self.rng.integers(0, self.n, self.k)
        return pool.pick(self.k)

    def use_alternative(self) -> bool:
        """Whether this step's labels come from the alternative target (alt-gft only)."""
        return self.teacher.kind == "alt-gft" and bool(self.rng.random() < self.q)

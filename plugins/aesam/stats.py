"""Paired statistics over seeds: an optimizer's accuracy minus SAM's on the same seeds."""

from __future__ import annotations

import math
import statistics


def paired(a: list[float], b: list[float]) -> dict:
    """The per-seed differences ``a - b``: their mean, its standard error, and the two-sided
    p-values of the paired t-test and of the sign test (ties dropped). With one seed only the
    mean is defined."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    out = {"n": n, "mean": statistics.fmean(d) if d else math.nan}
    out.update(se=None, t_p=None, sign_p=None)
    if n < 2:
        return out
    se = statistics.stdev(d) / math.sqrt(n)
    if se == 0:
        t_p = 1.0 if out["mean"] == 0 else 0.0
    else:
        from scipy.stats import t as student_t

        t_p = float(2 * student_t.sf(abs(out["mean"]) / se, n - 1))
    pos, neg = sum(x > 0 for x in d), sum(x < 0 for x in d)
    m = pos + neg
    tail = sum(math.comb(m, k) for k in range(min(pos, neg) + 1)) / 2**m if m else 0.5
    out.update(se=se, t_p=t_p, sign_p=min(1.0, 2 * tail))
    return out


def describe(p: dict, scale: float = 100.0) -> str:
    """'+0.44 ± 0.21 (t p 0.09, sign p 0.38)' for a table cell: accuracy differences in
    percentage points (``scale`` 100)."""
    mean = f"{scale * p['mean']:+.2f}"
    if p["se"] is None:
        return mean
    return f"{mean} ± {scale * p['se']:.2f} (t p {p['t_p']:.2g}, sign p {p['sign_p']:.2g})"

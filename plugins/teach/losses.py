"""The learner's pointwise losses L(f(x), y) and their functional derivatives dL/df.

Square ``(y - f)^2`` with ``dL/df = -2 (y - f)`` (the notebooks' form, without the 1/2), and
for +-1 targets the hinge ``max(0, 1 - y f)`` and the logistic ``log(1 + exp(-y f))``. Written once
for numpy arrays and torch tensors (the grid path is numpy, the dense path torch).
"""

from __future__ import annotations

import numpy as np

LOSSES = ("square", "hinge", "logistic")
L_LIPSCHITZ = {"square": 2.0, "hinge": 0.0, "logistic": 0.25}  # of dL/df in f


def _xp(a):
    if isinstance(a, np.ndarray):
        return np
    import torch

    return torch


def value(loss: str, f, y):
    """L(f(x), y), elementwise."""
    if loss == "square":
        return (y - f) ** 2
    m = y * f
    if loss == "hinge":
        return (1 - m).clip(min=0)
    xp = _xp(m)
    return (-m).clip(min=0) + xp.log1p(xp.exp(-xp.abs(m)))  # log(1 + e^-m), overflow-free


def derivative(loss: str, f, y):
    """dL/df at (f(x), y), elementwise."""
    if loss == "square":
        return -2 * (y - f)
    m = y * f
    if loss == "hinge":
        return -y * (m < 1)
    xp = _xp(m)
    return -y / (1 + xp.exp(m.clip(max=700)))

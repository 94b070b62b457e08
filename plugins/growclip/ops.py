"""Growth operators as text (stdlib only: the CLI checks --schedule with it).

``depth+1`` (a layer in both towers), ``depth+1:text`` / ``depth+1:vision`` (one tower),
``width2`` (both towers x2; ``width1.5``: Net2Net's random mapping), ``shared+1`` (a shared layer
on top of both towers), ``none``; ``&`` joins the operators of one arrival, and a schedule lists
one growth per arrival that starts from a model (after the first of a new run), comma-separated.
"""

from __future__ import annotations

import re

OPS = ("depth+1", "depth+1:text", "depth+1:vision", "width2", "shared+1")
_OP = re.compile(
    r"^(?:none|depth\+(\d+)(?::(text|vision))?|width(\d+(?:\.\d+)?)(?::(text|vision))?"
    r"|shared\+(\d+))$"
)


def parse_growth(text: str) -> list[str]:
    """``"depth+1&width2"`` -> ``["depth+1", "width2"]`` (validated); ``"none"`` -> []."""
    ops = [t.strip() for t in text.split("&") if t.strip()]
    for op in ops:
        m = _OP.match(op)
        if not m:
            raise ValueError(
                f"unknown growth {op!r}: use none, depth+N, depth+N:text|vision, widthK, "
                "widthK:text|vision or shared+N, joined with &"
            )
        if m.group(3) and float(m.group(3)) <= 1.0:
            raise ValueError(f"growth {op!r}: a width factor must be above 1")
        if (m.group(1) and int(m.group(1)) == 0) or (m.group(5) and int(m.group(5)) == 0):
            raise ValueError(f"growth {op!r}: add at least one layer")
    return [op for op in ops if op != "none"]


def parse_schedule(text: str) -> list[list[str]]:
    return [parse_growth(part) for part in text.split(",")]


def describe(ops: list[str]) -> str:
    return "&".join(ops) if ops else "none"


def check_widths(schedule: list[list[str]], text: int, vision: int) -> None:
    """Follow the towers' widths through a schedule: a shared layer needs equal widths when it
    is added, and a shared block needs both towers widened together afterwards."""
    shared = False
    for arrival, ops in enumerate(schedule, 1):
        for op in ops:
            m = _OP.match(op)
            if m.group(3):
                k, tower = float(m.group(3)), m.group(4)
                if shared and tower:
                    raise ValueError(
                        f"growth {op!r} (entry {arrival}): the towers share layers, so widen both"
                    )
                text = round(text * k) if tower in (None, "text") else text
                vision = round(vision * k) if tower in (None, "vision") else vision
            elif m.group(5):
                if text != vision:
                    raise ValueError(
                        f"growth {op!r} (entry {arrival}): shared layers need equal width in "
                        f"both towers; text would be {text}, vision {vision}"
                    )
                shared = True

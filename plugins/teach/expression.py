"""Target and start functions written as expressions, evaluated without ``eval``.

``exp(-(x + 10)**2 / 2) / sqrt(2*pi)`` is parsed with ``ast`` and walked: numbers, the variables
(``x`` or ``x1``..``xd``; on an image ``x1`` is the row and ``x2`` the column, in pixels), + - * /
** and unary minus, and a fixed list of numpy functions. Anything else (attributes, calls of
other names, subscripts, lambdas, comprehensions) is refused with the offending piece named.
"""

from __future__ import annotations

import ast
import math

import numpy as np

from mltk.errors import UsageError

FUNCTIONS = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "tanh": np.tanh,
    "sinc": np.sinc,
    "sign": np.sign,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "where": np.where,
    # the density of N(mu, sigma^2), as the paper's toy target is written
    "normal": lambda x, mu=0.0, sigma=1.0: (
        np.exp(-(((x - mu) / sigma) ** 2) / 2) / (sigma * math.sqrt(2 * math.pi))
    ),
}
CONSTANTS = {"pi": math.pi, "e": math.e}
OPS = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
}


def looks_like_expression(text: str) -> bool:
    """A value that names no file but uses a variable: ``x``, ``x1``... (or a bare number)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return bool(names - set(FUNCTIONS) - set(CONSTANTS)) or not names


def evaluate(text: str, x: np.ndarray) -> np.ndarray:
    """The expression at the rows of ``x`` (N, d): (N,) float64."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise UsageError(f"the expression {text!r} is not valid ({exc.msg})") from exc
    env = {"x": x[:, 0], **{f"x{j + 1}": x[:, j] for j in range(x.shape[1])}, **CONSTANTS}
    with np.errstate(all="ignore"):
        out = _eval(tree.body, env, text)
    out = np.broadcast_to(np.asarray(out, dtype=np.float64), (x.shape[0],)).copy()
    return out


def _eval(node, env, text):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        names = ", ".join(sorted(k for k in env if k not in CONSTANTS))
        raise UsageError(f"the expression {text!r} uses {node.id!r}; its variables are {names}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, env, text)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        return OPS[type(node.op)](_eval(node.left, env, text), _eval(node.right, env, text))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in OPS:
        left, right = _eval(node.left, env, text), _eval(node.comparators[0], env, text)
        return OPS[type(node.ops[0])](left, right).astype(np.float64)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in FUNCTIONS:
            raise UsageError(
                f"the expression {text!r} calls {node.func.id!r}; allowed: {', '.join(FUNCTIONS)}"
            )
        return FUNCTIONS[node.func.id](*[_eval(a, env, text) for a in node.args])
    piece = ast.get_source_segment(text, node) or type(node).__name__
    raise UsageError(f"the expression {text!r} contains {piece!r}, which is not allowed")

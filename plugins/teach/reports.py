"""What a teaching run writes beside its numbers: loss curves (CSV and a log-scale plot),
snapshots of f^t (the paper's 1-D panels, or a row of images) and the teaching sequence."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from mltk import atomic

from .data import Problem
from .teaching import Trace


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic.write_bytes(path, buf.getvalue())
    _plt().close(fig)


def curves_csv(path: Path, traces: list[Trace]) -> None:
    """One row per step t, one column per teacher and seed (blank after a run stopped)."""
    cols = [f"{t.teacher.name}/seed{t.seed}" for t in traces]
    longest = max(len(t.losses) for t in traces)
    lines = [",".join(["t", *cols])]
    for i in range(longest):
        cells = [repr(float(t.losses[i])) if i < len(t.losses) else "" for t in traces]
        lines.append(",".join([str(i), *cells]))
    atomic.write_text(path, "\n".join(lines) + "\n")


def plot_curves(path: Path, traces: list[Trace], eps: float, title: str) -> None:
    """Loss against t on a log scale: each teacher's median over seeds, the range shaded (a run
    that reached eps counts with its last loss after it stopped)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    by_teacher: dict[str, list[Trace]] = {}
    for t in traces:
        by_teacher.setdefault(t.teacher.label, []).append(t)
    for label, group in by_teacher.items():
        longest = max(len(t.losses) for t in group)
        padded = np.empty((len(group), longest))
        for i, t in enumerate(group):  # a run that stopped keeps its last loss
            padded[i, : len(t.losses)] = t.losses
            padded[i, len(t.losses) :] = t.losses[-1]
        steps = np.arange(longest)
        (line,) = ax.plot(steps, np.nanmedian(padded, 0), lw=1.4, label=label)
        if len(group) > 1:
            ax.fill_between(
                steps,
                np.nanmin(padded, 0),
                np.nanmax(padded, 0),
                alpha=0.2,
                color=line.get_color(),
                lw=0,
            )
    ax.axhline(eps, color="grey", ls=":", lw=1, label=f"eps = {eps:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("iteration t")
    ax.set_ylabel("||f - f*||_2 / N")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    _save(fig, path)


def plot_snapshots(path: Path, problem: Problem, trace: Trace) -> None:
    """f^t at the snapshot steps (and at the end): curves against f* with the example taught at
    t marked, as the paper's 1-D figure; images in a row, with the target last."""
    plt = _plt()
    shots = dict(sorted(trace.snapshots.items()))
    shots[trace.steps] = trace.final
    if problem.grid is not None:
        fig, axes = plt.subplots(1, len(shots) + 1, figsize=(1.8 * (len(shots) + 1), 2.1))
        lo, hi = np.percentile(problem.target, [1, 99])
        for ax, (t, values) in zip(axes, shots.items()):
            ax.imshow(problem.as_image(values), cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"t = {t}", fontsize=8)
        axes[-1].imshow(problem.as_image(problem.target), cmap="gray", vmin=lo, vmax=hi)
        axes[-1].set_title("f*", fontsize=8)
        for ax in axes:
            ax.axis("off")
    else:
        order = np.argsort(problem.x[:, 0])
        x = problem.x[order, 0]
        fig, axes = plt.subplots(1, len(shots), figsize=(2.6 * len(shots), 2.3), sharey=True)
        for ax, (t, values) in zip(np.atleast_1d(axes), shots.items()):
            ax.plot(x, problem.target[order], "k--", lw=1, label="f*")
            ax.plot(x, values[order], lw=1.3, label="f^t")
            for i in trace.picks.get(t, [])[:8]:
                ax.axvline(problem.x[i, 0], color="tab:red", lw=0.8)
            ax.set_title(f"t = {t}", fontsize=9)
        np.atleast_1d(axes)[0].legend(frameon=False, fontsize=7)
    fig.suptitle(f"{trace.teacher.label} on {problem.name}", fontsize=9, y=1.04)
    _save(fig, path)


def sequence_csv(path: Path, problem: Problem, trace: Trace) -> bool:
    """t, x1..xd, y, alpha per example taught (packs of at most 64 are recorded)."""
    seq = trace.sequence
    if not seq:
        return False
    d = problem.x.shape[1]
    names = ["row", "col"] if problem.grid is not None else [f"x{j + 1}" for j in range(d)]
    lines = [",".join(["t", *names, "y", "alpha"])]
    xs = problem.x[seq["index"].astype(np.int64)]
    for t, x, y, a in zip(seq["t"], xs, seq["label"], seq["alpha"]):
        coords = [str(int(v)) if problem.grid is not None else repr(float(v)) for v in x]
        lines.append(",".join([str(int(t)), *coords, repr(float(y)), repr(float(a))]))
    atomic.write_text(path, "\n".join(lines) + "\n")
    return True


def values_csv(path: Path, x: np.ndarray, values: np.ndarray) -> None:
    """x1..xd, f per point."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*(f"x{j + 1}" for j in range(x.shape[1])), "f"])
    for row, v in zip(x, values):
        w.writerow([*(repr(float(c)) for c in row), repr(float(v))])
    atomic.write_text(path, buf.getvalue())


def image_png(path: Path, image: np.ndarray) -> None:
    """A grid of values as an 8-bit grey PNG, scaled from its 1st to 99th percentile."""
    from PIL import Image

    lo, hi = np.percentile(image, [1, 99])
    scaled = np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((scaled * 255).round().astype(np.uint8)).save(buf, format="PNG")
    atomic.write_bytes(path, buf.getvalue())

"""Predictions with their explanations, and the scores of `eval`: accuracy (the whole label
right: the class and, for `select`, exactly the chosen options), macro-F1 over the answer
classes (a `select` with the wrong options counts as a miss of `select`), accuracy per answer
phenomenon, and a confusion matrix.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from . import labels as L
from . import model as M

WRONG_SELECT = "select (wrong options)"


@dataclass
class Prediction:
    label: L.Label
    probabilities: dict[str, float]  # per class of labels.KINDS the question allows
    option_probabilities: list[float]
    skeleton: list[tuple[str, float]]  # question-side tokens and their skeleton weight
    relevance: list[tuple[str, float]]  # answer tokens and their relevance (or attention)


def _tokens(text: str, offsets, weights, mask) -> list[tuple[str, float]]:
    return [(text[s:e], float(w)) for (s, e), w, m in zip(offsets, weights, mask) if m and e > s]


@torch.no_grad()
def predict(model, examples, batch: int = 64) -> list[Prediction]:
    was = model.training
    model.eval()
    made = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        b = M.make_batch(chunk, model.encoder, joint=model.joint)
        out = model(b)
        decided = M.decide(out, [len(e.options) for e in chunk])
        for i, (e, (label, pk, po)) in enumerate(zip(chunk, decided)):
            allowed = L.OPTION_KINDS if e.options else L.YESNO_KINDS
            probs = {k: pk[j] for j, k in enumerate(L.KINDS) if k in allowed}
            skel = rel = []
            if out.skeleton is not None:
                skel = _tokens(
                    b.texts[0][i], b.side[2][i], out.skeleton[i].tolist(), b.side[1][i].tolist()
                )
            weights = out.relevance if out.relevance is not None else None
            if weights is None and out.hops is not None:
                weights = out.hops[:, -1]
            if weights is not None:
                rel = _tokens(
                    b.texts[1][i], b.answer[2][i], weights[i].tolist(), b.answer[1][i].tolist()
                )
            made.append(Prediction(label, probs, po, skel, rel))
    model.train(was)
    return made


def macro_f1(truth: list[str], guess: list[str], classes) -> float:
    """Mean F1 over the classes that occur in `truth` (a guess outside `classes` is a miss)."""
    f1s = []
    for c in classes:
        tp = sum(t == c and g == c for t, g in zip(truth, guess))
        fp = sum(t != c and g == c for t, g in zip(truth, guess))
        fn = sum(t == c and g != c for t, g in zip(truth, guess))
        if tp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def _class(label: L.Label, truth: L.Label) -> str:
    if label.kind == "select" and truth.kind == "select" and label != truth:
        return WRONG_SELECT
    return label.kind


def score(examples, predictions) -> dict:
    """accuracy, macro_f1, per-phenomenon accuracy and the confusion counts."""
    truth = [e.label for e in examples]
    guess = [p.label if isinstance(p, Prediction) else p for p in predictions]
    right = [t == g for t, g in zip(truth, guess)]
    by = defaultdict(list)
    for e, r in zip(examples, right):
        by[e.phenomenon or ("yes/no" if not e.options else "options")].append(r)
    rows = [t.kind for t in truth]
    cols = [_class(g, t) for g, t in zip(guess, truth)]
    confusion = {k: {c: 0 for c in (*L.KINDS, WRONG_SELECT)} for k in L.KINDS}
    for r, c in zip(rows, cols):
        confusion[r][c] += 1
    return {
        "n": len(examples),
        "accuracy": float(np.mean(right)),
        "macro_f1": macro_f1(rows, cols, L.KINDS),
        "phenomena": {
            k: {"n": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(by.items())
        },
        "confusion": confusion,
    }


def plot_confusion(scores: dict[str, dict], path, title: str) -> None:
    """One panel per split: rows the true class, columns the predicted one, row-normalised."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mltk import atomic

    fig, axes = plt.subplots(1, len(scores), figsize=(4.6 * len(scores), 4.2), squeeze=False)
    for ax, (split, s) in zip(axes[0], scores.items()):
        rows = [k for k in L.KINDS if sum(s["confusion"][k].values())]
        cols = list(L.KINDS) + [WRONG_SELECT]
        counts = np.array([[s["confusion"][r][c] for c in cols] for r in rows], dtype=float)
        share = counts / counts.sum(1, keepdims=True).clip(min=1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(rows)):
            for j in range(len(cols)):
                if counts[i, j]:
                    ax.text(
                        j,
                        i,
                        int(counts[i, j]),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if share[i, j] > 0.6 else "black",
                    )
        ax.set_xticks(
            range(len(cols)), [c.replace(" (", "\n(") for c in cols], fontsize=7, rotation=30
        )
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(
            f"{split}: accuracy {s['accuracy']:.3f}, macro-F1 {s['macro_f1']:.3f}", fontsize=9
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())

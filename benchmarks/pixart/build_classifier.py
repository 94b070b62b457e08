"""Train the evaluation's attribute classifier and ship it in the package (weights/), or score
the shipped one.

    OMP_NUM_THREADS=1 nice python benchmarks/pixart/build_classifier.py              # train + ship
    OMP_NUM_THREADS=1 python benchmarks/pixart/build_classifier.py --eval-only       # score shipped

Both print the held-out accuracy per attribute (on 1000 fresh world images, seed 424242, clean
and low quality) and write it to classifier_accuracy.json next to this file: the accuracy of the
classifier that ships after the run. ``--eval-only`` loads the shipped weights and never writes
them. docs/pixart.md's classifier table is generated from the JSON (docs/tables.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mltk.data import world as W
from mltk.t2i.evaluation import (
    CLASSIFIER_VERSION,
    SHIPPED_CLASSIFIER,
    _shipped_classifier,
    _train_classifier,
    predict_attributes,
    save_shipped_classifier,
)

HERE = Path(__file__).resolve().parent
HELD_OUT_IMAGES, HELD_OUT_SEED, LOW_QUALITY = 1000, 424242, 0.3


def held_out_accuracy(model) -> tuple[dict[str, float], dict[str, int]]:
    """Accuracy of every head on the held-out images (only where the head's label exists)."""
    held = W.make_world(HELD_OUT_IMAGES, seed=HELD_OUT_SEED, low_quality_fraction=LOW_QUALITY)
    with torch.no_grad():
        pred, _ = predict_attributes(model, held.images)
    lab = held.label_arrays()
    acc, n = {}, {}
    for k, v in pred.items():
        keep = lab[k] >= 0
        acc[k] = float(np.mean(v[keep] == lab[k][keep]))
        n[k] = int(keep.sum())
    return acc, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--eval-only",
        action="store_true",
        help="score the shipped classifier; train nothing, write no weights",
    )
    ap.add_argument("--out", type=Path, default=HERE / "classifier_accuracy.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    if args.eval_only:
        model = _shipped_classifier()
        if model is None:
            raise SystemExit(
                f"{SHIPPED_CLASSIFIER} is missing or stale (world or classifier version changed); "
                "run this script without --eval-only to train and ship a new one"
            )
    else:
        model = _train_classifier(seed=0)
    acc, n = held_out_accuracy(model)
    print("| attribute | held-out accuracy |\n| --- | --- |")
    for k, v in acc.items():
        print(f"| {k} | {v:.3f} |")
    if not args.eval_only:
        save_shipped_classifier(model)
        print(f"saved {SHIPPED_CLASSIFIER}")
    result = {
        "mode": "eval-only" if args.eval_only else "trained and shipped",
        "classifier": str(SHIPPED_CLASSIFIER.relative_to(HERE.parent.parent)),
        "world_version": W.WORLD_VERSION,
        "classifier_version": CLASSIFIER_VERSION,
        "held_out_images": HELD_OUT_IMAGES,
        "seed": HELD_OUT_SEED,
        "low_quality_fraction": LOW_QUALITY,
        "accuracy": acc,
        "labelled_images": n,
        "torch": torch.__version__,
        "seconds": round(time.time() - t0, 1),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

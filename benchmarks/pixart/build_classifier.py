"""Train the evaluation's attribute classifier and ship it in the package (weights/).

    OMP_NUM_THREADS=1 nice python benchmarks/pixart/build_classifier.py

Prints its held-out accuracy per attribute (on fresh world images, clean and low quality).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from mltk_plugins.pixart import world as W
from mltk_plugins.pixart.evaluation import (
    SHIPPED_CLASSIFIER,
    _train_classifier,
    predict_attributes,
    save_shipped_classifier,
)

torch.set_num_threads(1)
t0 = time.time()
model = _train_classifier(seed=0)
held = W.make_world(1000, seed=424242, low_quality_fraction=0.3)
pred, _ = predict_attributes(model, held.images)
lab = held.label_arrays()
print("| attribute | held-out accuracy |\n| --- | --- |")
for k, v in pred.items():
    keep = lab[k] >= 0
    print(f"| {k} | {np.mean(v[keep] == lab[k][keep]):.3f} |")
save_shipped_classifier(model)
print(f"saved {SHIPPED_CLASSIFIER} in {time.time() - t0:.0f} s")

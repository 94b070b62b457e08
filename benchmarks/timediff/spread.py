"""Why TimeDiff's samples had no spread: each suspected cause measured on validation windows.

One model per row, trained with the benchmark's CPU budget on ETTh1 (seed 0); each is sampled
on 256 evenly spaced validation windows (the test split is never touched) with the samplers
below. For every combination: the mean standard deviation of the samples, the RMSE of the
point forecast, their ratio (about 1 for a calibrated forecast), the share of the truth inside
the samples' 5-95% range (90% nominal) and the CRPS.

    OMP_NUM_THREADS=1 python benchmarks/timediff/spread.py        # ~10 minutes on one core
    python docs/tables.py timediff-spread                         # the table from the JSON

writes benchmarks/timediff/spread.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from mltk_plugins.timediff import data, predictive, training
from mltk_plugins.timediff.config import preset
from run_benchmark import BUDGET, SHIPPED

HERE = Path(__file__).resolve().parent
OUT = HERE / "spread.json"
LOOKBACK = 504  # ETTh1's lookback chosen on validation (run_benchmark.py)
MODELS = {
    "paper x0 estimate (as shipped)": SHIPPED,
    "paper x0 estimate, no future mixup": {**SHIPPED, "future_mixup": False},
    "paper x0 estimate, mean-std normalisation": {**SHIPPED, "instance_norm": "meanstd"},
    "Gaussian skip (now shipped)": {"skip": "gaussian", "ar_channels": "shared"},
    "Gaussian skip, no future mixup": {
        "skip": "gaussian",
        "ar_channels": "shared",
        "future_mixup": False,
    },
}
SAMPLERS = {
    "DDIM 5 steps, eta 1, 8 samples": {"sampler": "ddim", "sample_steps": 5, "eta": 1.0, "n": 8},
    "DDIM 5 steps, eta 0, 8 samples": {"sampler": "ddim", "sample_steps": 5, "eta": 0.0, "n": 8},
    "DDIM 20 steps, eta 1, 8 samples": {"sampler": "ddim", "sample_steps": 20, "eta": 1.0, "n": 8},
    "DDPM 100 steps, 8 samples": {"sampler": "ddpm", "sample_steps": None, "eta": None, "n": 8},
    "DDIM 5 steps, eta 1, 32 samples": {"sampler": "ddim", "sample_steps": 5, "eta": 1.0, "n": 32},
}


def measure() -> dict:
    torch.set_num_threads(1)
    prepared = data.prepare(data.load_embedded("etth1"))
    base = dataclasses.replace(preset("small"), lookback=LOOKBACK, **BUDGET)
    starts = training._val_starts(prepared, base, 256)
    x, y = data.gather(prepared.z, starts, base.lookback, base.horizon)
    rows = []
    for name, change in MODELS.items():
        cfg = dataclasses.replace(base, **change)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        model = training.train_model(cfg, prepared, seed=0).model
        print(f"{name}: trained in {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
        for label, s in SAMPLERS.items():
            pred = training.forecast_windows(
                model,
                x,
                n_samples=s["n"],
                seed=0,
                sampler=s["sampler"],
                sample_steps=s["sample_steps"],
                eta=s["eta"],
            )
            score = predictive.score(pred, y)
            spread = float(pred.samples.std(axis=0).mean())
            rows.append(
                {
                    "model": name,
                    "sampler": label,
                    "spread": spread,
                    "rmse": float(np.sqrt(score["mse"])),
                    "coverage90": score["coverage90"],
                    "crps": score["crps"],
                }
            )
            rows[-1]["ratio"] = spread / rows[-1]["rmse"]
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            OUT.write_text(
                json.dumps({"windows": len(x), "budget": BUDGET, "rows": rows}, indent=1)
            )
    return json.loads(OUT.read_text())


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    measure()
    print(f"wrote {OUT}; the table: python docs/tables.py timediff-spread")


if __name__ == "__main__":
    main()

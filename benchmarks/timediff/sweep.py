"""Design sweep for TimeDiff on ETTh1/ETTh2 (horizon 168): which settings beat the linear map?

Each setting is trained once (seed 0) at the lookback chosen on validation by the AR-init
model, and scored by validation and test MSE of the mean of its samples. Prints one JSON line
per setting (and writes them to --out). Used to pick the `small` preset, not to report results:
the reported numbers come from run_benchmark.py.

    python benchmarks/timediff/sweep.py --datasets etth1 --device cuda --out sweep.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
from mltk_plugins.timediff import baselines, data, metrics, training
from mltk_plugins.timediff.config import preset

# the model of the first release, which these results come from (run_benchmark.py: SHIPPED)
SHIPPED = {"skip": "none", "point": "mean", "ar_channels": "shared", "calibrate": False}

SWEEP_BASE = {"instance_norm": "meanstd", "channel_independent": True, "early_stop_on": "loss"}
SETTINGS = {
    "small": {},
    "residual_ar": {"residual": "ar"},
    "norm_mean": {"instance_norm": "mean"},
    "channel_mixing": {"channel_independent": False},  # (the `small` preset now mixes channels)
    "wide": {"hidden": 64, "encoder_layers": 3, "decoder_layers": 3},
    "mixup_conv": {"mixup_conv": True},
    "no_mixup": {"future_mixup": False},
    "no_ar": {"ar_init": False},
    "ddpm": {"sampler": "ddpm"},
    "samples32": {"samples": 32},
    "paper_width": {"hidden": 256, "step_dim": 128, "encoder_layers": 3, "decoder_layers": 3},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="etth1")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--max-train-windows", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.datasets.split(","):
        prepared = data.prepare(data.load_embedded(name))
        # the sweep's reference point (the first draft of `small`), each setting changes it
        base = dataclasses.replace(preset("small"), **SWEEP_BASE, **SHIPPED)
        lookback, scores = baselines.choose_lookback(
            prepared,
            base.horizon,
            base.lookback_candidates,
            lambda lb, base=base, prepared=prepared: training.ar_predictor(
                prepared, dataclasses.replace(base, lookback=lb)
            ),
        )
        print(json.dumps({"dataset": name, "ar_val_by_lookback": scores, "lookback": lookback}))
        for key in args.settings.split(","):
            over = dict(SETTINGS[key], lookback=lookback)
            if args.epochs:
                over["epochs"] = args.epochs
            if args.max_train_windows:
                over["max_train_windows"] = args.max_train_windows
            cfg = dataclasses.replace(base, **over)
            torch.manual_seed(0)
            t0 = time.perf_counter()
            res = training.train_model(cfg, prepared, device=args.device, seed=0)
            t1 = time.perf_counter()
            row = {"dataset": name, "setting": key, "best_epoch": res.best_epoch}
            for split in ("val", "test"):
                x, y = prepared.windows(split, cfg.lookback, cfg.horizon)
                s = training.forecast_windows(
                    res.model, x, n_samples=cfg.samples, device=args.device, seed=0, batch=1024
                ).samples
                row[f"{split}_mse"] = metrics.mse(s.mean(0), y)
                row[f"{split}_mse_median"] = metrics.mse(np.median(s, 0), y)
                row[f"{split}_mae"] = metrics.mae(s.mean(0), y)
                row[f"{split}_crps"] = metrics.crps_samples(s, y)
                row[f"{split}_ar_mse"] = metrics.mse(training.ar_predictor(prepared, cfg)(x), y)
            row["train_s"], row["total_s"] = t1 - t0, time.perf_counter() - t0
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")


if __name__ == "__main__":
    main()

"""The first release's benchmark: TimeDiff's MSE against point baselines on ETTh1 and ETTh2.

It reproduces the tables of the first release (docs/timediff.md, "point forecasts"), with that
release's model (SHIPPED below); run_benchmark.py is the current, probabilistic benchmark.

Protocol: 12/4/4-month split, scaler fitted on the training rows, stride-1 windows, every test
window scored; MSE/MAE on the normalised scale averaged over channels. The lookback of TimeDiff
and of its AR-init model is chosen on the validation split (AR-init validation MSE over
96/168/336/504/720); the closed-form linear map chooses its own lookback the same way; DLinear
uses TimeDiff's lookback. Every model is scored on exactly the same test windows.

TimeDiff runs the `small` preset on the CPU with the budget below (one thread), 3 seeds; the
ablations (--no-future-mixup, --no-ar-init) run one seed each.

    OMP_NUM_THREADS=1 nice python benchmarks/timediff/first_release.py --datasets etth1
    OMP_NUM_THREADS=1 nice python benchmarks/timediff/first_release.py --datasets etth2
    python benchmarks/timediff/first_release.py --report      # the markdown table from the JSON

Each dataset writes benchmarks/timediff/results_<dataset>.json; --report prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from mltk_plugins.timediff import baselines, data, evaluation, metrics, training
from mltk_plugins.timediff.config import preset

# the model of the first release, which these results come from (run_benchmark.py: SHIPPED)
SHIPPED = {"skip": "none", "point": "mean", "ar_channels": "shared", "calibrate": False}

HERE = Path(__file__).resolve().parent
# the CPU budget of every TimeDiff run (on top of the `small` preset)
BUDGET = {
    "epochs": 4,
    "patience": 2,
    "max_train_windows": 2048,
    "val_windows": 128,
    "samples": 8,
    "sample_steps": 5,
}


def run_dataset(
    name: str, seeds: int, dlinear_seeds: int, budget: dict, ablations: bool = True
) -> dict:
    prepared = data.prepare(data.load_embedded(name))
    cfg0 = dataclasses.replace(preset("small"), lookback=0, **budget, **SHIPPED)
    cfg = training.choose_lookback(prepared, cfg0, print)
    x, y = prepared.windows("test", cfg.lookback, cfg.horizon)
    rows = []

    def timediff(label: str, c, seed: int) -> dict:
        torch.manual_seed(seed)
        np.random.seed(seed)
        t0 = time.perf_counter()
        res = training.train_model(c, prepared, seed=seed, log=print)
        t1 = time.perf_counter()
        s = training.forecast_windows(res.model, x, n_samples=c.samples, seed=seed).samples
        t2 = time.perf_counter()
        r = {
            "model": label,
            "seed": seed,
            "mse": metrics.mse(s.mean(0), y),
            "mae": metrics.mae(s.mean(0), y),
            "crps": metrics.crps_samples(s, y),
            "best_epoch": res.best_epoch,
            "val_mse_by_epoch": [h.get("val_mse") for h in res.history],
            "train_s": t1 - t0,
            "sample_s": t2 - t1,
        }
        print(json.dumps(r), flush=True)
        return r

    t0 = time.perf_counter()
    base_rows = []
    for r in first_baselines(prepared, cfg, x, y, dlinear_seeds):
        base_rows.append({**r, "runs": dlinear_seeds if r["model"] == "DLinear" else 1})
        print(json.dumps(base_rows[-1]), flush=True)
    baseline_s = time.perf_counter() - t0
    runs = [timediff("TimeDiff", cfg, seed) for seed in range(seeds)]
    rows.append(_aggregate("TimeDiff (small)", runs))
    for label, change in (
        (
            ("TimeDiff --no-future-mixup", {"future_mixup": False}),
            ("TimeDiff --no-ar-init", {"ar_init": False}),
        )
        if ablations
        else ()
    ):
        rows.append(_aggregate(label, [timediff(label, dataclasses.replace(cfg, **change), 0)]))
    rows += base_rows
    return {
        "dataset": name,
        "horizon": cfg.horizon,
        "lookback": cfg.lookback,
        "test_windows": len(x),
        "budget": budget,
        "config": dataclasses.asdict(cfg),
        "rows": rows,
        "timediff_runs": runs,
        "baseline_seconds": baseline_s,
        "machine": f"{platform.machine()} CPU, torch threads {torch.get_num_threads()}, shared",
    }


def first_baselines(prepared, cfg, x, y, dlinear_seeds: int) -> list[dict]:
    """The first release's baseline rows: seasonal naive, the shared linear map and DLinear,
    AR-init alone (point forecasts)."""
    period = data.season_length(prepared.series)
    naive = baselines.seasonal_naive(x, cfg.horizon, period)
    rows = [evaluation.result_row("seasonal naive", evaluation.Point(naive), y)]
    shared = evaluation.point_baselines(prepared, cfg, x, y, dlinear_seeds=dlinear_seeds, log=print)
    rows += [r for r in shared if r["model"] in ("linear (closed form)", "DLinear")]
    ar = training.ar_predictor(prepared, cfg)(x)
    return rows + [evaluation.result_row("AR-init alone", evaluation.Point(ar), y)]


def _aggregate(label: str, runs: list[dict]) -> dict:
    mses = [r["mse"] for r in runs]
    return {
        "model": label,
        "mse": float(np.mean(mses)),
        "mse_std": float(np.std(mses)),
        "mae": float(np.mean([r["mae"] for r in runs])),
        "crps": float(np.mean([r["crps"] for r in runs])),
        "runs": len(runs),
        "seconds_per_run": float(np.mean([r["train_s"] + r["sample_s"] for r in runs])),
        "note": f"best epochs {[r['best_epoch'] for r in runs]}",
    }


def report(prefix: str = "") -> str:
    results = [json.loads(p.read_text()) for p in sorted(HERE.glob(f"{prefix}results_*.json"))]
    lines = []
    for res in results:
        lines.append(
            f"\n**{res['dataset'].upper()}**, horizon {res['horizon']}, lookback {res['lookback']} "
            f"(chosen on validation), {res['test_windows']} test windows\n"
        )
        lines.append("| model | runs | MSE (mean ± std) | MAE | CRPS | wall s / run |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for r in res["rows"]:
            std = f" ± {r['mse_std']:.4f}" if r.get("runs", 1) > 1 else ""
            secs = f"{r['seconds_per_run']:.0f}" if "seconds_per_run" in r else "-"
            lines.append(
                f"| {r['model']} | {r.get('runs', 1)} | {r['mse']:.4f}{std} | {r['mae']:.4f} | "
                f"{r['crps']:.4f} | {secs} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="etth1,etth2")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dlinear-seeds", type=int, default=3)
    ap.add_argument("--report", action="store_true", help="print the table from the JSON files")
    ap.add_argument(
        "--train-mixup-map",
        action="store_true",
        help="the variant where the diffusion loss also trains F (writes trainedF_results_*.json)",
    )
    ap.add_argument(
        "--full-budget",
        action="store_true",
        help="the `small` preset as shipped (up to 10 epochs over every training window, "
        "10 DDIM steps) instead of the CPU budget; no ablations (writes fullbudget_results_*.json)",
    )
    args = ap.parse_args()
    prefix = ("trainedF_" if args.train_mixup_map else "") + (
        "fullbudget_" if args.full_budget else ""
    )
    if args.report:
        print(report(prefix))
        return
    torch.set_num_threads(1)
    for name in args.datasets.split(","):
        t0 = time.perf_counter()
        budget = {} if args.full_budget else dict(BUDGET)
        budget["train_mixup_map"] = args.train_mixup_map
        res = run_dataset(
            name, args.seeds, args.dlinear_seeds, budget, ablations=not args.full_budget
        )
        res["wall_seconds"] = time.perf_counter() - t0
        (HERE / f"{prefix}results_{name}.json").write_text(json.dumps(res, indent=2))
    print(report(prefix))


if __name__ == "__main__":
    main()

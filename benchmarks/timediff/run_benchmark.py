"""TimeDiff's forecast distributions against cheap probabilistic baselines, on any series.

For each data set (an embedded name or a CSV file the CLI takes): horizon 168, the literature's
split and scaler, every test window, and on those windows

- TimeDiff as shipped before calibration (the paper's x0 estimate, F shared, the point forecast
  the mean of the samples, intervals from the raw samples), 3 seeds;
- TimeDiff as now shipped (the Gaussian skip, the AR-init layout and the calibration chosen on
  validation, the denoised point forecast), 3 seeds: its calibrated rows and its raw samples;
- AR-init + Gaussian, AR-init + conformal, seasonal naive + residuals (validation residuals);
- the point forecasters: closed-form linear and DLinear, each shared and per channel.

Each row: MSE, MAE, CRPS, weighted quantile loss at 0.1..0.9, coverage and width of the
50/80/90% central intervals (normalised scale), with per-channel and per-step CRPS and coverage.

    OMP_NUM_THREADS=1 python benchmarks/timediff/run_benchmark.py --data etth1 --out DIR
    OMP_NUM_THREADS=1 python benchmarks/timediff/run_benchmark.py --data my.csv --out DIR
    python benchmarks/timediff/run_benchmark.py --report DIR      # the tables from DIR's JSON

Each data set writes DIR/results_<name>.json (after every model, so a stopped run keeps what
it finished). The committed results are in benchmarks/timediff/probabilistic/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from mltk_plugins.timediff import data, evaluation, training
from mltk_plugins.timediff.config import preset

# the CPU budget of every TimeDiff run (on top of the `small` preset)
BUDGET = {
    "epochs": 4,
    "patience": 2,
    "max_train_windows": 2048,
    "val_windows": 128,
    "samples": 8,
    "sample_steps": 5,
}
# the model and sampling of the first release: what "as shipped" means in the table
SHIPPED = {"skip": "none", "point": "mean", "ar_channels": "shared", "calibrate": False}
SCALARS = (
    "mse",
    "mae",
    "crps",
    "wql",
    "coverage50",
    "width50",
    "coverage80",
    "width80",
    "coverage90",
    "width90",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(source: str) -> data.Series:
    if source.lower() in data.EMBEDDED and not Path(source).exists():
        return data.load_embedded(source)
    return data.read_csv(source, warn=log)


def aggregate(label: str, runs: list[dict], note: str) -> dict:
    out = {"model": label, "runs": len(runs)}
    for key in SCALARS:
        values = [r[key] for r in runs]
        out[key] = float(np.mean(values))
        out[f"{key}_std"] = float(np.std(values))
    out["crps_by_channel"] = np.mean([r["crps_by_channel"] for r in runs], axis=0).tolist()
    out["by_step"] = {
        k: np.mean([r["by_step"][k] for r in runs], axis=0).tolist() for k in runs[0]["by_step"]
    }
    out["seconds_per_run"] = float(np.mean([r["seconds"] for r in runs]))
    out["note"] = note
    return out


def split_shift(prepared, cfg) -> dict:
    """The AR-init forecast's MSE on the validation and the test windows: how far the months that
    calibrate the intervals are from the months that score them."""
    ar = training.ar_predictor(prepared, cfg)
    out = {}
    for split in ("val", "test"):
        x, y = prepared.windows(split, cfg.lookback, cfg.horizon)
        out[split] = float(np.mean((ar(x) - y) ** 2))
    return out


def run_dataset(source: str, seeds: int, dlinear_seeds: int, out_file: Path) -> dict:
    series = load(source)
    prepared = data.prepare(series)
    cfg0 = dataclasses.replace(preset("small"), lookback=0, **BUDGET)
    cfg = training.choose_lookback(prepared, cfg0, log)
    new_cfg = training.choose_ar_channels(prepared, cfg, log)
    old_cfg = dataclasses.replace(cfg, **SHIPPED)
    x, y = prepared.windows("test", cfg.lookback, cfg.horizon)
    result = {
        "dataset": series.name,
        "source": source if source.lower() in data.EMBEDDED else Path(source).name,
        "series_rows": series.n_rows,
        "channels": series.columns,
        "horizon": cfg.horizon,
        "lookback": cfg.lookback,
        "ar_channels": new_cfg.ar_channels,
        "ar_init_mse": split_shift(prepared, new_cfg),
        "test_windows": len(x),
        "budget": BUDGET,
        "machine": f"{platform.machine()} CPU, torch threads {torch.get_num_threads()}, shared",
        "rows_by_seed": [],
        "rows": [],
    }

    def save() -> None:
        out_file.write_text(json.dumps(result, indent=1))

    def timediff(label: str, c, seed: int, calibrate: bool) -> list[dict]:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        res = training.train_model(c, prepared, seed=seed, log=log)
        grid = training.calibration_grid(res.model, prepared, c, seed=seed) if calibrate else None
        t1 = time.perf_counter()
        pred = training.forecast_windows(
            res.model,
            x,
            n_samples=c.samples,
            seed=seed,
            sampler=c.sampler,
            sample_steps=c.sample_steps,
            eta=c.ddim_eta,
        )
        seconds = time.perf_counter() - t0
        rows = []
        if calibrate:
            rows.append(
                evaluation.result_row(f"{label} calibrated", training.calibrated(pred, grid), y)
            )
        rows.append(evaluation.result_row(f"{label}, raw samples" if calibrate else label, pred, y))
        for r in rows:
            r.update(seed=seed, seconds=seconds, best_epoch=res.best_epoch, train_seconds=t1 - t0)
            log(
                f"{r['model']} seed {seed}: MSE {r['mse']:.4f} CRPS {r['crps']:.4f} "
                f"coverage 50/80/90 {r['coverage50']:.3f}/{r['coverage80']:.3f}/"
                f"{r['coverage90']:.3f} ({seconds:.0f}s)"
            )
        return rows

    t0 = time.perf_counter()
    base = evaluation.probabilistic_baselines(prepared, new_cfg, x, y)
    base += evaluation.point_baselines(
        prepared, new_cfg, x, y, dlinear_seeds=dlinear_seeds, log=log
    )
    result["baseline_seconds"] = time.perf_counter() - t0
    save()
    runs: dict[str, list[dict]] = {}
    for seed in range(seeds):
        for label, c, cal in (("TimeDiff as shipped", old_cfg, False), ("TimeDiff", new_cfg, True)):
            for r in timediff(label, c, seed, cal):
                runs.setdefault(r["model"], []).append(r)
                result["rows_by_seed"].append({k: v for k, v in r.items() if k != "by_step"})
        result["rows"] = [aggregate(k, v, f"{len(v)} seeds") for k, v in runs.items()] + base
        save()
    return result


def report(folder: Path) -> str:
    lines = []
    for path in sorted(folder.glob("results_*.json")):
        res = json.loads(path.read_text())
        lines.append(
            f"\n**{res['dataset']}** ({res['series_rows']:,} rows, {len(res['channels'])} channels), "
            f"horizon {res['horizon']}, lookback {res['lookback']}, AR-init "
            f"{res['ar_channels']}, {res['test_windows']:,} test windows\n"
        )
        lines.append(
            "| model | runs | MSE | MAE | CRPS | wQL | cover 50 / 80 / 90 % | width 90 % |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in res["rows"]:
            n = r.get("runs", 1)
            mse = f"{r['mse']:.4f}" + (f" ± {r['mse_std']:.4f}" if n > 1 else "")
            crps = f"{r['crps']:.4f}" + (f" ± {r['crps_std']:.4f}" if "crps_std" in r else "")
            cover = (
                "-"
                if r["width90"] == 0
                else "{:.1f} / {:.1f} / {:.1f}".format(
                    *(100 * r[f"coverage{p}"] for p in (50, 80, 90))
                )
            )
            width = "-" if r["width90"] == 0 else f"{r['width90']:.2f}"
            lines.append(
                f"| {r['model']} | {n} | {mse} | {r['mae']:.4f} | {crps} | "
                f"{r['wql']:.4f} | {cover} | {width} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default="etth1,etth2", help="comma-separated: etth1, etth2 or CSV files"
    )
    ap.add_argument("--out", type=Path, help="folder for results_<name>.json (required to run)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dlinear-seeds", type=int, default=3)
    ap.add_argument("--report", type=Path, metavar="DIR", help="print the tables of DIR's JSON")
    ap.add_argument(
        "--shift-only",
        action="store_true",
        help="only add the AR-init validation and test MSE to existing results (seconds)",
    )
    args = ap.parse_args()
    if args.report:
        print(report(args.report))
        return
    if args.out is None:
        ap.error("--out DIR is required: the folder the results are written to")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for source in args.data.split(","):
        try:
            series_name = load(source).name
        except Exception as exc:  # one clear sentence, no traceback
            ap.error(f"--data {source}: {exc}")
        t0 = time.perf_counter()
        out_file = args.out / f"results_{series_name.lower()}.json"
        if args.shift_only:
            res = json.loads(out_file.read_text())
            prepared = data.prepare(load(source))
            cfg = dataclasses.replace(
                preset("small"), lookback=res["lookback"], ar_channels=res["ar_channels"]
            )
            res["ar_init_mse"] = split_shift(prepared, cfg)
            out_file.write_text(json.dumps(res, indent=1))
            continue
        res = run_dataset(source, args.seeds, args.dlinear_seeds, out_file)
        res["wall_seconds"] = time.perf_counter() - t0
        out_file.write_text(json.dumps(res, indent=1))
    print(report(args.out))


if __name__ == "__main__":
    main()

"""The AR-init ridge penalty the per-row default gives on the embedded ETTh1 and ETTh2.

    python benchmarks/timediff/ar_penalty.py

`training.fit_ar` solves ridge least squares with penalty ``ar_ridge * rows``, one row per
training window and channel at the run's lookback and horizon. This script counts those rows at
the lookback and horizon that fullbudget_results_<dataset>.json ran with (the `small` preset with
the per-row default, its lookback chosen on validation), takes ``ar_ridge`` from the same file,
and writes ar_penalty.json next to itself (seconds, no training). The benchmark tables in
docs/timediff.md ran with an absolute penalty of 1e3 (results_<dataset>.json); docs/tables.py
turns both into the docs' sentence.
"""

from __future__ import annotations

import json
from pathlib import Path

from mltk_plugins.timediff import data

HERE = Path(__file__).resolve().parent
DATASETS = ("etth1", "etth2")


def penalty(name: str) -> dict:
    run = json.loads((HERE / f"fullbudget_results_{name}.json").read_text())
    lookback, horizon = run["lookback"], run["config"]["horizon"]
    ridge = run["config"]["ar_ridge"]
    prepared = data.prepare(data.load_embedded(name))
    windows = len(prepared.splits.forecast_starts("train", lookback, horizon))
    channels = prepared.z.shape[1]
    rows = windows * channels  # as in training.fit_ar
    return {
        "dataset": name,
        "lookback": lookback,
        "horizon": horizon,
        "windows": windows,
        "channels": channels,
        "rows": rows,
        "ar_ridge_per_row": ridge,
        "absolute_penalty": ridge * rows,
        "per_row_equivalent_of_1e3": 1e3 / rows,
    }


def main() -> None:
    result = {
        "source": "lookback, horizon and ar_ridge from fullbudget_results_<dataset>.json; "
        "rows = training windows x channels, as in mltk_plugins.timediff.training.fit_ar",
        "datasets": [penalty(name) for name in DATASETS],
    }
    out = HERE / "ar_penalty.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| data | lookback | horizon | windows | channels | rows | per row | penalty |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in result["datasets"]:
        print(
            f"| {r['dataset']} | {r['lookback']} | {r['horizon']} | {r['windows']:,} | "
            f"{r['channels']} | {r['rows']:,} | {r['ar_ridge_per_row']:g} | "
            f"{r['absolute_penalty']:,.1f} |"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

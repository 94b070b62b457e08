#!/usr/bin/env bash
# Forecast intervals you can check, the way a CI job would: train TimeDiff, forecast with
# quantiles from a date inside the data (so the truth is known), and check with --json that the
# calibrated 50% and 90% intervals hold the truth about as often as they say on the test split.
#
#   bash examples/timediff/intervals.sh [WORK_DIR]
#
# About half a minute on one CPU core with the preset "tiny" on the embedded ETTh1.
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"

# 1. Train; the run folder also gets the calibration, made on the validation split only.
$MLTK timediff train --preset tiny --seed 0 --device cpu --out "$WORK/run" --json > "$WORK/train.json"

# 2. Quantiles of the 24 hours after 2018-03-01 00:00 (a test-split day), with the truth drawn.
$MLTK timediff forecast "$WORK/run" --cutoff "2018-03-01 00:00" --quantiles 0.05,0.25,0.5,0.75,0.95 \
    --plot-channels OT,HUFL --device cpu --out "$WORK/forecast" --json > "$WORK/forecast.json"
head -n 3 "$WORK/forecast/forecast.csv" | cut -c1-100 >&2

# 3. Coverage on every test window: calibrated within 10 points of nominal (the validation
#    months are harder than the test months on ETTh1, so it errs wide), and nearer to it
#    than the raw samples' quantiles.
$MLTK timediff eval "$WORK/run" --no-baselines --device cpu --json > "$WORK/eval.json"
"$PY" - "$WORK/eval.json" "$WORK/forecast.json" <<'PY'
import json, sys
res, fc = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rows = {r["model"]: r for r in res["results"]}
cal, raw = rows["TimeDiff (calibrated)"], rows["TimeDiff (samples)"]
for level in (50, 80, 90):
    nominal = level / 100
    print(f"{level}% interval: calibrated holds {cal[f'coverage{level}']:.3f}, raw samples "
          f"{raw[f'coverage{level}']:.3f} (width {cal[f'width{level}']:.2f})", file=sys.stderr)
    assert abs(cal[f"coverage{level}"] - nominal) < 0.10, f"{level}% coverage is off"
    assert abs(cal[f"coverage{level}"] - nominal) <= abs(raw[f"coverage{level}"] - nominal)
assert fc["truth_steps"] == 24 and fc["intervals"] == "calibrated"
print(f"ok: {res['windows']} test windows, intervals as nominal; forecast from {fc['first_date']}")
PY

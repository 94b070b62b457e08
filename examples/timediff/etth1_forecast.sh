#!/usr/bin/env bash
# TimeDiff on the embedded ETTh1, the way a CI job would run it: every step prints one JSON
# object, and the script checks exit codes and numbers.
#
#   bash examples/timediff/etth1_forecast.sh [WORK_DIR]
#
# Takes well under a minute on one CPU core (preset "tiny": lookback 48, horizon 24, one short
# epoch). For real forecasts use the default preset "small" (minutes) or "paper" on a GPU.
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"

# 1. Train on the embedded ETTh1 (no --data: the default), all 7 channels.
$MLTK timediff train --preset tiny --seed 0 --device cpu --out "$WORK/run" --json > "$WORK/train.json"

# 2. Test-split MSE/MAE/CRPS (and interval coverage) of TimeDiff and the baselines, same windows.
$MLTK timediff eval "$WORK/run" --dlinear-seeds 1 --device cpu --json > "$WORK/eval.json"
"$PY" - "$WORK/eval.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
rows = {r["model"]: r for r in res["results"]}
for name, r in rows.items():
    print(f"{name:27s} MSE {r['mse']:.4f}  MAE {r['mae']:.4f}  CRPS {r['crps']:.4f}", file=sys.stderr)
timediff, naive = rows["TimeDiff (calibrated)"], rows["seasonal naive + residuals"]
assert timediff["mse"] < naive["mse"], "TimeDiff should beat seasonal naive"
PY

# 3. Forecast the next 24 hours after the end of the file: CSV with quantiles, and a plot.
$MLTK timediff forecast "$WORK/run" --quantiles 0.1,0.5,0.9 --device cpu --out "$WORK/forecast" \
    --json > "$WORK/forecast.json"
"$PY" -c 'import json,sys; f=json.load(open(sys.argv[1])); print("forecast from", f["first_date"], "OT:", [round(v, 2) for v in f["forecast"]["OT"][:6]], "...")' "$WORK/forecast.json"
head -n 3 "$WORK/forecast/forecast.csv" | cut -c1-100 >&2

# 4. Errors have distinct exit codes: 2 for a bad option value, 5 for missing or invalid data.
set +e
$MLTK timediff train --preset tiny --target NOPE --out "$WORK/bad" --json > /dev/null 2>&1; code=$?
[ "$code" -eq 2 ] || { echo "expected exit 2 for an unknown --target, got $code" >&2; exit 1; }
$MLTK timediff train --preset tiny --horizon 5000 --out "$WORK/bad" --json > /dev/null 2>&1; code=$?
[ "$code" -eq 5 ] || { echo "expected exit 5 for a horizon longer than the data, got $code" >&2; exit 1; }
$MLTK timediff eval "$WORK/no-such-run" --json > /dev/null 2>&1; code=$?
[ "$code" -eq 5 ] || { echo "expected exit 5 for a missing run folder, got $code" >&2; exit 1; }
set -e
echo "ok: train, eval, forecast and the error exit codes behave" >&2

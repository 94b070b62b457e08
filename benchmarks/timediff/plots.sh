#!/usr/bin/env bash
# The two plots in docs/timediff.md: a TimeDiff run on ETTh1 with the benchmark's CPU budget,
# its eval plot (CRPS and 90% coverage per horizon step, every model) and the forecast of one
# test window with the truth. About 10 minutes on one core.
#
#   bash benchmarks/timediff/plots.sh [WORK_DIR]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mltk timediff train --data etth1 --lookback 504 --epochs 4 --patience 2 \
    --max-train-windows 2048 --val-windows 128 --sample-steps 5 --seed 0 --threads 1 \
    --out "$WORK/run" --json > "$WORK/train.json"
mltk timediff eval "$WORK/run" --threads 1 --json > "$WORK/eval.json"
mltk timediff forecast "$WORK/run" --cutoff "2018-03-01 00:00" --plot-channels OT,HUFL,MUFL \
    --threads 1 --out "$WORK/forecast" --json > "$WORK/forecast.json"
cp "$WORK/run/eval.png" "$HERE/probabilistic/eval-etth1.png"
cp "$WORK/forecast/forecast.png" "$HERE/probabilistic/forecast-etth1.png"
echo "wrote $HERE/probabilistic/eval-etth1.png and forecast-etth1.png" >&2

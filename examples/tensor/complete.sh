#!/usr/bin/env bash
# Complete scikit-image's astronaut photograph from 20% of its pixels with NORT, then evaluate
# the saved run and predict a few entries -- the way a CI job would: --json on stdout, logs on
# stderr, and the exit code checked after every step.
#
#   bash examples/tensor/complete.sh [OUT_DIR]
#
# Exit codes: 0 ok, 2 usage, 3 missing optional dependency, 4 device, 5 data.
set -euo pipefail

OUT="${1:-runs/tensor/example}"
PY="${PYTHON:-python}"
SIZE="${SIZE:-128}"  # longest image side; smaller is faster
mkdir -p "$OUT"

# 1. complete (train then predict); a small image so the example runs in seconds
rc=0
mltk tensor complete --data astronaut --observed 0.2 --size "$SIZE" --device cpu \
    --json --out "$OUT/run" > "$OUT/complete.json" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "complete failed with exit code $rc" >&2
    exit "$rc"
fi
"$PY" - "$OUT/complete.json" <<'PYEOF'
import json, sys
res = json.load(open(sys.argv[1]))
assert res["schema_version"] == 1
print(f"test RMSE {res['test_rmse']:.4f}  PSNR {res['test_psnr']:.2f} dB  "
      f"{res['iterations']} iterations in {res['seconds']:.1f}s  ranks {res['ranks']}", file=sys.stderr)
# a CI gate: completing must beat filling the gaps with zeros by a wide margin
assert res["test_rmse"] < 0.2, res["test_rmse"]
PYEOF

# 2. evaluate the saved factors on the held-out pixels (the split is rebuilt from the seed)
mltk tensor eval "$OUT/run" --json > "$OUT/eval.json"

# 3. predict three pixels of the completed image (row, column, channel)
printf "i,j,k\n0,0,0\n$((SIZE / 2)),$((SIZE / 2)),1\n$((SIZE - 1)),$((SIZE / 3)),2\n" > "$OUT/coords.csv"
mltk tensor predict "$OUT/run" --coords "$OUT/coords.csv" --output "$OUT/values.csv" --json > "$OUT/predict.json"

# 4. an invalid input must fail with exit code 5 (data) and one sentence on stderr
"$PY" -c "import numpy as np; np.save('$OUT/matrix.npy', np.ones((8, 8)))"
set +e
mltk tensor complete --data "$OUT/matrix.npy" --observed 0.5 --json > /dev/null 2> "$OUT/error.txt"
rc=$?
set -e
if [ "$rc" -ne 5 ]; then
    echo "expected exit code 5 for a 2-D array, got $rc" >&2
    exit 1
fi

echo "ok: $OUT/run/before_after.png" >&2

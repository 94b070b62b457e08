#!/usr/bin/env bash
# Machine teaching end to end, the way a CI job would run it: the paper's 1-D toy, then a
# photograph; every step prints one JSON object, and the script checks exit codes and numbers.
#
#   bash examples/teach/toy1d_and_chelsea.sh [WORK_DIR]
#
# Takes about 15 seconds on one CPU core.
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"

# 1. The toy: greedy (GFT-1), random (RFT-1) and the whole pool, to the paper's eps = 1e-4.
$MLTK teach run --teacher gft-1,rft-1,whole --out "$WORK/toy" --json > "$WORK/toy.json"
"$PY" - "$WORK/toy.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
itd = {r["teacher"]: r["itd"] for r in res["teachers"]}
assert itd["GFT-1"] == 3056, f"GFT-1 should reach 1e-4 at step 3,056, not {itd['GFT-1']}"
assert itd["Whole"] == 7102, itd
print(f"toy1d ITD: GFT-1 {itd['GFT-1']}, RFT-1 {itd['RFT-1']}, whole pool {itd['Whole']}; "
      f"RFT/GFT {res['rft_over_gft']:.2f} (theory {res['theory_ratio']:.2f})")
PY

# 2. A photograph (chelsea, 48x48 pixels): train GFT-1, keep the taught learner, look at it.
$MLTK teach train --data chelsea --size 48 --teacher gft-1 --eps 1e-3 --out "$WORK/cat" \
    --json > "$WORK/cat.json"
$MLTK teach eval "$WORK/cat" --json > "$WORK/cat_eval.json"
$MLTK teach predict "$WORK/cat" --output "$WORK/cat.png" --out "$WORK/cat_predict" \
    --json > "$WORK/cat_predict.json"
"$PY" - "$WORK/cat.json" "$WORK/cat_eval.json" <<'PY'
import json, sys
train, ev = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["runs"][0]
assert train["itd"] is not None and ev["itd"] == train["itd"], (train["itd"], ev["itd"])
assert ev["loss"] < 1e-3
print(f"chelsea 48x48: ITD {train['itd']} with {train['examples']} distinct pixels taught")
PY
test -s "$WORK/cat.png"

# 3. Errors have distinct exit codes: 2 for a bad option value, 5 for bad data.
set +e
$MLTK teach run --eps 0 --out "$WORK/bad" --json > /dev/null 2>&1; code=$?
[ "$code" -eq 2 ] || { echo "expected exit 2 for --eps 0, got $code" >&2; exit 1; }
printf 'x1,x2\n0,1\n' > "$WORK/noy.csv"
$MLTK teach run --data "$WORK/noy.csv" --out "$WORK/bad2" --json > /dev/null 2>&1; code=$?
[ "$code" -eq 5 ] || { echo "expected exit 5 for a CSV without y, got $code" >&2; exit 1; }
set -e
echo "ok: $WORK" >&2

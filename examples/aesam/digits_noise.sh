#!/usr/bin/env bash
# AE-SAM vs SAM on the embedded digits with 20% label noise, the way a CI job would run it:
# every step prints one JSON object, and the script checks exit codes and numbers.
#
#   bash examples/aesam/digits_noise.sh [WORK_DIR]
#
# Takes about 20 seconds on one CPU core (preset "tiny": 3 epochs on 400 examples).
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"

json_field() {  # json_field FILE KEY -> prints the value of a top-level key
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# 1. Train the same model with AE-SAM and with SAM (same seed, same noisy labels).
for opt in aesam sam; do
    $MLTK aesam train --preset tiny --epochs 2 --noise 0.2 --optimizer "$opt" --seed 0 \
        --device cpu --out "$WORK/$opt" --json > "$WORK/train_$opt.json"
    echo "$opt: test accuracy $(json_field "$WORK/train_$opt.json" test_acc)," \
         "SAM fraction $(json_field "$WORK/train_$opt.json" sam_fraction)," \
         "gradient evaluations $(json_field "$WORK/train_$opt.json" grad_evals)" >&2
done

# 2. Compare the two runs (one JSON object with a "runs" list).
$MLTK aesam eval "$WORK/aesam" "$WORK/sam" --device cpu --json > "$WORK/eval.json"
"$PY" - "$WORK/eval.json" <<'PY'
import json, sys
runs = {r["optimizer"]: r for r in json.load(open(sys.argv[1]))["runs"]}
ae, sam = runs["aesam"], runs["sam"]
assert ae["grad_evals"] < sam["grad_evals"], "AE-SAM should need fewer gradient evaluations"
assert ae["test_acc"] > 0.5, f"AE-SAM test accuracy {ae['test_acc']:.3f} is too low"
print(f"AE-SAM used {ae['grad_evals_vs_sam']:.2f}x SAM's gradient evaluations", file=sys.stderr)
PY

# 3. Predict labels for new inputs: an .npz holding x (8x8 images in [0, 1]).
"$PY" -c 'import numpy as np, sys; from sklearn.datasets import load_digits; d = load_digits(); np.savez(sys.argv[1], x=(d.images[-5:] / 16).astype("float32"))' "$WORK/new.npz"
$MLTK aesam predict "$WORK/aesam" --input "$WORK/new.npz" --device cpu --json > "$WORK/predict.json"
"$PY" -c 'import json,sys; p=json.load(open(sys.argv[1]))["predictions"]; assert len(p)==5; print("predicted:", " ".join(r["label"] for r in p))' "$WORK/predict.json"

# 4. Errors have distinct exit codes: 2 for a bad option value, 5 for missing data.
set +e
$MLTK aesam train --optimizer adam --out "$WORK/bad" --json > /dev/null 2>&1; code=$?
[ "$code" -eq 2 ] || { echo "expected exit 2 for a bad --optimizer, got $code" >&2; exit 1; }
$MLTK aesam eval "$WORK/no-such-run" --json > /dev/null 2>&1; code=$?
[ "$code" -eq 5 ] || { echo "expected exit 5 for a missing run folder, got $code" >&2; exit 1; }
set -e
echo "ok: $WORK" >&2

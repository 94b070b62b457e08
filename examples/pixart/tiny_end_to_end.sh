#!/usr/bin/env bash
# mltk pixart on its embedded world, the way a CI job would run it: train a few steps, generate,
# evaluate, check the JSON results and an expected failure's exit code.
#   bash examples/pixart/tiny_end_to_end.sh [WORKDIR]
# PIXART_STEPS (default 6) sets the training steps: a smoke test; use
# `mltk pixart train --preset tiny` (800 steps) for a model that follows prompts.
set -euo pipefail
work="${1:-$(mktemp -d)}"
steps="${PIXART_STEPS:-6}"
mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

field() { python -c "import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])" "$@"; }

# 1. Train the tiny preset briefly on the procedural world (stage 2: text-image alignment).
mltk pixart train --preset tiny --steps "$steps" --dataset-size 64 --batch-size 16 --log-every 2 \
  --save-every "$steps" --out "$work/run" --device cpu --json > "$work/train.json"
[ "$(field "$work/train.json" schema_version)" = "1" ]
echo "trained $(field "$work/train.json" steps) steps, loss $(field "$work/train.json" final_loss)"

# 2. Generate from the run (seeds 0 and 1), then from the tiny model shipped with mltk.
mltk pixart generate "$work/run" "a red circle above a blue square" --num-images 2 --steps 5 \
  --out "$work/images" --device cpu --json > "$work/generate.json"
mltk pixart generate tiny "a red circle above a blue square" --steps 10 --out "$work/shipped" \
  --device cpu --json > "$work/shipped.json"
echo "images: $(field "$work/generate.json" grid), $(field "$work/shipped.json" grid)"

# 3. Score prompt alignment per attribute on held-out prompts.
mltk pixart eval "$work/run" --prompts 8 --steps 5 --device cpu --json > "$work/eval.json"
echo "colour accuracy $(field "$work/eval.json" acc_colour)"

# 4. Bad input fails with a distinct exit code (5: data missing or invalid).
: > "$work/empty.txt"
set +e
mltk pixart generate "$work/run" --prompts-file "$work/empty.txt" --device cpu 2> "$work/error.txt"
code=$?
set -e
[ "$code" -eq 5 ] || { echo "expected exit code 5, got $code" >&2; exit 1; }
echo "empty prompt file -> exit $code: $(cat "$work/error.txt")"

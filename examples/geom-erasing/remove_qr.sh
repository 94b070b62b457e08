#!/usr/bin/env bash
# Implicit concept removal end to end, the way a CI job would run it: draw QR codes into the
# shapes world, find them again with the shipped detector, fine-tune the shipped tiny model with
# location tokens, then sample with and without the run's negative prompt; every step prints
# one JSON object, and the script checks exit codes and numbers.
#
#   bash examples/geom-erasing/remove_qr.sh [WORK_DIR]
#
# Takes about a minute on one CPU core (a real removal trains 400 steps, not 10).
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"

# 1. Data: 120 world images, a Micro QR code in a corner of 75% of them; boxes recorded.
$MLTK geom-erasing make-dataset --concept qr --size 120 --out "$WORK/data" --json > "$WORK/data.json"

# 2. Detect: the shipped detector finds the boxes that were drawn.
$MLTK geom-erasing detect "$WORK/data" --out "$WORK/detect" --json > "$WORK/detect.json"
"$PY" - "$WORK/data.json" "$WORK/detect.json" <<'PY'
import json, sys
made, found = (json.load(open(p)) for p in sys.argv[1:])
assert abs(found["with_concept"] - made["with_concept"]) <= 2, (made, found)
print(f"{made['with_concept']}/{made['images']} images carry a QR code; the detector finds "
      f"{found['with_concept']}, e.g. at {found['detections'][0]['cells']}")
PY

# 3. Erase: location tokens <l0>..<l15>, 10 steps (the real recipe: 400).
$MLTK geom-erasing erase --data "$WORK/data" --concept qr --steps 10 --batch-size 16 \
    --out "$WORK/run" --json > "$WORK/erase.json"

# 4. Generate with the run's negative prompt and without; ICR of each.
$MLTK geom-erasing generate "a red circle above a blue square" --model "$WORK/run" \
    --num-images 2 --steps 6 --out "$WORK/images" --json > "$WORK/generate.json"
"$PY" - "$WORK/erase.json" "$WORK/generate.json" <<'PY'
import json, os, sys
run, gen = (json.load(open(p)) for p in sys.argv[1:])
assert run["negative_prompt"].startswith("qr code <l0>"), run["negative_prompt"]
assert os.path.isfile(gen["grid"]) and len(gen["erased"]["images"]) == 2
print(f"negative prompt: {run['negative_prompt'][:40]}...; ICR with it "
      f"{gen['erased']['icr']['qr code']:.2f}, without {gen['without']['icr']['qr code']:.2f}")
PY

# 5. A concept spelled like a location token is refused with exit code 2 and one sentence.
set +e
$MLTK geom-erasing erase --concept "<l3>" 2> "$WORK/bad.err"
code=$?
set -e
test "$code" -eq 2 || { echo "expected exit 2 for a concept named <l3>, got $code" >&2; exit 1; }
grep -q "location token" "$WORK/bad.err"
echo "ok: dataset, detection, erase, generation and the refusal of a bad concept" >&2

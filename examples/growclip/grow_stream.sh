#!/usr/bin/env bash
# A CLIP model grown as its data arrives, end to end, the way a CI job would run it: two arrivals
# of the shapes world in one run, a third from a new call that continues the run, the score of
# every arrival, zero-shot labels for images; every step prints one JSON object, and the script
# checks exit codes and numbers.
#
#   bash examples/growclip/grow_stream.sh [WORK_DIR]
#
# Takes about 30 seconds on one CPU core.
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"
SMALL=(--first-chunk 200 --steps 50 --batch 32 --eval-size 120)

# 1. Two arrivals (200, then 600 pairs): a new model, then a search over the growths the data
#    allows (a budget of 200 parameters per pair seen; each candidate trains 10 steps and is
#    scored on held-out zero-shot accuracy).
$MLTK growclip grow "${SMALL[@]}" --arrivals 2 --proxy-steps 10 --params-per-pair 200 --out "$WORK/grow" \
    --json > "$WORK/grow.json"
"$PY" - "$WORK/grow.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
a = res["arrivals"]
assert a["arrival"] == [1, 2] and a["pairs"] == [200, 600], a
print(f"arrival 2 grew by {a['growth'][1]}: {res['architecture']}, {res['params']:,} parameters, "
      f"zero-shot {res['zero_shot_mean']:.3f}")
PY

# 2. The third arrival (1,800 pairs) comes later: a new call continues the run's stream; this
#    one grows by hand (a shared layer on top of both towers).
$MLTK growclip grow --init "$WORK/grow" "${SMALL[@]}" --schedule shared+1 \
    --out "$WORK/grow3" --json > "$WORK/grow3.json"
"$PY" - "$WORK/grow3.json" "$WORK/grow.json" <<'PY'
import json, sys
res, before = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
a = res["arrivals"]
assert a["arrival"] == [1, 2, 3] and a["pairs"][2] == 1800 and a["growth"][2] == "shared+1", a
assert res["cumulative_flops"] > before["cumulative_flops"]
print(f"arrival 3: {res['architecture']}, zero-shot {res['zero_shot_mean']:.3f}, "
      f"{res['cumulative_flops'] / 1e12:.2f} TFLOPs of training in all")
PY

# 3. The run's model/ is a Hugging Face CLIP folder; eval scores it, predict labels images.
$MLTK growclip eval "$WORK/grow3" --eval-size 120 --json > "$WORK/eval.json"
"$PY" - "$WORK/eval.json" "$WORK/images" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image
from mltk.data import world as W
from transformers import CLIPModel
from transformers.utils import logging
logging.disable_progress_bar()
row = json.load(open(sys.argv[1]))["runs"][0]
model = CLIPModel.from_pretrained(os.path.join(os.path.dirname(sys.argv[1]), "grow3", "model"))
print(f"eval: {row['architecture']}; zero-shot colour-shape {row['zero_shot_colour-shape']:.3f}, "
      f"position {row['zero_shot_position']:.3f}, count {row['zero_shot_count']:.3f}")
os.makedirs(sys.argv[2], exist_ok=True)
for i, img in enumerate(W.make_world(4, seed=11, kinds=("single",)).images):
    Image.fromarray(img).save(os.path.join(sys.argv[2], f"shape{i}.png"))
PY
$MLTK growclip predict "$WORK/grow3" "$WORK/images" --json > "$WORK/labels.json"
"$PY" -c "import json,sys; p=json.load(open(sys.argv[1]))['predictions']; \
assert len(p['label']) == 4; print('labels:', ', '.join(p['label']))" "$WORK/labels.json"

# 4. A chunk smaller than the batch is refused with exit code 5 and one sentence.
set +e
$MLTK growclip grow --first-chunk 16 --batch 32 --out "$WORK/bad" 2> "$WORK/bad.err"
code=$?
set -e
test "$code" -eq 5 || { echo "expected exit 5 for a chunk smaller than the batch, got $code" >&2; exit 1; }
grep -q "fewer than --batch 32" "$WORK/bad.err"
echo "ok: grown, continued, scored, labelled, and a bad chunk refused" >&2

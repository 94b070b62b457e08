#!/usr/bin/env bash
# EPIC end to end, the way a CI job would run it: a short ALBEF pre-training on the colour-biased
# shapes world, EPIC's objective on top of it, both scored on the counterfactual test split, the
# shipped model checking a caption word by word, a pairs file scored, and a bad pairs file
# refused; every step prints one JSON object, and the script checks exit codes and numbers.
#
#   bash examples/epic/check_captions.sh [WORK_DIR]
#
# Takes about 40 seconds on one CPU core.
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"
SMALL=(--pairs 300 --steps 30 --batch 32 --queue 64 --eval-size 60)

# 1. ALBEF's objective (ITC + ITM + MLM), then EPIC's from that model: saliency from the
#    momentum model's ITM score, the salient words replaced by the generator's samples, a
#    per-token consistency loss.
$MLTK epic train --objective albef "${SMALL[@]}" --out "$WORK/albef" --json > "$WORK/albef.json"
$MLTK epic train --init "$WORK/albef" --objective epic "${SMALL[@]}" --out "$WORK/epic" \
    --json > "$WORK/epic.json"
"$PY" - "$WORK/albef.json" "$WORK/epic.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    res = json.load(open(path))
    assert 0 <= res["itm_hard"] <= 1 and 0 <= res["token_auc"] <= 1, res
    print(f"{res['objective']}: hard-negative ITM {res['itm_hard']:.3f}, colour reliance "
          f"{res['reliance_colour']:.3f}, token AUC {res['token_auc']:.3f} ({res['token_scorer']})")
assert json.load(open(sys.argv[2]))["token_scorer"] == "head"
PY

# 2. eval scores both runs side by side; model/ holds Hugging Face folders.
$MLTK epic eval "$WORK/albef" "$WORK/epic" --eval-size 60 --json > "$WORK/eval.json"
"$PY" - "$WORK/eval.json" "$WORK/epic/model" <<'PY'
import json, os, sys
from transformers import BertModel, ViTModel
from transformers.utils import logging
logging.set_verbosity_error()
rows = json.load(open(sys.argv[1]))["runs"]
assert [r["objective"] for r in rows] == ["albef", "epic"]
ViTModel.from_pretrained(os.path.join(sys.argv[2], "vision"), add_pooling_layer=False)
BertModel.from_pretrained(os.path.join(sys.argv[2], "text"), add_pooling_layer=False)
print("eval: i2t R@1", ", ".join(f"{r['objective']} {r['i2t_r@1']:.3f}" for r in rows))
PY

# 3. The shipped model reads a caption whose colour is wrong for world image 14 (a blue circle:
#    the text alone would guess red for a circle).
$MLTK epic check world:14 "a large red circle in the right" --json > "$WORK/check.json"
"$PY" - "$WORK/check.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
tokens = res["tokens"]
worst = min(zip(tokens["consistent"], tokens["token"]))
assert tokens["token"] == "a large red circle in the right".split() and worst[1] == "red", tokens
print(f"check: least consistent word {worst[1]!r} ({worst[0]:.3f}), match {res['itm']:.3f}")
PY

# 4. predict scores a pairs file (ALBEF's JSONL); a file naming a missing image is refused
#    with exit code 5 and one sentence.
"$PY" - "$WORK" <<'PY'
import json, os, sys
from PIL import Image
from mltk.data import world as W
w = W.make_world(2, seed=3, kinds=("single",))
rows = []
for i, (img, scene) in enumerate(zip(w.images, w.scenes)):
    Image.fromarray(img).save(os.path.join(sys.argv[1], f"img{i}.png"))
    rows.append({"image": f"img{i}.png", "caption": W.dense_captions(scene)[0]})
with open(os.path.join(sys.argv[1], "pairs.jsonl"), "w") as f:
    f.write("\n".join(json.dumps(r) for r in rows) + "\n")
with open(os.path.join(sys.argv[1], "bad.jsonl"), "w") as f:
    f.write(json.dumps({"image": "nowhere.png", "caption": "a cat"}) + "\n")
PY
$MLTK epic predict "$WORK/epic" "$WORK/pairs.jsonl" --json > "$WORK/predict.json"
"$PY" -c "import json,sys; p=json.load(open(sys.argv[1]))['predictions']; \
assert p['pair'] == [1, 2]; print('predict: match', p['itm'])" "$WORK/predict.json"
set +e
$MLTK epic predict "$WORK/epic" "$WORK/bad.jsonl" 2> "$WORK/bad.err"
code=$?
set -e
test "$code" -eq 5 || { echo "expected exit 5 for a missing image, got $code" >&2; exit 1; }
grep -q "nowhere.png does not exist" "$WORK/bad.err"
echo "ok: pre-trained, scored, checked, predicted, and a bad pairs file refused" >&2

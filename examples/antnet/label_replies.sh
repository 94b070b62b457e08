#!/usr/bin/env bash
# AntNet end to end, the way a CI job would run it: train the BiLSTM AntNet on the generated
# reverse-QA set, label a file of a user's replies (no labels needed), score the run, and check
# that a file whose label names an option that was not offered is refused; every step prints
# one JSON object and the script checks it.
#
#   bash examples/antnet/label_replies.sh [WORK_DIR]
#
# Takes about 20 seconds on one CPU core.
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"

# 1. Train on the generated set (family A templates; the OOD set is family B on held-out
#    domains); the run keeps the model, eval.json and confusion.png.
$MLTK antnet train --preset tiny --train-size 700 --out "$WORK/run" --json > "$WORK/train.json"
"$PY" - "$WORK/train.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
assert res["test_accuracy"] > 0.5, res
print(f"train: test accuracy {res['test_accuracy']:.3f}, OOD {res['ood_accuracy']:.3f} "
      f"after {res['epochs']} epochs")
PY

# 2. A user's replies, one JSON object per line; labels are optional.
cat > "$WORK/replies.jsonl" <<'JSONL'
{"question": "Tea or coffee?", "options": ["tea", "coffee"], "answer": "the second one, please"}
{"question": "Shall I book the window seat?", "options": [], "answer": "no thanks"}
{"question": "Do you prefer card or cash?", "options": ["card", "cash"], "answer": "cash", "label": "cash"}
JSONL
$MLTK antnet answer "$WORK/run" --input "$WORK/replies.jsonl" --output "$WORK/labelled.jsonl" \
    --json > "$WORK/answer.json"
"$PY" - "$WORK/answer.json" "$WORK/labelled.jsonl" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
rows = [json.loads(line) for line in open(sys.argv[2])]
assert len(res["answers"]) == len(rows) == 3 and res["labelled"] == 1, res
for a in res["answers"]:
    assert abs(sum(a["probabilities"].values()) - 1) < 1e-4, a
    print(f"answer: {a['question']!r} <- {a['answer']!r}: {a['label']}")
PY

# 3. eval re-scores the run on the generated test sets (and draws confusion.png again).
$MLTK antnet eval "$WORK/run" --json > "$WORK/eval.json"
"$PY" - "$WORK/eval.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["runs"]
assert [r["split"] for r in rows] == ["test", "ood"], rows
print("eval:", ", ".join(f"{r['split']} {r['accuracy']:.3f}" for r in rows))
PY

# 4. A label naming an option that was not offered: exit code 5 and one sentence.
echo '{"question": "Tea or coffee?", "options": ["tea", "coffee"], "answer": "milk", "label": "milk"}' \
    > "$WORK/bad.jsonl"
set +e
$MLTK antnet eval "$WORK/run" --data "$WORK/bad.jsonl" 2> "$WORK/bad.err"
code=$?
set -e
test "$code" -eq 5 || { echo "expected exit 5 for a label outside the options, got $code" >&2; exit 1; }
grep -q "label 'milk' is not one of the options" "$WORK/bad.err"
echo "ok: trained, labelled a file, scored, and a bad label refused" >&2

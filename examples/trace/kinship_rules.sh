#!/usr/bin/env bash
# Rules from a knowledge graph end to end, the way a CI job would run it: learn rule chains on
# kinship, read the rules, answer queries from a CSV with the rules that fired; every step
# prints one JSON object, and the script checks exit codes and numbers.
#
#   bash examples/trace/kinship_rules.sh [WORK_DIR]
#
# Takes about 15 seconds on one CPU core.
set -euo pipefail

WORK="${1:-$(mktemp -d)}"
MLTK="${MLTK:-mltk}"            # e.g. MLTK="python -m mltk"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"

# 1. Learn: a tensor-train distribution over chains of 2 steps per relation (3 epochs).
$MLTK trace rules --data kinship --length 2 --epochs 3 --out "$WORK/rules" --json > "$WORK/rules.json"
"$PY" - "$WORK/rules.json" "$WORK/rules/rules.tsv" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
assert res["mrr"] > 0.5, f"kinship test MRR should pass 0.5 after 3 epochs, not {res['mrr']:.3f}"
rows = [line.split("\t") for line in open(sys.argv[2]).read().splitlines()[1:]]
best = max(rows, key=lambda r: (int(r[2]) > 20, float(r[3])))
print(f"kinship: test MRR {res['mrr']:.3f}, Hits@10 {res['hits@10']:.3f}; {len(rows)} rules, "
      f"e.g. {best[5]} (support {best[2]}, confidence {float(best[3]):.2f})")
PY

# 2. Ask: who is Person59 in relation Term15 to, and who is in relation Term8 to Person50?
printf 'entity,relation\nPerson59,Term15\nPerson50,inv_Term8\n' > "$WORK/queries.csv"
$MLTK trace predict "$WORK/rules" --queries "$WORK/queries.csv" --top 3 \
    --output "$WORK/answers.csv" --json > "$WORK/answers.json"
"$PY" - "$WORK/answers.json" <<'PY'
import json, sys
answers = json.load(open(sys.argv[1]))["answers"]
assert len(answers) == 6 and all(a["fired"] > 0 for a in answers), answers
for a in answers[:3]:
    print(f"{a['query']} #{a['rank']}: {a['answer']}, by {a['body']} (p={a['p']:.3f})")
PY

# 3. A relation the graph does not have is refused with exit code 5 and one sentence.
printf 'entity,relation\nPerson59,grandmother\n' > "$WORK/bad.csv"
set +e
$MLTK trace predict "$WORK/rules" --queries "$WORK/bad.csv" 2> "$WORK/bad.err"
code=$?
set -e
test "$code" -eq 5 || { echo "expected exit 5 for an unknown relation, got $code" >&2; exit 1; }
grep -q "grandmother" "$WORK/bad.err"
echo "ok: rules, predictions and the refusal of an unknown relation" >&2

#!/usr/bin/env bash
# The tiny-pixel preset's prediction target: v (our change) against the paper's eps, same everything else.
#   OMP_NUM_THREADS=1 nice bash benchmarks/pixart/eps_vs_v.sh [STEPS] [WORKDIR]
# Prints a markdown table and writes eps_vs_v.json next to this file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
steps="${1:-400}"
work="${2:-$(mktemp -d)}"
mkdir -p "$work"
for p in v eps; do
  mltk pixart train --preset tiny-pixel --prediction "$p" --steps "$steps" --log-every 100 --out "$work/$p" \
    --device cpu --threads 1 --json > "$work/$p.train.json" &
done
wait
for p in v eps; do
  mltk pixart eval "$work/$p" --prompts 64 --device cpu --threads 1 --json > "$work/$p.eval.json"
done
python - "$work" "$steps" "$here/eps_vs_v.json" <<'PY'
import json, sys
work, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for p in ("v", "eps"):
    ev = json.load(open(f"{work}/{p}.eval.json"))
    metrics = [json.loads(x) for x in open(f"{work}/{p}/metrics.jsonl")]
    rows[p] = {**{k: ev[k] for k in ev if k.startswith("acc_")}, "text_gap": metrics[-1]["text_gap"]}
print(f"\ntiny-pixel preset, {steps} steps, 64 held-out prompts, DPM-Solver++ 20 steps, CFG 4.5\n")
print("| prediction | colour | shape | position | count | all | text_gap (last log) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for p, r in rows.items():
    print(f"| {p} | {r['acc_colour']:.3f} | {r['acc_shape']:.3f} | {r['acc_position']:.3f} | {r['acc_count']:.3f} | {r['acc_all']:.3f} | {r['text_gap']:+.4f} |")
json.dump({"steps": steps, "results": rows}, open(out, "w"), indent=2)
PY

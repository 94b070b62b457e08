#!/usr/bin/env bash
# Are the shipped model's images byte-identical at two commits? Generates seeds 0-3 for two
# prompts with `mltk pixart generate tiny` from a checkout of each commit (the installed
# environment's packages, each commit's own code and weights) and compares the PNG files.
#   bash benchmarks/t2i/same_images_across_commits.sh 0be2718 49ca273
# (the move into mltk.t2i: 0be2718 before, 49ca273 after; both identical, 8 of 8 images)
set -euo pipefail
cd "$(dirname "$0")/../.."
py="$(command -v python)"
work="$(mktemp -d)"
commits=("$@")
trap 'for c in "${commits[@]}"; do git worktree remove --force "$work/tree-$c" 2>/dev/null || true; done; rm -rf "$work"' EXIT
for c in "${commits[@]}"; do
  git worktree add --detach -q "$work/tree-$c" "$c"
  ln -s "$work/tree-$c/plugins" "$work/tree-$c/mltk_plugins"
  (cd "$work/tree-$c" && PYTHONPATH="$work/tree-$c" OMP_NUM_THREADS=1 MLTK_CACHE_DIR="$work/cache-$c" \
    "$py" -m mltk pixart generate tiny "a red circle above a blue square" "three yellow circles in a row" \
    --num-images 4 --seed 0 --out "$work/gen-$c" --device cpu --threads 1 --quiet > /dev/null)
done
first="${commits[0]}"
for c in "${commits[@]:1}"; do
  same=0; total=0
  for f in "$work/gen-$first"/0*.png; do
    total=$((total + 1))
    cmp -s "$f" "$work/gen-$c/$(basename "$f")" && same=$((same + 1))
  done
  echo "$first vs $c: $same of $total images byte-identical"
done

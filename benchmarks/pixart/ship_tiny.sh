#!/usr/bin/env bash
# Rebuild the tiny model shipped in the package (plugins/pixart/weights/tiny, diffusers layout)
# and score it. About 25 minutes on 2 shared CPU cores.
#   OMP_NUM_THREADS=1 nice bash benchmarks/pixart/ship_tiny.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:-runs/pixart/ship}"
mltk pixart train --preset tiny --steps 1600 --save-every 400 --log-every 100 --out "$work" \
  --device cpu --threads 1 --json > "$work.train.json"
rm -rf plugins/pixart/weights/tiny
cp -r "$work/pipeline" plugins/pixart/weights/tiny
mltk pixart eval tiny --prompts 128 --device cpu --threads 1 --json | tee benchmarks/pixart/shipped_eval.json

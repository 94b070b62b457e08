#!/usr/bin/env bash
# Rebuild the tiny text-to-image model shipped with mltk (mltk/t2i/weights/tiny, diffusers layout)
# and score it: the `tiny` preset diffuses in the latents of the shipped tiny VAE
# (mltk/t2i/weights/tiny-vae; rebuild that first with benchmarks/t2i/ship_tiny_vae.py).
#   OMP_NUM_THREADS=1 nice bash benchmarks/pixart/ship_tiny.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:-runs/pixart/ship}"
mltk pixart train --preset tiny --steps 1600 --save-every 400 --log-every 100 --out "$work" \
  --device cpu --threads 1 --json > "$work.train.json"
rm -rf mltk/t2i/weights/tiny
cp -r "$work/pipeline" mltk/t2i/weights/tiny
mltk pixart eval tiny --prompts 128 --device cpu --threads 1 --json | tee benchmarks/pixart/shipped_eval.json
# the samples in the docs: one row per prompt, seeds 0-3
mltk pixart generate tiny "a red circle above a blue square" "a large green triangle in the top left" \
  "three yellow circles in a row" "a blue square left of a red triangle" --num-images 4 --seed 0 \
  --out "$work-samples" --device cpu --threads 1 --quiet > /dev/null
cp "$work-samples/grid.png" benchmarks/pixart/shipped_samples.png

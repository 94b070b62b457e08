#!/usr/bin/env bash
# Download (here, with registry access) the wheels gpu_speed.sh needs on a bare GPU machine that
# has a CUDA torch but no internet: diffusers, transformers, tokenizers and the mltk core's
# dependencies, for CPython 3.10-3.12 on x86-64 Linux. numpy and torch are expected there.
# Usage: bash benchmarks/pixart/prepare_wheels.sh   (writes benchmarks/pixart/wheels/, git-ignored)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/wheels"
mkdir -p "$dest"
common=(typer rich pluggy platformdirs filelock safetensors pillow)
for pyv in ${PYVERSIONS:-3.11 3.12}; do  # ~50 MB; add 3.10 if the GPU machine runs it
  if [ "$pyv" = "3.10" ]; then  # diffusers 0.42 needs python >= 3.11
    pkgs=("diffusers>=0.30,<0.42" "transformers>=4.44,<5" "${common[@]}")
  else
    pkgs=(diffusers==0.42.1 transformers==5.24.0 tokenizers==0.23.3 "${common[@]}")
  fi
  python -m pip download --quiet --only-binary=:all: --python-version "$pyv" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --implementation cp -d "$dest" "${pkgs[@]}"
done
rm -f "$dest"/numpy-*.whl "$dest"/torch-*.whl "$dest"/nvidia_*.whl "$dest"/triton-*.whl
du -sh "$dest"

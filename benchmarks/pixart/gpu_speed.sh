#!/usr/bin/env bash
# GPU benchmark (a): `mltk pixart generate` vs diffusers' PixArtAlphaPipeline, same weights.
# Run from the repository root on a machine with a CUDA torch:   bash benchmarks/pixart/gpu_speed.sh
# If diffusers/transformers/typer... are missing and the machine has no internet, first run
# `bash benchmarks/pixart/prepare_wheels.sh` where a registry is reachable and carry
# benchmarks/pixart/wheels along; this script installs from it. Exit 3: something is missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
echo "python: $($PY -c 'import sys; print(sys.version.split()[0])')"
missing=$($PY - <<'PYEOF'
import importlib.util
need = {"torch": "torch", "numpy": "numpy", "diffusers": "diffusers", "transformers": "transformers",
        "tokenizers": "tokenizers", "typer": "typer", "rich": "rich", "pluggy": "pluggy",
        "platformdirs": "platformdirs", "filelock": "filelock", "safetensors": "safetensors", "PIL": "pillow"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
  echo "missing python packages: $missing"
  case " $missing " in *" torch "*|*" numpy "*) echo "needs a CUDA build of torch (and numpy) installed"; exit 3;; esac
  if [ -d benchmarks/pixart/wheels ]; then
    echo "installing from benchmarks/pixart/wheels ..."
    $PY -m pip install --quiet --no-index --find-links benchmarks/pixart/wheels $missing || {
      echo "offline install failed; run PYVERSIONS=<this python's X.Y> bash benchmarks/pixart/prepare_wheels.sh with internet and carry benchmarks/pixart/wheels"; exit 3; }
  else
    echo "need: pip install $missing  (offline: bash benchmarks/pixart/prepare_wheels.sh elsewhere, carry benchmarks/pixart/wheels)"
    exit 3
  fi
fi
$PY -c "import torch,sys; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
# mltk is not installed there: import it from the tree, with plugins/ visible as mltk_plugins.
shim="$(mktemp -d)"; ln -s "$PWD/plugins" "$shim/mltk_plugins"
export PYTHONPATH="$PWD:$shim${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 MLTK_CACHE_DIR="${TMPDIR:-/tmp}/mltk-cache"
timeout "${GPU_SPEED_TIMEOUT:-270}" $PY benchmarks/pixart/gpu_speed.py "$@"
rc=$?
rm -rf "$shim"
exit $rc

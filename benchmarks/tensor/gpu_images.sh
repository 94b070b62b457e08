#!/usr/bin/env bash
# Benchmark (a) on a GPU: NORT-LSP and the dense proximal-average solver on the same lambda path,
# the full-size retina (1411 x 1411 x 3), float32, `--device cuda`. Peak memory is the CUDA
# allocator's high-water mark above the loaded data (torch.cuda.max_memory_allocated).
#
#   bash benchmarks/tensor/gpu_images.sh [--observed 0.2,0.1] [--max-rank 400]
#
# Needs torch with CUDA, numpy and scikit-image (for the photograph); mltk need not be installed.
# Order: a one-SVD probe (how long the dense solver's unit of work takes there), then NORT, then
# the dense solver on NORT's path, per observed fraction. Rows land in images.json (device
# "cuda"); copies go to $OUT when that is set. GPU_IMAGES_TIMEOUT (s) bounds the whole run.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
$PY -c "import torch, numpy, skimage" 2>/dev/null || { echo "needs torch, numpy and scikit-image"; exit 3; }
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA device"; exit 3; }
# mltk is not installed there: import it from the tree, with plugins/ visible as mltk_plugins.
shim="$(mktemp -d)"; ln -s "$PWD/plugins" "$shim/mltk_plugins"
export PYTHONPATH="$PWD:$shim${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
$PY - <<'PYEOF'
import time, torch
print("torch", torch.__version__, torch.cuda.get_device_name(0))
A = torch.randn(1411, 4233, device="cuda")
for _ in range(2):  # first call: cuSOLVER handles and workspace
    torch.cuda.synchronize(); t = time.perf_counter()
    torch.linalg.svd(A, full_matrices=False); torch.cuda.synchronize()
print(f"one 1411 x 4233 float32 SVD: {time.perf_counter() - t:.3f} s")
PYEOF
args=(--image retina --size 0 --methods nort-lsp,dense-pa-lsp --device cuda --observed 0.2 --max-rank 400)
timeout "${GPU_IMAGES_TIMEOUT:-540}" $PY benchmarks/tensor/images.py "${args[@]}" "$@"
rc=$?
if [ -n "${OUT:-}" ]; then cp benchmarks/tensor/images.json benchmarks/tensor/.path-retina-0-*.json "$OUT"/ 2>/dev/null; fi
rm -rf "$shim"
exit $rc

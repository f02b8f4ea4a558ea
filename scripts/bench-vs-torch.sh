#!/usr/bin/env bash
# Measures swift-dsi and the PyTorch twin (../shared/peers/torch_dsi.py) side by side, in
# one run, at the same configuration and thread count: training steps (dsi bench ops) and
# trie-constrained beam search (dsi bench query); prints every JSON object.
#
#   scripts/bench-vs-torch.sh [THREADS] [STEPS]
#
# The twin needs torch: python3 -m venv .venv-peer && .venv-peer/bin/pip install torch numpy
# (PYTHON=path/to/python overrides the interpreter). Both run at decoder length 8: the
# twin's --docid-len other than 8 fails (it formats docids with a fixed "%08d").
# OPENBLAS_CORETYPE, when set in the environment, is honoured; the script then also runs
# dsi without it, where dsi picks OpenBLAS's AVX-512 kernels on AMD CPUs that have them.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-20}
python=${PYTHON:-}
for p in .venv-peer/bin/python ../.venv-peer/bin/python; do
  [ -z "$python" ] && [ -x "$p" ] && python=$p
done
swift build -c release --product dsi >/dev/null
echo "# swift-dsi: dsi bench ops --threads $threads --steps $steps --target-length 8 --json"
.build/release/dsi bench ops --threads "$threads" --steps "$steps" --target-length 8 --json
echo "# swift-dsi at the issue's target length 9: dsi bench ops --threads $threads --steps $steps --json"
.build/release/dsi bench ops --threads "$threads" --steps "$steps" --json
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  # The environment pins OpenBLAS's kernels; show what dsi picks by itself too.
  echo "# swift-dsi with OPENBLAS_CORETYPE unset (dsi picks the kernels): env -u OPENBLAS_CORETYPE dsi bench ops --threads $threads --steps $steps --target-length 8 --json"
  env -u OPENBLAS_CORETYPE .build/release/dsi bench ops --threads "$threads" --steps "$steps" --target-length 8 --json
fi
echo "# swift-dsi beam search: dsi bench query --threads $threads --json"
.build/release/dsi bench query --threads "$threads" --json
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  echo "# swift-dsi beam search, dsi's own kernel choice: env -u OPENBLAS_CORETYPE dsi bench query --threads $threads --json"
  env -u OPENBLAS_CORETYPE .build/release/dsi bench query --threads "$threads" --json
fi
if [ -n "$python" ] && "$python" -c "import torch" 2>/dev/null; then
  echo "# PyTorch twin: torch_dsi.py --threads $threads --steps $steps --batch 64"
  "$python" ../shared/peers/torch_dsi.py --threads "$threads" --steps "$steps" --batch 64
else
  echo "# PyTorch twin skipped: no python with torch (set PYTHON=...)" >&2
fi

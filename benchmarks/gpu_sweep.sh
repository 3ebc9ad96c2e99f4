#!/usr/bin/env bash
# The GPU sweep in one command: torch-adam and jax-adam from 10^4 to 10^8 responses on one GPU,
# written to results/gpu-<GPU name>/ (results.csv, curves.csv, environment.json, figures, report).
#
#   bash benchmarks/gpu_sweep.sh            # sets up .venv-gpu with CUDA builds, then runs
#   SIZES=100x100,1000x1000 bash benchmarks/gpu_sweep.sh
#
# Budget: about 10 minutes on one H100-class GPU (1000 epochs at 10^8 responses take well under
# a minute there); each fit is stopped after TIME_BUDGET seconds and recorded as a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-100x100,1000x100,1000x1000,10000x1000,100000x1000}
TIME_BUDGET=${TIME_BUDGET:-240}
VENV=${VENV:-.venv-gpu}

if [ ! -x "$VENV/bin/irtbench" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet 'torch>=2.4' 'jax[cuda12]' optax
    "$VENV/bin/python" -m pip install --quiet -e '.[all]'
fi
"$VENV/bin/python" -c 'import torch, jax; assert torch.cuda.is_available(), "torch sees no GPU"; print("torch", torch.__version__, torch.cuda.get_device_name(0)); print("jax", jax.__version__, jax.devices())'

NAME=$("$VENV/bin/python" -c 'import torch; print(torch.cuda.get_device_name(0).replace(" ", "-"))')
OUT=${OUT:-results/gpu-$NAME}
"$VENV/bin/irtbench" run --device cuda --estimators torch-adam,jax-adam --sizes "$SIZES" \
    --seeds 1 --time-budget "$TIME_BUDGET" --out "$OUT" --resume
echo "results in $OUT; commit that folder"

#!/usr/bin/env bash
# The one prepared GPU command: for a CUDA machine with no network and torch / JAX / NumPyro
# already installed in whatever versions it has. No venv, no pip: the package is used from this
# source tree (PYTHONPATH). Writes everything into one folder (and a tarball of it):
#   bash benchmarks/gpu_check.sh [OUT]        (default: gpu-check-DATE-TIME; $OUT if set)
# Budget: at most 9 minutes (the steps' limits add up to 510 s); each step has its own time
# limit, so a hang costs that step only. Test names are printed as they run (pytest -v) and
# the failures are listed in OUT/failures.txt.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu-check-$(date +%Y%m%d-%H%M%S)}}
mkdir -p "$OUT"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export JAX_PLATFORMS="${JAX_PLATFORMS:-}"  # let JAX find its GPU
PY=${PYTHON:-python3}

step() {  # step NAME SECONDS COMMAND...: run with a time limit, output into OUT/NAME.txt
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local code=$?
  echo "   exit $code" | tee -a "$OUT/steps.txt"
  return 0
}

{
  date -u +%FT%TZ
  git rev-parse HEAD 2>/dev/null || echo "no git"
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1
  "$PY" - <<'PY'
import platform, importlib
print("python", platform.python_version())
for name in ("numpy", "pandas", "torch", "jax", "jaxlib", "optax", "numpyro", "pytest"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except ImportError as error:
        print(name, "missing:", error)
import torch
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
PY
} > "$OUT/versions.txt" 2>&1
cat "$OUT/versions.txt"

# the tests that touch CUDA, then the whole suite where 'auto' means CUDA
step tests-cuda 90 "$PY" -m pytest -v -p no:cacheprovider -rfE tests/test_cuda.py tests/test_torch_adam.py tests/test_estimators.py
step tests-all 120 "$PY" -m pytest -v -p no:cacheprovider -rfE tests
grep -h -E "^(FAILED|ERROR)" "$OUT"/tests-*.txt > "$OUT/failures.txt" || true
echo "failed tests:"; cat "$OUT/failures.txt"

step scale 90 "$PY" benchmarks/gpu_scale.py --device cuda --out "$OUT/scale"
step seed 60 "$PY" benchmarks/seed_vs_suite.py --device cuda --sizes 1000x1000,10000x1000 --out "$OUT/seed.csv"
step sweep 90 "$PY" -m irtbench.cli run --device cuda --sizes 1000x1000,10000x1000 \
  --model rasch --estimators torch-adam,jax-adam,jml-newton,cml,mml-em --seeds 1 --time-budget 60 \
  --out "$OUT/sweep"
# the 2PL at the shape of tinyBenchmarks' leaderboard (300 models x 28659 items)
step llm 60 "$PY" -m irtbench.cli run --device cuda --sizes 300x28659 --model 2pl \
  --estimators mml-em,torch-adam,jax-adam --seeds 1 --time-budget 50 --out "$OUT/llm"

tar czf "$OUT.tar.gz" "$OUT"
echo "everything in $OUT/ and $OUT.tar.gz"

#!/usr/bin/env bash
# The one prepared GPU command: for a CUDA machine with no network and torch / JAX / NumPyro /
# Triton already installed in whatever versions it has. No pip from the network: the package is
# used from this source tree (PYTHONPATH); only the torch family's two venvs are built, from
# carried wheels. Writes everything into one folder:
#   bash benchmarks/gpu_check.sh [OUT]        (default: gpu-check-DATE-TIME; $OUT if set)
#   STEPS="scale seed" bash benchmarks/gpu_check.sh OUT   (only those steps, in this file's order)
# Budget: about 5 minutes without the torch family's steps, which run only where their wheels
# were carried (then up to 9 minutes more; STEPS="versions torch-family-venvs torch-family" runs
# them alone); each step has its own time limit, so a hang costs that step only. Every test's
# name and outcome is written as it runs (pytest -v into OUT/tests-*.txt) and, when a step ends
# in time, as JUnit XML (OUT/junit-*.xml); the failures are listed in OUT/failures.txt. JAX sees
# the GPU (JAX_PLATFORMS empty).
set -u
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu-check-$(date +%Y%m%d-%H%M%S)}}
mkdir -p "$OUT"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export JAX_PLATFORMS=""  # let JAX find its GPU (tests/conftest.py keeps it on the CPU only
                         # where torch sees no GPU)
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

# a shorter lease: fewer steps
STEPS=${STEPS:-versions tests-cuda scale seed tests-all torch-family-venvs torch-family}
step() {  # step NAME SECONDS COMMAND...: run with a time limit, output into OUT/NAME.txt
  local name=$1 limit=$2; shift 2
  case " $STEPS " in *" $name "*) ;; *) echo "== $name skipped (STEPS)"; return 0 ;; esac
  echo "== $name (limit ${limit}s)"
  local start=$SECONDS
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local code=$?
  echo "$name exit $code after $((SECONDS - start)) s" | tee -a "$OUT/steps.txt"
  return 0
}

step versions 15 "$PY" - <<'PY'
import platform, importlib, subprocess
print(subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,clocks.max.sm",
                      "--format=csv"], capture_output=True, text=True).stdout)
print("python", platform.python_version())
for name in ("numpy", "pandas", "torch", "triton", "jax", "jaxlib", "optax", "numpyro", "pytest"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except ImportError as error:
        print(name, "missing:", error)
import torch, jax
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
print("jax devices", jax.devices())
PY
cat "$OUT/versions.txt"

TESTS=(-p no:cacheprovider -v -rA)
# the tests that touch CUDA: the CUDA paths against the CPU, the fused kernel compiled
step tests-cuda 40 "$PY" -m pytest "${TESTS[@]}" --junitxml="$OUT/junit-cuda.xml" \
  tests/estimators/test_cuda.py tests/estimators/test_fast_paths.py
# whole fits from 10^6 to 10^10 responses and the 2PL at 300 x 28659, data simulated on the GPU
step scale 120 "$PY" benchmarks/gpu_scale.py --device cuda --out "$OUT/scale"
# the seed notebook's loop against the suite at 1000 x 1000 (launch-bound epochs)
step seed 25 "$PY" benchmarks/seed_vs_suite.py --device cuda --sizes 1000x1000 --out "$OUT/seed.csv"
# the whole suite where 'auto' means CUDA; each test limited
step tests-all 60 "$PY" -m pytest "${TESTS[@]}" -n 12 --timeout 60 \
  --junitxml="$OUT/junit-all.xml" tests
# irtbench beside the torch family on the GPU (issue 32): irtorch's and torch-measure's
# environments built with no network from the wheels of `make torch-family-wheels` (carried as
# wheels/torch-family, or $TORCH_FAMILY_WHEELS) over this machine's CUDA torch
# (benchmarks/torch_family_venvs.sh), then benchmarks/torch_family_shapes.py with every fit on
# cuda at the shapes that fit in a few minutes ($TORCH_FAMILY_SIZES, each fit at most
# $TORCH_FAMILY_BUDGET seconds): OUT/torch-family/shapes.csv, shapes.md and shapes.png
WHEELS=${TORCH_FAMILY_WHEELS:-wheels/torch-family}
VENVS=${TMPDIR:-/tmp}/irtbench-torch-family
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  step torch-family-venvs 180 bash benchmarks/torch_family_venvs.sh "$WHEELS" "$VENVS" "$PY"
  export IRTBENCH_IRTORCH_PYTHON="$VENVS/irtorch/bin/python"
  export IRTBENCH_TORCH_MEASURE_PYTHON="$VENVS/torch-measure/bin/python"
  step torch-family 360 "$PY" benchmarks/torch_family_shapes.py --device cuda --force \
    --sizes "${TORCH_FAMILY_SIZES:-1000x50,10000x100}" \
    --time-budget "${TORCH_FAMILY_BUDGET:-60}" --out "$OUT/torch-family"
else
  for name in torch-family-venvs torch-family; do
    case " $STEPS " in *" $name "*)
      echo "$name skipped: no wheels in $WHEELS (make torch-family-wheels where pip works, then" \
        "carry that folder)" | tee -a "$OUT/steps.txt" ;;
    esac
  done
fi

grep -h -E "(FAILED|ERROR)" "$OUT"/tests-*.txt | grep -v "^=" | sort -u > "$OUT/failures.txt" || true
echo "failed tests:"; cat "$OUT/failures.txt"
echo "everything in $OUT/"

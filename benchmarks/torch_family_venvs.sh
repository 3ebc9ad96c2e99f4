#!/usr/bin/env bash
# The torch family's two environments, built with no network from a folder of wheels (make
# torch-family-wheels) over the torch of the interpreter that runs irtbench: on a GPU machine its
# CUDA build, so that irtorch-* and torch-measure-* fit there with device="cuda"
# (benchmarks/gpu_check.sh, step torch-family).
#   bash benchmarks/torch_family_venvs.sh WHEELS FOLDER [PYTHON]
# Makes FOLDER/irtorch and FOLDER/torch-measure: each a venv with --system-site-packages and a
# .pth file naming the folder that holds PYTHON's torch (PYTHON may itself be a venv, whose own
# packages a new venv's "system site" does not include), the package installed from WHEELS alone
# (pip --no-index: what PYTHON already has in a version that fits is kept; the rest comes from
# WHEELS, into the venv, ahead of PYTHON's), and a check that the venv's interpreter imports
# torch and the package as irtbench starts it (python -I). Prints the variables that point
# irtbench at the two interpreters, as lines of shell.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash benchmarks/torch_family_venvs.sh WHEELS FOLDER [PYTHON]" >&2
  exit 2
fi
WHEELS=$(cd "$1" && pwd)
FOLDER=$2
PY=${3:-python3}
HOST_SITE=$("$PY" -c 'import pathlib, torch; print(pathlib.Path(torch.__file__).resolve().parents[1])')

build() {  # build NAME REQUIREMENT MODULE VARIABLE
  local venv="$FOLDER/$1" purelib
  "$PY" -m venv --system-site-packages "$venv"
  purelib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  echo "$HOST_SITE" > "$purelib/irtbench-host-torch.pth"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
    --find-links "$WHEELS" "$2" >&2
  "$venv/bin/python" -I -c "import torch, $3; from importlib.metadata import version; \
print('# $1', version('$1'), 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  echo "export $4=$venv/bin/python"
}

mkdir -p "$FOLDER"
FOLDER=$(cd "$FOLDER" && pwd)
build irtorch irtorch==0.5.6 irtorch IRTBENCH_IRTORCH_PYTHON
build torch-measure torch-measure==0.1.0 torch_measure IRTBENCH_TORCH_MEASURE_PYTHON

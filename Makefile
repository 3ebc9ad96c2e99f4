# Two commands on a fresh machine with only Python 3.10+:
#   make run    set up .venv with what irtbench's commands use and run the main job (the
#               default benchmark sweep)
#   make test   set up .venv with everything (the test and benchmark tools too) and run the
#               test suite; after make run it adds the test extra to the same .venv
# On a GPU machine pick a torch build for it, e.g.  make test TORCH='torch>=2.4'
#   make py-irt-venv   py-irt's own environment (.venv-pyirt; it pins pandas < 3), for the
#                      py-irt peer (its tests skip without it; 51 s here from local wheels)
#   make irtorch-venv        irtorch's own environment (.venv-irtorch, 1.5 GB; 49 s here from
#                            local wheels), for the irtorch-* peers
#   make torch-measure-venv  torch-measure's own environment (.venv-torch-measure, 1.6 GB; 59 s
#                            here), for the torch-measure-* peers (their tests skip without them)
PYTHON ?= python3
VENV   ?= .venv
# torch is installed first, pinned, on its own: the extras' requirements (torch>=2.4) are then
# met by it, and pip does not pull another build (on a CUDA machine, a CUDA one) in its place
TORCH  ?= torch==2.13.0
# what the commands use: the default sweep's backends (jax, numpyro), the field's packages and
# theta-irt (run --estimators, compare), dask (run --scheduler), pyarrow (Parquet response
# files); not the test extra (pytest, hypothesis, scipy, and Triton, 1 GB, whose only use
# without CUDA is one interpreter test)
RUN_EXTRAS ?= jax,numpyro,peers,theta,dask,parquet
BIN    := $(VENV)/bin
PYIRT_VENV ?= .venv-pyirt
PYIRT  ?= py-irt==0.7.1
IRTORCH_VENV ?= .venv-irtorch
IRTORCH      ?= irtorch==0.5.6
TORCH_MEASURE_VENV ?= .venv-torch-measure
TORCH_MEASURE      ?= torch-measure==0.1.0

.PHONY: setup setup-test run test bench clean py-irt-venv irtorch-venv torch-measure-venv

setup: $(VENV)/.installed-run
setup-test: $(VENV)/.installed-test

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[$(RUN_EXTRAS)]"
	touch $@

# on top of the run's environment: pip adds what .[all] has more and reinstalls nothing
$(VENV)/.installed-test: $(VENV)/.installed-run
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $@

py-irt-venv: $(PYIRT_VENV)/.installed

$(PYIRT_VENV)/.installed:
	$(PYTHON) -m venv $(PYIRT_VENV)
	$(PYIRT_VENV)/bin/python -m pip install --quiet "$(TORCH)" "$(PYIRT)"
	touch $@

# torch first, so that the package's unpinned torch is the pinned build, not a CUDA one
irtorch-venv: $(IRTORCH_VENV)/.installed

$(IRTORCH_VENV)/.installed:
	$(PYTHON) -m venv $(IRTORCH_VENV)
	$(IRTORCH_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(IRTORCH_VENV)/bin/python -m pip install --quiet "$(TORCH)" "$(IRTORCH)"
	touch $@

torch-measure-venv: $(TORCH_MEASURE_VENV)/.installed

$(TORCH_MEASURE_VENV)/.installed:
	$(PYTHON) -m venv $(TORCH_MEASURE_VENV)
	$(TORCH_MEASURE_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(TORCH_MEASURE_VENV)/bin/python -m pip install --quiet "$(TORCH)" "$(TORCH_MEASURE)"
	touch $@

run: setup
	$(BIN)/irtbench run

test: setup-test
	$(BIN)/python -m pytest

# the speed suite only; the targets (~3 min) and scale (~25 min) suites are asked for by name:
#   make bench BENCH=benchmarks/test_targets.py
BENCH ?= benchmarks/test_fit_speed.py
bench: setup-test
	$(BIN)/python -m pytest $(BENCH) --benchmark-only

clean:
	rm -rf $(VENV) $(PYIRT_VENV) $(IRTORCH_VENV) $(TORCH_MEASURE_VENV) .pytest_cache .benchmarks

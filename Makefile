# Two commands on a fresh machine with only Python 3.10+:
#   make run    set up .venv and run the main job (the default benchmark sweep)
#   make test   set up .venv and run the test suite
# On a GPU machine pick a torch build for it, e.g.  make test TORCH='torch>=2.4'
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin

.PHONY: setup run test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $@

run: setup
	$(BIN)/irtbench run

test: setup
	$(BIN)/python -m pytest

# the speed suite only; the targets (~3 min) and scale (~25 min) suites are asked for by name:
#   make bench BENCH=benchmarks/test_targets.py
BENCH ?= benchmarks/test_fit_speed.py
bench: setup
	$(BIN)/python -m pytest $(BENCH) --benchmark-only

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks

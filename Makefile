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
#   make torch-family-wheels both packages and what they need, as wheels for a GPU machine with
#                            no network (wheels/torch-family/, about 43 MB; benchmarks/gpu_check.sh)
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
# the torch family's wheels for a GPU machine (benchmarks/gpu_check.sh builds the two environments
# there over its own CUDA torch): for its Python and platforms, without torch and its CUDA
# libraries, and without the compiled stack a CUDA torch image carries (numpy, scipy, matplotlib,
# pyarrow, pillow, fonttools, kiwisolver, contourpy, hf-xet, PyYAML, MarkupSafe,
# charset-normalizer) nor torch's own requirements (sympy, mpmath, networkx, jinja2, filelock,
# fsspec, typing_extensions): pip there takes those from the machine (setuptools is carried: a
# venv of Python 3.11 brings an older one, and torch asks for 77 or later). The rest is
# what pip resolves for irtorch 0.5.6 and torch-measure 0.1.0 on Python 3.12, pinned; pandas
# 2.3.3 and scikit-learn 1.6.1 are carried because tabpfn (torch-measure imports it) caps them
# below 3 and 1.7. factor_analyzer is published as source only: built here (pure Python).
TORCH_FAMILY_WHEELS ?= wheels/torch-family
DEVICE_PYTHON       ?= 3.12
DEVICE_PLATFORMS    ?= manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
                       manylinux_2_17_x86_64 manylinux2014_x86_64
TORCH_FAMILY_SOURCE_ONLY  ?= factor_analyzer==0.5.1
TORCH_FAMILY_DEPENDENCIES ?= plotly==6.9.0 narwhals==2.29.0 splinetorch==0.0.2 \
    pyro-ppl==1.9.2 pyro-api==0.1.2 opt_einsum==3.4.0 tqdm==4.70.1 \
    tabpfn==2.2.1 tabpfn-common-utils==0.2.23 huggingface_hub==0.36.2 einops==0.8.2 \
    pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3 annotated-types==0.8.0 \
    typing-inspection==0.4.5 eval_type_backport==0.4.0 posthog==7.91.1 backoff==2.2.1 \
    distro==1.9.0 python-dotenv==1.2.4 platformdirs==4.14.9 nvidia-ml-py==13.615.71 \
    requests==2.34.2 urllib3==2.8.0 idna==3.21 certifi==2026.10.19.post1 \
    pandas==2.3.3 pytz==2026.6 tzdata==2026.6 python-dateutil==4.0.0 \
    scikit-learn==1.6.1 joblib==1.6.0 threadpoolctl==3.8.0 \
    seaborn==0.13.2 tueplots==0.2.5 cycler==0.12.1 pyparsing==3.3.3 packaging==26.4 \
    cloudpickle==3.1.3 setuptools==84.2.1

.PHONY: setup setup-test run test bench clean py-irt-venv irtorch-venv torch-measure-venv \
        torch-family-wheels

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

torch-family-wheels:
	mkdir -p $(TORCH_FAMILY_WHEELS)
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(TORCH_FAMILY_WHEELS) \
	    $(TORCH_FAMILY_SOURCE_ONLY)
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: \
	    --dest $(TORCH_FAMILY_WHEELS) --python-version $(DEVICE_PYTHON) --implementation cp \
	    $(addprefix --platform ,$(DEVICE_PLATFORMS)) \
	    $(IRTORCH) $(TORCH_MEASURE) $(TORCH_FAMILY_DEPENDENCIES)
	@du -sh $(TORCH_FAMILY_WHEELS)

run: setup
	$(BIN)/irtbench run

test: setup-test
	$(BIN)/python -m pytest -n auto

# the speed suite only; the targets (~3 min) and scale (~25 min) suites are asked for by name:
#   make bench BENCH=benchmarks/test_targets.py
BENCH ?= benchmarks/test_fit_speed.py
bench: setup-test
	$(BIN)/python -m pytest $(BENCH) --benchmark-only

clean:
	rm -rf $(VENV) $(PYIRT_VENV) $(IRTORCH_VENV) $(TORCH_MEASURE_VENV) $(TORCH_FAMILY_WHEELS) \
	    .pytest_cache .benchmarks

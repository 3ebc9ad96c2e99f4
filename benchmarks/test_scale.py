"""Scale targets (not part of the default test run: ``pytest benchmarks/test_scale.py -s``).

* ``torch-adam`` on 100000x1000 (10^8 responses, 1000 epochs) completes with a peak memory
  under 4 GB (int8 storage, blockwise objective: about 1 byte per response plus ~225 MB);
* ``jml-newton`` on the same data in under 3 s end to end (``Fit.seconds``);
* sparse: 10^6 students x 10^4 questions with 10^7 observed responses, ``jml-newton`` in
  under a minute;
* the memory model of every torch estimator (``Estimator.memory_estimate``) is checked against
  the measured peak at 2x10^7 responses: measured <= model.

Peak memory is the growth of the process's peak RSS over the fit (the harness's
``rss_peak_growth``); the simulated data exist before the fit and are not counted.
"""

from __future__ import annotations

import pytest
from _timing import benchmark_fit

import irtbench
from irtbench.harness import PeakMemory

GB = 1e9


def measured_fit(name: str, responses, **options):
    estimator = irtbench.get_estimator(name)(device="cpu", **options)
    estimator.warm_up()
    with PeakMemory() as memory:
        fit = estimator.fit(responses)
    return fit, memory.measure("cpu", estimator.backend)[0]


@pytest.fixture(scope="module")
def hundred_million():
    return irtbench.simulate(100_000, 1000, seed=0, compact=True)


def test_torch_adam_10_8_responses_under_4_gb(benchmark, hundred_million):
    fit, peak = measured_fit("torch-adam", hundred_million.responses)
    benchmark.pedantic(lambda: None, rounds=1)
    benchmark.extra_info.update(seconds=fit.seconds, peak_memory_bytes=peak,
                                crb_ratio_difficulty=irtbench.recovery(fit, hundred_million)[
                                    "crb_ratio_difficulty"])
    print(f"\ntorch-adam 100000x1000: {fit.seconds:.0f} s, peak {peak / GB:.2f} GB")
    assert fit.n_iter == 1000 and peak < 4 * GB


def test_jml_newton_10_8_responses_under_3_s(benchmark, hundred_million):
    fit = benchmark_fit(benchmark, "jml-newton", hundred_million.responses, rounds=3)
    print(f"\njml-newton 100000x1000: {fit.seconds:.2f} s end to end, "
          f"{fit.compute_seconds:.2f} s of Newton iterations")
    assert fit.diagnostics["converged"] and fit.seconds < 3


@pytest.mark.parametrize("name", ["torch-adam", "jml-newton", "cml", "mml-em"])
def test_memory_model_bounds_the_measured_peak(name):
    data = irtbench.simulate(20_000, 1000, seed=0, compact=True)
    options = {"epochs": 3} if name == "torch-adam" else {}
    _, peak = measured_fit(name, data.responses, **options)
    model = irtbench.get_estimator(name)(**options).memory_estimate(20_000, 1000, 0.0)
    print(f"\n{name} 20000x1000: peak {peak / 1e6:.0f} MB, model {model / 1e6:.0f} MB")
    assert peak <= model


def test_sparse_jml_newton_10_7_responses_under_a_minute():
    data = irtbench.simulate_sparse(1_000_000, 10_000, 10_000_000, seed=0)
    fit = irtbench.fit(data.responses, "jml-newton", device="cpu")
    print(f"\nsparse jml-newton 1e6 x 1e4, 1e7 observed: {fit.seconds:.1f} s, "
          f"{fit.n_iter} iterations, {fit.diagnostics['converged']=}")
    assert fit.diagnostics["converged"] and fit.seconds < 60

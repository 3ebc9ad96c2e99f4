"""Speed of each estimator's fit, with its recovery metrics as ``extra_info``.

The clock is :meth:`Estimator.fit`'s: :meth:`Estimator.run` is timed (host matrix in, every
estimate and SE back on the host, device synchronised) while the load (the pass over the
responses, the extremes, the set-up) and JIT compilation (:meth:`Estimator.prepare`) happen in
pytest-benchmark's ``setup``, the load timed there and added to ``Fit.seconds``
(``extra_info["load_seconds"]``); the first round is a warm-up round. Accuracy is recorded, not gated, here:
``--benchmark-compare-fail`` gates time only; ``irtbench check`` gates accuracy.
"""

from __future__ import annotations

import pytest
from _timing import benchmark_fit

import irtbench
from irtbench.harness import estimator_options
from irtbench.responses import observed_count, size_label


def test_fit(benchmark, request, estimator_name, size):
    n_students, n_questions = size
    cls = irtbench.get_estimator(estimator_name)
    if not cls.available():
        pytest.skip(f"{estimator_name}: backend not installed ({cls.install_command()})")
    device = request.config.getoption("device")
    estimator = cls(**estimator_options(estimator_name, {}, device))
    skip, why = estimator.skip(n_students, n_questions, device)
    if skip:
        pytest.skip(why)
    data = irtbench.simulate(n_students, n_questions, seed=0)
    benchmark.group = size_label(n_students, n_questions)
    fit = benchmark_fit(benchmark, estimator_name, data.responses, device=device,
                        rounds=request.config.getoption("rounds"),
                        threads=request.config.getoption("threads"))
    metrics = irtbench.recovery(fit, data)
    benchmark.extra_info.update(
        estimator=estimator_name,
        device=fit.device,
        n_iter=fit.n_iter,
        compile_seconds=fit.compile_seconds,
        compute_seconds=fit.compute_seconds,
        responses_per_second=observed_count(data.responses) * fit.n_iter / fit.compute_seconds,
        **{key: metrics[key] for key in ("rmse_skill", "rmse_difficulty", "crb_ratio_skill",
                                         "crb_ratio_difficulty", "n_extreme")},
    )
    assert metrics["corr_difficulty"] > 0.5  # a fit that says nothing is not a benchmark

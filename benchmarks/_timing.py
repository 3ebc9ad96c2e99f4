"""Timing one estimator's fit with pytest-benchmark the way every suite here does it."""

from __future__ import annotations

from typing import Any

import numpy as np

import irtbench
from irtbench.data import validate_responses
from irtbench.harness import estimator_options


def benchmark_fit(benchmark: Any, name: str, responses: np.ndarray, *, device: str = "cpu",
                  rounds: int = 3, **options: Any) -> irtbench.Fit:
    """Time ``name``'s :meth:`~irtbench.Estimator.run` on ``responses`` with ``benchmark``.

    Only ``run`` is timed: the data transfer (``prepare``) and JIT compilation (``compile``)
    happen in pytest-benchmark's untimed ``setup``; one warm-up round precedes ``rounds``
    timed ones. Returns the fit of the last round with ``seconds`` = the median round.
    """
    estimator = irtbench.get_estimator(name)(**estimator_options(name, options, device))
    responses = validate_responses(responses)
    resolved = estimator.resolved_options()
    prepared = []

    def setup():
        problem = estimator.prepare(responses, resolved)
        prepared.append((problem, estimator.compile(problem)))
        return (problem,), {}

    result = benchmark.pedantic(estimator.run, setup=setup, warmup_rounds=1, rounds=rounds)
    problem, compile_seconds = prepared[-1][0], max(c for _, c in prepared)
    return estimator.finish(responses, resolved, problem, result,
                            benchmark.stats.stats.median, compile_seconds)

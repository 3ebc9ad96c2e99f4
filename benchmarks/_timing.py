"""Timing one estimator's fit with pytest-benchmark the way every suite here does it."""

from __future__ import annotations

import time

import numpy as np

import irtbench
from irtbench.harness import estimator_options
from irtbench.threads import held_to


def benchmark_fit(benchmark: object, name: str, responses: np.ndarray, *, device: str = "cpu",
                  rounds: int = 3, threads: str | int | None = "auto",
                  **options: object) -> irtbench.Fit:
    """Time ``name``'s fit of ``responses`` with ``benchmark``, on the clock of
    :meth:`irtbench.Estimator.fit`: pytest-benchmark times :meth:`~irtbench.Estimator.run`
    (host matrix in, every estimate and SE back on the host) while the load (the one pass over
    the responses, the extremes, the set-up) and JIT compilation
    (:meth:`~irtbench.Estimator.prepare`) happen in its ``setup``, the load timed there
    (``benchmark.extra_info["load_seconds"]``, the median) and added, as ``Fit.seconds`` adds
    it; one warm-up round precedes ``rounds`` timed ones. Returns the fit of the last round
    with ``seconds`` = the median run + the median load (of the rounds that ran, when
    pytest-benchmark is switched off, as it is under ``--benchmark-disable`` and
    pytest-xdist). Every round runs under the
    sweep's thread policy (:func:`irtbench.threads.held_to`: ``threads`` auto or a number,
    pinned); ``benchmark.extra_info["threads"]`` records the count."""
    estimator = irtbench.get_estimator(name)(**estimator_options(name, options, device))
    prepared, seconds = [], []

    def setup():
        prepared.append(estimator.prepare(responses))
        return (prepared[-1].state,), {}

    def run(state):  # the same clock again, for when pytest-benchmark is switched off
        start = time.perf_counter()
        result = estimator.run(state)
        seconds.append(time.perf_counter() - start)
        return result

    count = None if threads in (None, "auto") else int(threads)
    with held_to(count) as cores:
        result = benchmark.pedantic(run, setup=setup, warmup_rounds=1, rounds=rounds)
    benchmark.extra_info["threads"] = len(cores)
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable or xdist
    median = stats.stats.median if stats is not None else float(np.median(seconds))
    load = float(np.median([p.load_seconds for p in prepared]))
    benchmark.extra_info["load_seconds"] = load
    return estimator.result_of(prepared[-1], result, median + load)

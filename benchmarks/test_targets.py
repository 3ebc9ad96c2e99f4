"""Speed targets of the classical estimators, measured side by side in one run (not part of the
default test run: ``pytest benchmarks/test_targets.py -s``; see the README).

Every time is ``Fit.seconds``, the one clock of :meth:`irtbench.Estimator.fit`: from the matrix
in host memory to every estimate, SE and diagnostic back in host memory (pytest-benchmark times
:meth:`~irtbench.Estimator.run`, the median of ``--rounds`` rounds after a warm-up round).

* ``jml-newton`` on 10000x1000: at most 0.3 s, at least 200x faster than ``torch-adam``'s 1000
  epochs on the same data (one fit, same clock), with a difficulty CRB ratio no worse;
* ``cml`` on 10000x1000: at most 0.4 s; on 1000x100 at least 50x faster than psychotools'
  ``raschmodel()`` (timed by ``benchmarks/r_reference/time_cml.R`` when Rscript with psychotools
  and eRm is installed), with the same estimates;
* ``mml-em`` on 10000x1000: at most 1.5 s;
* a sweep cell's first timed fit is warm: after :meth:`~irtbench.Estimator.warm_up` on the
  cell's data, the first fit of a fresh estimator is at most 20% slower than the median of
  repeats.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _timing import benchmark_fit

import irtbench

R_SCRIPT = Path(__file__).parent / "r_reference" / "time_cml.R"


@pytest.fixture(scope="module")
def large():
    return irtbench.simulate(10000, 1000, seed=0)


def report(benchmark, fit: irtbench.Fit) -> None:
    benchmark.extra_info.update(seconds=fit.seconds, compute_seconds=fit.compute_seconds,
                                n_iter=fit.n_iter)
    print(f"\n{fit.estimator} {fit.seconds:.3f} s end to end, {fit.compute_seconds:.3f} s of "
          f"iterations ({fit.n_iter})")


def test_jml_newton_10000x1000_against_the_reference(benchmark, request, large):
    newton = benchmark_fit(benchmark, "jml-newton", large.responses,
                           rounds=request.config.getoption("rounds"))
    report(benchmark, newton)
    adam = irtbench.fit(large.responses, "torch-adam", device="cpu")  # one fit: minutes
    ratios = {name: irtbench.recovery(fit, large)["crb_ratio_difficulty"]
              for name, fit in (("jml-newton", newton), ("torch-adam", adam))}
    benchmark.extra_info.update(torch_adam_seconds=adam.seconds,
                                speedup=adam.seconds / newton.seconds,
                                crb_ratio_difficulty=ratios)
    print(f"torch-adam {adam.seconds:.1f} s, speed-up {adam.seconds / newton.seconds:.0f}x, "
          f"difficulty CRB ratios {ratios}")
    assert newton.seconds <= 0.3
    assert adam.seconds / newton.seconds >= 200
    assert ratios["jml-newton"] <= ratios["torch-adam"] + 1e-3


def test_cml_10000x1000(benchmark, request, large):
    fit = benchmark_fit(benchmark, "cml", large.responses,
                        rounds=request.config.getoption("rounds"))
    report(benchmark, fit)
    assert fit.diagnostics["converged"] and fit.seconds <= 0.4


def test_mml_em_10000x1000(benchmark, request, large):
    fit = benchmark_fit(benchmark, "mml-em", large.responses,
                        rounds=request.config.getoption("rounds"))
    report(benchmark, fit)
    assert fit.diagnostics["converged"] and fit.seconds <= 1.5


@pytest.mark.parametrize("name", ["jml-newton", "cml", "mml-em"])
def test_the_first_timed_fit_of_a_cell_is_warm(name, large):
    """What the harness does for a cell: a fresh estimator, warmed up on the cell's data, then
    one timed fit; compared with the median of five repeats of the same fit."""
    estimator = irtbench.get_estimator(name)(device="cpu")
    estimator.warm_up(large.responses)
    first = estimator.fit(large.responses).seconds
    repeats = statistics.median(estimator.fit(large.responses).seconds for _ in range(5))
    print(f"\n{name}: first {first:.3f} s, repeats {repeats:.3f} s ({first / repeats:.2f}x)")
    assert first <= 1.2 * repeats


def r_times(responses: np.ndarray, folder: Path) -> dict[str, float]:
    """psychotools' and eRm's seconds on ``responses`` (``time_cml.R``), or skip."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed (apt-get install r-cran-psychotools r-cran-erm)")
    path = folder / "sim_1000x100.csv"
    columns = [f"q{j + 1}" for j in range(responses.shape[1])]
    pd.DataFrame(responses.astype(np.int8), columns=columns).to_csv(path, index=False)
    done = subprocess.run(["Rscript", str(R_SCRIPT), str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"time_cml.R failed (are psychotools and eRm installed?): {done.stderr[-300:]}")
    found = re.search(r"raschmodel ([\d.]+) s, eRm::RM ([\d.]+) s", done.stdout)
    return {"psychotools": float(found.group(1)), "eRm": float(found.group(2))}


def test_cml_1000x100_against_psychotools(benchmark, request, tmp_path):
    data = irtbench.simulate(1000, 100, seed=0)
    fit = benchmark_fit(benchmark, "cml", data.responses,
                        rounds=max(5, request.config.getoption("rounds")))
    seconds = fit.seconds
    r = r_times(data.responses, tmp_path)
    benchmark.extra_info.update(cml_seconds=seconds, r_seconds=r,
                                speedup=r["psychotools"] / seconds)
    print(f"\ncml {seconds * 1000:.1f} ms, psychotools {r['psychotools']:.2f} s, "
          f"eRm {r['eRm']:.2f} s: {r['psychotools'] / seconds:.0f}x faster than psychotools")
    assert r["psychotools"] / seconds >= 50

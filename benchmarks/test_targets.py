"""Speed targets of the classical estimators, measured side by side in one run (not part of the
default test run: ``pytest benchmarks/test_targets.py``; see the README).

* ``jml-newton`` on 10000x1000: at most 0.5 s, at least 200x faster than ``torch-adam``'s 1000
  epochs on the same data, with a difficulty CRB ratio no worse than the reference's;
* ``cml`` on 1000x100: at least 50x faster than psychotools' ``raschmodel()`` (timed here by
  ``benchmarks/r_reference/time_cml.R`` when Rscript with psychotools and eRm is installed),
  with the same estimates;
* ``mml-em`` on 10000x1000: within a few (5) seconds.

pytest-benchmark times the fast estimator of each test (only its ``run``; median of
``--rounds`` rounds after a warm-up); the slow comparison (torch-adam's one fit, R) is timed
once beside it and recorded in ``extra_info`` of the saved benchmark JSON with the ratio.
"""

from __future__ import annotations

import re
import shutil
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


def test_jml_newton_10000x1000_against_the_reference(benchmark, request, large):
    newton = benchmark_fit(benchmark, "jml-newton", large.responses,
                           rounds=request.config.getoption("rounds"))
    newton_seconds = newton.seconds
    adam = irtbench.fit(large.responses, "torch-adam", device="cpu")  # one fit: about 2 min
    ratios = {name: irtbench.recovery(fit, large)["crb_ratio_difficulty"]
              for name, fit in (("jml-newton", newton), ("torch-adam", adam))}
    benchmark.extra_info.update(jml_newton_seconds=newton_seconds, torch_adam_seconds=adam.seconds,
                                speedup=adam.seconds / newton_seconds,
                                crb_ratio_difficulty=ratios)
    print(f"\njml-newton {newton_seconds:.3f} s, torch-adam {adam.seconds:.1f} s, "
          f"speed-up {adam.seconds / newton_seconds:.0f}x, difficulty CRB ratios {ratios}")
    assert newton_seconds <= 0.5
    assert adam.seconds / newton_seconds >= 200
    assert ratios["jml-newton"] <= ratios["torch-adam"] + 1e-3


def test_mml_em_10000x1000_within_a_few_seconds(benchmark, request, large):
    fit = benchmark_fit(benchmark, "mml-em", large.responses,
                        rounds=request.config.getoption("rounds"))
    seconds = fit.seconds
    benchmark.extra_info.update(mml_em_seconds=seconds, n_iter=fit.n_iter,
                                converged=fit.diagnostics["converged"])
    print(f"\nmml-em {seconds:.2f} s, {fit.n_iter} EM iterations")
    assert fit.diagnostics["converged"] and seconds <= 5.0


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

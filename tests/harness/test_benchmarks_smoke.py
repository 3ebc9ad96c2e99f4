"""One tiny case of the pytest-benchmark suites, so that they cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed (irtbench[bench])")

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_suite_runs_one_tiny_case(tmp_path):
    report = tmp_path / "bench.json"
    # a clean environment for the inner run: under pytest-xdist the outer run's worker variables
    # would make pytest-benchmark switch itself off in the inner one
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_fit_speed.py", "-q", "-p", "no:cacheprovider",
         "--sizes", "40x10", "--estimators", "torch-adam,jax-adam", "--rounds", "1",
         f"--benchmark-json={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    benchmarks = json.loads(report.read_text())["benchmarks"]
    assert {b["extra_info"]["estimator"] for b in benchmarks} == {"torch-adam", "jax-adam"}
    for bench in benchmarks:
        assert bench["group"] == "40x10"
        info = bench["extra_info"]
        assert info["responses_per_second"] > 0 and info["n_iter"] == 1000
        assert 0 < info["rmse_difficulty"] < 3 and info["compile_seconds"] >= 0
    machine = json.loads(report.read_text())["machine_info"]
    assert machine["irtbench"]["torch"] is not None


def test_gpu_scale_script_runs_on_the_cpu(tmp_path):
    """The GPU throughput script, at a tiny size on the CPU: one row per (estimator, model) of
    its plan, all ok, with a bandwidth bound and a ratio to it, and at the comparison size the
    fit against the closed form and jml-newton's optimum."""
    import csv

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    import gpu_scale

    assert gpu_scale.main(["--device", "cpu", "--sizes", "300x40", "--llm-sizes", "30x200",
                           "--epochs", "3", "--compare-at", "12000", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "scale.csv")))
    assert [(r["estimator"], r["model"]) for r in rows] == [
        (name, model) for name, model, _, _ in gpu_scale.PLAN + gpu_scale.LLM_PLAN]
    assert all(r["status"] == "ok" and float(r["ratio_to_bound"]) > 0 for r in rows)
    assert float(rows[0]["max_diff_closed"]) < 1e-5 and float(rows[0]["rmse_to_optimum"]) > 0

"""What a fit costs besides its iterations, on this machine's CPU: the suite's own host passes.

    python benchmarks/host_overhead.py --size 1e6x1000 --out results/targets/host_overhead_cpu.csv

For a compact (int8) Rasch matrix of ``--size`` (default 10^9 responses), each estimator is
warmed up on the same data, then timed ``--rounds`` times (median, with min and max), each in
a fresh child process that holds only the int8 matrix: the wall time of ``fit()``, its
``Fit.seconds`` and ``compute_seconds``, ``wall - compute`` (the host-side work: the pass over
the matrix, the extremes, the transfer, the standard errors), and the child's peak resident
memory beyond what importing the frameworks and holding the matrix took. Adam fits run
``--epochs`` epochs (5: the iterations are not what this measures). Targets (issue 24): at
10^9, wall - compute <= 1.5 s for torch-adam and jax-adam; jml-newton's whole call <= 1.2 s;
mml-em's (Rasch) <= 2.5 s; the peak <= the int8 matrix + 0.5 GB beyond the imports.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ESTIMATORS = ("torch-adam", "jax-adam", "jml-newton", "mml-em")


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(spec: dict) -> dict:
    """One fit in this process: import, make the matrix, note the peak, warm up, fit."""
    import numpy as np

    import irtbench
    import jax  # noqa: F401 - imported before the baseline peak, like every framework
    import torch  # noqa: F401

    n, m = spec["shape"]
    rng = np.random.default_rng(0)
    codes = np.empty((n, m), dtype=np.int8)
    skill, difficulty = rng.normal(size=n).astype(np.float32), rng.normal(size=m)
    step = max(1, (1 << 24) // m)
    for start in range(0, n, step):  # simulated a block at a time: no float matrix held
        block = slice(start, min(start + step, n))
        p = 1.0 / (1.0 + np.exp(difficulty[None, :] - skill[block, None]))
        codes[block] = rng.random(p.shape, dtype=np.float32) < p
    options = {"epochs": spec["epochs"]} if "adam" in spec["estimator"] else {}
    estimator = irtbench.get_estimator(spec["estimator"])(device="cpu", **options)
    estimator.warm_up(codes)  # the same shapes and code paths, a few iterations
    baseline = peak_rss_bytes()
    start = time.perf_counter()
    fit = estimator.fit(codes)
    wall = time.perf_counter() - start
    return {"wall": wall, "seconds": fit.seconds, "compute": fit.compute_seconds,
            "compile": fit.compile_seconds, "peak_beyond_gb": (peak_rss_bytes() - baseline) / 1e9,
            "data_gb": codes.nbytes / 1e9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1e6x1000")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/targets/host_overhead_cpu.csv"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    from irtbench.responses import parse_size

    shape = parse_size(args.size)
    rows = []
    load = os.getloadavg()
    for name in args.estimators.split(","):
        runs = []
        for _ in range(args.rounds):
            spec = {"estimator": name, "shape": shape, "epochs": args.epochs}
            done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                  capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = {"estimator": name, "size": args.size, "epochs": args.epochs,
               "rounds": args.rounds, "loadavg_before": round(load[0], 2)}
        for key in ("wall", "seconds", "compute", "compile", "peak_beyond_gb"):
            values = [run[key] for run in runs]
            row[key] = statistics.median(values)
            row[f"{key}_min"], row[f"{key}_max"] = min(values), max(values)
        row["wall_minus_compute"] = statistics.median(run["wall"] - run["compute"] for run in runs)
        host = [run["wall"] - run["compute"] - run["compile"] for run in runs]
        row["host_seconds"] = statistics.median(host)  # wall - compute - compile
        row["data_gb"] = runs[0]["data_gb"]
        rows.append(row)
        print({k: row[k] for k in ("estimator", "wall", "compute", "host_seconds",
                                   "peak_beyond_gb")}, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame["loadavg_after"] = round(os.getloadavg()[0], 2)
    frame.to_csv(args.out, index=False)
    print(frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

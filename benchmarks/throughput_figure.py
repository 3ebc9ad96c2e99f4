"""The throughput figure: responses per second against responses, CPU and GPU, with each
device's bandwidth bound (``irtbench.plots.plot_throughput``), from ``gpu_scale.py`` results
(``scale.csv``, GPU or CPU rows with their measured copy bandwidth) and a sweep's
``results.csv`` (CPU rows of the Rasch model; the CPU's bound from a copy measured here).

    python benchmarks/throughput_figure.py --scale results/gpu-h200-2026-12-04/scale.csv \\
        --sweep results/baseline/results.csv --out results/throughput.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from irtbench.plots import plot_throughput


def cpu_copy_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes read + written per second by a numpy copy on this CPU (best of 5)."""
    source = np.ones(nbytes, dtype=np.uint8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


def scale_rows(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    table = table[table.status == "ok"]
    if "model" in table:
        table = table[table.model == "rasch"]
    device = table.device.astype(str).str.replace(r":\d+$", "", regex=True)
    return pd.DataFrame({"estimator": table.estimator, "device": device,
                         "responses": table.responses,
                         "responses_per_second": table.responses_per_second,
                         "bound_rate": table.copy_bytes_per_second / 1.0})


def sweep_rows(path: Path, bandwidth: float) -> pd.DataFrame:
    table = pd.read_csv(path)
    table = table[(table.status == "ok") & (table.model == "rasch") & (table.missing == 0)]
    table = table[table.n_iter > 1]  # iterative fits (a rate per iteration)
    grouped = (table.assign(responses=table.n_students * table.n_questions)
               .groupby(["estimator", "device", "responses"], as_index=False)
               .responses_per_second.median())
    return grouped.assign(bound_rate=bandwidth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=Path, action="append", default=[])
    parser.add_argument("--sweep", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path("results/throughput.png"))
    args = parser.parse_args(argv)
    parts = [scale_rows(path) for path in args.scale]
    if args.sweep:
        bandwidth = cpu_copy_bandwidth()
        print(f"CPU copy bandwidth: {bandwidth / 1e9:.1f} GB/s (read + write)")
        parts += [sweep_rows(path, bandwidth) for path in args.sweep]
    rows = pd.concat(parts, ignore_index=True)
    written = plot_throughput(rows, args.out.with_suffix(""), (args.out.suffix[1:] or "png",))
    rows.to_csv(args.out.with_suffix(".csv"), index=False)
    print("wrote", *written)
    return 0


if __name__ == "__main__":
    sys.exit(main())

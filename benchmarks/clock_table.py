"""What the one clock reports against what a caller waits for, for every installed estimator.

For each estimator: a warm-up on the data (as a sweep cell does), then one call of
``Estimator.fit`` timed from outside, next to the ``seconds``, ``compute_seconds`` and
``compile_seconds`` that the fit reports. Writes a CSV and prints a Markdown table::

    python benchmarks/clock_table.py --size 10000x1000 --out results/targets/clock_10000x1000.csv

Estimators that skip the size (NUTS beyond its ``max_responses``) are listed as skipped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import irtbench
from irtbench.harness import estimator_options
from irtbench.responses import parse_size


def measure(name: str, data: irtbench.Dataset, device: str) -> dict[str, object]:
    estimator = irtbench.get_estimator(name)(**estimator_options(name, {}, device))
    skip, why = estimator.skip(*data.shape, device)
    if skip:
        return {"estimator": name, "status": f"skipped: {why}"}
    estimator.warm_up(data.responses)
    start = time.perf_counter()
    fit = estimator.fit(data.responses)
    wall = time.perf_counter() - start
    return {"estimator": name, "status": "ok", "wall_seconds": wall, "seconds": fit.seconds,
            "compute_seconds": fit.compute_seconds, "compile_seconds": fit.compile_seconds,
            "outside_seconds": wall - fit.seconds - fit.compile_seconds, "n_iter": fit.n_iter}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10000x1000", help="STUDENTSxQUESTIONS (%(default)s)")
    parser.add_argument("--device", default="cpu", help="device of every fit (%(default)s)")
    parser.add_argument("--estimators", help="comma-separated names (default: every installed)")
    parser.add_argument("--out", type=Path, help="CSV file to write")
    args = parser.parse_args(argv)
    data = irtbench.simulate(*parse_size(args.size), seed=0)
    names = args.estimators.split(",") if args.estimators else irtbench.estimators(True)
    rows = []
    for name in names:
        rows.append(measure(name, data, args.device))
        print(rows[-1], flush=True)
        if args.out is not None:
            pd.DataFrame(rows).to_csv(args.out, index=False)
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f")
          if _has_tabulate() else pd.DataFrame(rows).to_string(index=False))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())

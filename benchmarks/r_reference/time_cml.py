"""Time irtbench's ``cml`` against R's psychotools and eRm on the same simulated data.

Usage (from the repository root, with Debian's r-cran-psychotools and r-cran-erm installed)::

    python benchmarks/r_reference/time_cml.py [--size 1000x100] [--seed 0]

Writes the simulated matrix to a temporary CSV, runs ``time_cml.R`` on it, then fits ``cml``
on the CPU (median of 5 fits after a warm-up) and prints both, and the largest difference
between irtbench's and psychotools' centred difficulties is checked by the tests' fixtures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench.responses import parse_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1000x100", type=parse_size)
    parser.add_argument("--seed", default=0, type=int)
    args = parser.parse_args()
    data = irtbench.simulate(*args.size, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"sim_{args.size[0]}x{args.size[1]}.csv"
        columns = [f"q{j + 1}" for j in range(args.size[1])]
        pd.DataFrame(data.responses.astype(np.int8), columns=columns).to_csv(path, index=False)
        script = Path(__file__).with_name("time_cml.R")
        print(subprocess.run(["Rscript", str(script), str(path)], check=True,
                             capture_output=True, text=True).stdout, end="")
    irtbench.fit(data.responses, "cml", device="cpu")  # warm-up
    seconds = [irtbench.fit(data.responses, "cml", device="cpu").seconds for _ in range(5)]
    print(f"irtbench cml {statistics.median(seconds):.4f} s (median of 5, CPU)")


if __name__ == "__main__":
    main()

"""Print how far irtbench's cml and mml-em are from R's stored estimates (tests/data/r_*.csv).

Usage (from the repository root): ``python benchmarks/r_reference/compare_fixtures.py``.
The tests assert the bounds (cml 1e-3, mml-em 2e-2); this prints the measured gaps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import irtbench

DATA = Path(__file__).parents[2] / "tests" / "data"


def main() -> None:
    for name in ("verbagg", "sim_500x20"):
        responses = pd.read_csv(DATA / f"{name}.csv").to_numpy(dtype=np.float32)
        r = pd.read_csv(DATA / f"r_{name}.csv")
        cml = irtbench.fit(responses, "cml", device="cpu").difficulty
        mml = irtbench.fit(responses, "mml-em", device="cpu")
        gap = lambda ours, theirs: float(np.abs(ours - ours.mean() - theirs).max())  # noqa: E731
        print(f"{name}: cml vs eRm {gap(cml, r.erm_cml):.2g}, vs psychotools "
              f"{gap(cml, r.psychotools_cml):.2g} (eRm vs psychotools "
              f"{np.abs(r.erm_cml - r.psychotools_cml).max():.2g}); mml-em vs lme4 "
              f"{gap(mml.difficulty, r.lme4_mml):.2g}, sigma {mml.diagnostics['sigma']:.6f} vs "
              f"{r.lme4_sigma[0]:.6f}")


if __name__ == "__main__":
    main()

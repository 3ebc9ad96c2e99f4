"""The 3PL numbers the README and the closing note quote, from one command::

    python benchmarks/threepl_accuracy.py > results/targets/threepl_accuracy_cpu.txt

1. the bound's computation: the Monte Carlo marginal information (with its inverse-Wishart
   correction) against the exact one by enumeration, at 10 items, as bounds;
2. ``mml-em``'s 3PL against the independent MAP fit written in ``tests/models/test_3pl.py`` (scipy's
   L-BFGS-B on the quadrature marginal posterior with the same Beta(6, 16) prior): largest gaps
   at 1500 x 6, default tolerance;
3. RMSE / bound (the van Trees bound of :mod:`irtbench.models.threepl`) of difficulties,
   discriminations and floors at 10000 x 30 for ``mml-em`` and ``jax-adam``, per data set
   (seeds 0-4) and pooled over their 150 items, with the fit times (2 threads, this CPU).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import irtbench
from irtbench.metrics import aligned_errors_by_part
from irtbench.models import extremes
from irtbench.models.asymptotic import Curves
from irtbench.models.twopl import curves_bounds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_3pl import map_3pl_by_scipy  # noqa: E402

PARTS = ("difficulty", "discrimination", "guessing")


def bound_check() -> None:
    data = irtbench.simulate(10, 10, seed=5, model="3pl")
    curves = Curves(data.discrimination, data.difficulty, data.guessing)
    exact = curves_bounds(curves, 10000)
    from irtbench.models import twopl

    saved, twopl.ENUMERATE_UP_TO = twopl.ENUMERATE_UP_TO, 0  # force the Monte Carlo path
    try:
        sampled = curves_bounds(curves, 10000)
    finally:
        twopl.ENUMERATE_UP_TO = saved
    ratio = sampled / exact
    for name, row in zip(("a", "b", "c"), ratio):
        print(f"bound check, 10 items: Monte Carlo / exact bound of {name}: median "
              f"{np.median(row):.3f}, range {row.min():.3f}-{row.max():.3f}")


def scipy_gap() -> None:
    data = irtbench.simulate(1500, 6, seed=3, model="3pl")
    fit = irtbench.fit(data.responses, "mml-em", device="cpu", model="3pl")
    a, b, c, log_posterior = map_3pl_by_scipy(data.responses)
    print(f"mml-em vs scipy at 1500x6 (default tol): max gap a "
          f"{np.abs(fit.discrimination - a).max():.2g}, b {np.abs(fit.difficulty - b).max():.2g}"
          f", c {np.abs(fit.guessing - c).max():.2g}; log-posterior "
          f"{fit.diagnostics['log_posterior']:.5f} vs {log_posterior:.5f}; {fit.n_iter} EM updates")


def bound_ratios(name: str, options: dict) -> None:
    squares: dict[str, list[tuple[float, float]]] = {part: [] for part in PARTS}
    for seed in range(5):
        data = irtbench.simulate(10000, 30, seed=seed, model="3pl")
        start = time.perf_counter()
        fit = irtbench.fit(data.responses, name, device="cpu", model="3pl", **options)
        seconds = time.perf_counter() - start
        masks = extremes(data.responses)
        errors = aligned_errors_by_part(fit, data, masks)
        keep = ~masks[1]
        bounds = dict(zip(("discrimination", "difficulty", "guessing"), curves_bounds(
            Curves(data.discrimination, data.difficulty, data.guessing), 10000, aligned=keep)))
        metrics = irtbench.recovery(fit, data)
        print(f"{name} 10000x30 seed {seed}: fit {seconds:.1f} s ({fit.n_iter} iterations, "
              f"runaway {fit.diagnostics.get('n_runaway')}); RMSE/bound "
              + ", ".join(f"{part} {metrics[f'crb_ratio_{part}']:.2f}" for part in PARTS))
        for part in PARTS:
            squares[part] += list(zip(errors[part][keep] ** 2, bounds[part][keep] ** 2))
    pooled = {part: np.sqrt(np.mean([e for e, _ in v]) / np.mean([b for _, b in v]))
              for part, v in squares.items()}
    print(f"{name} 10000x30 pooled over 5 seeds x 30 items: RMSE/bound "
          + ", ".join(f"{part} {ratio:.2f}" for part, ratio in pooled.items()))


if __name__ == "__main__":
    print(f"load average at the start: {Path('/proc/loadavg').read_text().split()[:3]}")
    bound_check()
    scipy_gap()
    bound_ratios("mml-em", {})
    bound_ratios("jax-adam", {})
    print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")

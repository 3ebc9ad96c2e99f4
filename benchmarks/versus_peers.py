"""irtbench's estimators against the field's packages (``irtbench[peers]``), side by side in one
run, for the README's "versus other packages" table.

For each model and size: data simulated once (Rasch: skills N(0, 1.5^2), the model every
marginal method here assumes, difficulties Uniform(-3, 3); 2PL: ``simulate(model="2pl")``);
then each method in turn, interleaved over ``--rounds`` rounds, timed by the suite's clock
(``Fit.seconds``: host matrix in, every estimate and SE out) after a warm-up, with its recovery
(after alignment; RMSE / Cramér–Rao bound) and its *accuracy*: the largest distance of its item
parameters from the exact marginal ML estimate (``mml-em`` with a tolerance of 1e-10; for the
2PL on 201 nodes, whose integral is converged to 1e-9), so "equal accuracy" can be read off.
Rows are written as they finish::

    python benchmarks/versus_peers.py --out results/targets/versus_peers_cpu.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench.responses import parse_size

#: (label, estimator, options) per model: irtbench's own first, then the peers
METHODS = {
    "rasch": [
        ("mml-em", "mml-em", {}),
        ("cml", "cml", {}),
        ("mirt-em", "mirt-em", {}),
        ("girth-mml", "girth-mml", {}),
        ("girth-cml", "girth-cml", {}),
    ],
    "2pl": [
        ("mml-em", "mml-em", {}),
        ("mirt-em (21 nodes, mirt's default)", "mirt-em", {"nodes": 21}),
        ("mirt-em", "mirt-em", {}),
        ("mirt-em (121 nodes, tol 1e-6)", "mirt-em", {"nodes": 121, "tol": 1e-6}),
        ("girth-mml", "girth-mml", {}),
    ],
}


def simulate(model: str, size: str) -> irtbench.Dataset:
    n_students, n_questions = parse_size(size)
    if model == "rasch":
        return irtbench.simulate(n_students, n_questions, seed=0, skill_distribution="normal",
                                 skill_scale=1.5)
    return irtbench.simulate(n_students, n_questions, seed=0, model="2pl")


def exact(data: irtbench.Dataset) -> irtbench.Fit:
    """The marginal ML estimate to which the accuracy column measures the distance."""
    options = {"nodes": 201} if data.model == "2pl" else {}
    return irtbench.fit(data.responses, "mml-em", device="cpu", model=data.model, tol=1e-10,
                        max_iter=10000, **options)


def accuracy(fit: irtbench.Fit, reference: irtbench.Fit) -> float:
    """Largest distance of the item parameters from the reference (difficulties centred under
    the Rasch model, where marginal and conditional fits have different origins)."""
    difficulty, other = fit.difficulty, reference.difficulty
    if fit.model == "rasch":
        difficulty, other = difficulty - difficulty.mean(), other - other.mean()
    gaps = [np.abs(difficulty - other).max()]
    if fit.discrimination is not None:
        gaps.append(np.abs(fit.discrimination - reference.discrimination).max())
    return float(max(gaps))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000x100,10000x100",
                        help="comma-separated sizes (%(default)s)")
    parser.add_argument("--models", default="rasch,2pl", help="comma-separated (%(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (%(default)s)")
    parser.add_argument("--out", type=Path, help="CSV file, written row by row")
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            data = simulate(model, size)
            reference = exact(data)
            methods = [(label, irtbench.get_estimator(name)(model=model, **options))
                       for label, name, options in METHODS[model]]
            methods = [(label, e) for label, e in methods if e.available()]
            for _, estimator in methods:
                estimator.warm_up(data.responses)
            for round_ in range(args.rounds):
                for label, estimator in methods:
                    start = time.perf_counter()
                    fit = estimator.fit(data.responses)
                    wall = time.perf_counter() - start
                    metrics = irtbench.recovery(fit, data)
                    rows.append({
                        "model": model, "size": size, "round": round_, "method": label,
                        "estimator": estimator.name, "seconds": fit.seconds, "wall_seconds": wall,
                        "accuracy": accuracy(fit, reference),
                        **{k: metrics[k] for k in ("rmse_difficulty", "rmse_discrimination",
                                                   "crb_ratio_difficulty",
                                                   "crb_ratio_discrimination", "rmse_skill")},
                        "n_iter": fit.n_iter})
                    print(rows[-1], flush=True)
                    if args.out is not None:
                        pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows).groupby(["model", "size", "method"], sort=False).agg(
        seconds=("seconds", "median"), accuracy=("accuracy", "max"),
        rmse_difficulty=("rmse_difficulty", "mean"),
        crb_ratio_difficulty=("crb_ratio_difficulty", "mean"),
        crb_ratio_discrimination=("crb_ratio_discrimination", "mean"))
    print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""irtbench's estimators against the field's packages (``irtbench[peers]``), side by side in one
run, for the README's "versus other packages" table.

For each model and size: data simulated once (Rasch: skills N(0, 1.5^2), the model every
marginal method here assumes, difficulties Uniform(-3, 3); 2PL: ``simulate(model="2pl")``);
then each method in turn, interleaved over ``--rounds`` rounds, timed by the suite's clock
(``Fit.seconds``: host matrix in, every estimate and SE out) after a warm-up, with its recovery
(after alignment; RMSE / Cramér–Rao bound), the share of the cores' time that other processes
took meanwhile (``contention``, :class:`irtbench.threads.Usage`; a child process's CPU counts
as the fit's), the 1-minute load average after it, and its *accuracy*: the largest distance
of its item parameters from the exact marginal ML estimate (``mml-em`` with a tolerance of 1e-10; for the
2PL on 201 nodes, whose integral is converged to 1e-9), so "equal accuracy" can be read off,
and its *log-likelihood gap* ``ll_gap`` to the exact marginal optimum (:func:`irtbench.gaps.gap`:
the marginal maximum minus the marginal log-likelihood at its items, at N(0, 1) skills or, for
the conditional fits and the Rasch model, at the best normal ones; with ``gap_at`` saying which),
so a user sees how far from that optimum each stops. Rows are written as they finish::

    python benchmarks/versus_peers.py --out results/targets/versus_peers_cpu.csv

``py-irt`` (py-irt's variational 2PL, in the interpreter of its own virtual environment, ``make
py-irt-venv``) joins the 2PL methods when that interpreter is there; its rows also carry its own
clock's parts (``py_irt_train_seconds``: its ``train`` call; ``py_irt_startup_seconds``: the
interpreter's start and imports), ``seconds`` being all of it. At the LLM shape the slow methods
can be left out and py-irt's epochs lowered (an epoch takes about 0.34 s there on 2 idle
cores, so its default 2000 would take 12 minutes)::

    python benchmarks/versus_peers.py --models 2pl --sizes 300x28659 --rounds 1 \
        --methods mml-em,py-irt --py-irt-epochs 1500 \
        --out results/targets/versus_peers_pyirt_300x28659.csv

``theta-irt`` (theta's JAX MML-EM, which switches JAX to float64 on import, so it runs in a
child interpreter: :mod:`irtbench.estimators.theta_irt`) joins both models when theta is
installed (``irtbench[theta]``). Its ``seconds`` include the child's start, JAX's import and
the JIT compilation of a fresh process; its rows also carry ``theta_fit_seconds`` (theta's fit
alone) and, for the ``warm`` method (the child fits twice and keeps the second),
``theta_fit_seconds`` is theta's warm time, what its README reports, beside
``theta_first_fit_seconds``. At the shapes theta advertises and at long tests::

    python benchmarks/versus_peers.py --models 2pl --rounds 1 \
        --sizes 1000x50,50000x100,10000x1000,300x28659 \
        --methods "mml-em,theta-irt,theta-irt (warm: the second of two fits)" \
        --out results/targets/versus_peers_theta.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench import gaps
from irtbench.responses import parse_size
from irtbench.threads import Usage, allowed_cores

#: (label, estimator, options) per model: irtbench's own first, then the peers
METHODS = {
    "rasch": [
        ("mml-em", "mml-em", {}),
        ("cml", "cml", {}),
        ("mirt-em", "mirt-em", {}),
        ("girth-mml", "girth-mml", {}),
        ("girth-cml", "girth-cml", {}),
        ("theta-irt", "theta-irt", {}),
    ],
    "2pl": [
        ("mml-em", "mml-em", {}),
        ("mirt-em (21 nodes, mirt's default)", "mirt-em", {"nodes": 21}),
        ("mirt-em", "mirt-em", {}),
        ("mirt-em (121 nodes; tol 1e-6)", "mirt-em", {"nodes": 121, "tol": 1e-6}),
        ("girth-mml", "girth-mml", {}),
        ("py-irt", "py-irt", {}),
        ("py-irt (hierarchical priors)", "py-irt", {"priors": "hierarchical"}),
        ("theta-irt", "theta-irt", {}),
        ("theta-irt (warm: the second of two fits)", "theta-irt", {"warm": True}),
    ],
}
#: the diagnostics of a method's own clock that its rows carry (NaN for the others)
CLOCK_PARTS = ("py_irt_train_seconds", "py_irt_startup_seconds", "theta_startup_seconds",
               "theta_first_fit_seconds", "theta_fit_seconds", "theta_se_seconds")


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
    the Rasch model, where marginal and conditional fits have different origins), over the
    items whose reference estimate did not run away (300 students leave some 2PL items
    unidentified: their ML estimates are no target)."""
    difficulty, other = fit.difficulty, reference.difficulty
    if fit.model == "rasch":
        difficulty, other = difficulty - difficulty.mean(), other - other.mean()
    keep = (np.ones(len(other), dtype=bool) if reference.runaway_questions is None
            else ~reference.runaway_questions)
    gaps = [np.abs(difficulty - other)[keep].max()]
    if fit.discrimination is not None:
        gaps.append(np.abs(fit.discrimination - reference.discrimination)[keep].max())
    return float(max(gaps))


def chosen_methods(model: str, methods: str | None, py_irt_epochs: int | None
                   ) -> list[tuple[str, str, dict]]:
    """``METHODS[model]``, only those labelled in ``methods`` (comma-separated) if given, with
    py-irt's epochs set (and said in its label) if given."""
    rows = METHODS[model]
    if methods is not None:
        wanted = methods.split(",")
        labels = list(dict.fromkeys(label for every in METHODS.values() for label, _, _ in every))
        unknown = sorted(set(wanted) - set(labels))
        if unknown:
            raise SystemExit(f"--methods: unknown {', '.join(unknown)}; the labels are: "
                             + "; ".join(labels))
        rows = [row for row in rows if row[0] in wanted]
    if py_irt_epochs is not None:
        rows = [(f"{label} ({py_irt_epochs} epochs)", name, {**options, "epochs": py_irt_epochs})
                if name == "py-irt" else (label, name, options)
                for label, name, options in rows]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000x100,10000x100",
                        help="comma-separated sizes (%(default)s)")
    parser.add_argument("--models", default="rasch,2pl", help="comma-separated (%(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (%(default)s)")
    parser.add_argument("--out", type=Path, help="CSV file, written row by row")
    parser.add_argument("--methods", help="comma-separated labels of METHODS to run (all)")
    parser.add_argument("--py-irt-epochs", type=int,
                        help="py-irt's epochs (its own default, 2000)")
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            data = simulate(model, size)
            reference = exact(data)
            maximum = gaps.reference_maximum(data.responses, model)
            methods = [(label, irtbench.get_estimator(name)(model=model, **options))
                       for label, name, options in chosen_methods(model, args.methods,
                                                                  args.py_irt_epochs)]
            for label, estimator in methods:
                if not estimator.available():
                    print(f"{label}: left out, not installed "
                          f"({', '.join(estimator.missing_requirements())}; "
                          f"{estimator.install_command()})", file=sys.stderr)
            methods = [(label, e) for label, e in methods if e.available()]
            for _, estimator in methods:
                estimator.warm_up(data.responses)
            for round_ in range(args.rounds):
                for label, estimator in methods:
                    start = time.perf_counter()
                    with Usage(allowed_cores()) as usage:
                        fit = estimator.fit(data.responses)
                    wall = time.perf_counter() - start
                    metrics = irtbench.recovery(fit, data)
                    found = None if maximum is None else gaps.gap(fit, data.responses, maximum)
                    rows.append({
                        "model": model, "size": size, "round": round_, "method": label,
                        "estimator": estimator.name, "seconds": fit.seconds, "wall_seconds": wall,
                        "accuracy": accuracy(fit, reference),
                        "ll_gap": np.nan if found is None else found.gap,
                        "gap_at": "" if found is None else found.at,
                        **{k: metrics[k] for k in ("rmse_difficulty", "rmse_discrimination",
                                                   "crb_ratio_difficulty",
                                                   "crb_ratio_discrimination", "rmse_skill")},
                        "n_iter": fit.n_iter, "contention": usage.contention,
                        "load_average": os.getloadavg()[0],
                        **{part: fit.diagnostics.get(part, np.nan) for part in CLOCK_PARTS}})
                    print(rows[-1], flush=True)
                    if args.out is not None:
                        pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows).groupby(["model", "size", "method"], sort=False).agg(
        seconds=("seconds", "median"), accuracy=("accuracy", "max"), ll_gap=("ll_gap", "max"),
        rmse_difficulty=("rmse_difficulty", "mean"),
        crb_ratio_difficulty=("crb_ratio_difficulty", "mean"),
        crb_ratio_discrimination=("crb_ratio_discrimination", "mean"))
    print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

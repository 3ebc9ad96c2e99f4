r"""The torch family's methods (irtorch's MML, VAE and JML; torch-measure's MLE, JML, EM and SVI:
:mod:`irtbench.estimators._torch_family`) on the real data sets, each with every model it fits
of the Rasch model, the 2PL and the 3PL: how long each takes, how many iterations, whether the
package says it converged, and **how far from the exact optimum it stops**.

The gap is :mod:`irtbench.gaps`' (its docstring has the definition): the *marginal*
log-likelihood at the exact optimum (``mml-em`` at a tight tolerance, without priors on the
3PL's floors, or the nested 2PL's maximum where higher) minus the marginal log-likelihood at the
method's item estimates,

.. math::

    \Delta = \max_\phi \ell(\phi) - \ell(\hat\phi),

each integral by adaptive Gauss–Hermite quadrature on ``--nodes`` nodes
(:func:`irtbench.gaps.marginal_log_likelihood`), checked against twice as many (the
``integral_check`` column: the largest change of a row's :math:`\ell`). For the methods whose model puts the
skills at N(0, 1) (irtorch's MML and VAE, torch-measure's EM and SVI) :math:`\ell` is taken
there (``gap_at = "N(0,1)"``); the Bayesian ones are held to the same ML optimum, which is not
their own objective: their gap includes what their priors or bound cost. The joint methods'
skill scale is arbitrary, so their items are given the best normal skill distribution
(``gap_at = "best normal"``), as is every Rasch fit (its reference estimates the skills' SD).
The M2PL is left out: no exact marginal optimum in the suite to measure against.

Every fit uses the estimator's defaults, the package's own (each estimator's docstring), and
the suite's clock (``Fit.seconds``: the child interpreter's start and imports included;
``startup_seconds`` and ``fit_seconds`` split it). A failure is a row with its one-line error;
a fit past ``--time-budget`` seconds is stopped (its child killed) and recorded as a timeout::

    make irtorch-venv torch-measure-venv
    python benchmarks/torch_family.py                       # results/peers/real.csv and .md
    python benchmarks/torch_family.py --datasets lsat7 \
        --methods irtorch-mml,torch-measure-mle --out /tmp/peers   # a quick check
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench import gaps
from irtbench.csvio import load_responses
from irtbench.estimators._torch_family import members
from irtbench.harness.limits import FitTimeout, first_line, time_limit
from irtbench.models import get_model

ROOT = Path(__file__).resolve().parents[1]
#: where the data sets are: the shared folder beside the checkout, else the tests' copies
DATA_FOLDERS = (ROOT.parent / "shared" / "data", ROOT / "tests" / "data")
DATASETS = ("lsat7", "spisa", "verbagg")
#: the family, irtorch's then torch-measure's (the registry's)
METHODS = tuple(members())
#: the models with an exact marginal optimum in the suite (mml-em's)
MODELS = ("rasch", "2pl", "3pl")
COLUMNS = ("dataset", "shape", "model", "estimator", "objective", "status", "reason", "seconds",
           "n_iter", "package_converged", "converged", "n_runaway", "loglik", "loglik_reference",
           "ll_gap", "gap_at", "mu", "sigma", "integral_check", "startup_seconds",
           "fit_seconds", "version")


def load(name: str) -> np.ndarray:
    """A data set's responses, from the first folder of :data:`DATA_FOLDERS` that has it."""
    for folder in DATA_FOLDERS:
        if (folder / f"{name}.csv").exists():
            return load_responses(folder / f"{name}.csv").responses
    raise SystemExit(f"{name}.csv is in none of {', '.join(map(str, DATA_FOLDERS))}")


def row_of(fit: irtbench.Fit, responses: np.ndarray, best: float, nodes: int) -> dict:
    """The columns of a fit that finished: its gap (:func:`irtbench.gaps.gap`) and that gap's
    integral on twice the nodes."""
    diagnostics = fit.diagnostics
    prefix = irtbench.get_estimator(fit.estimator).package.module
    found = gaps.gap(fit, responses, best, nodes=nodes)
    finer = gaps.loglik(get_model(fit.model), fit.items, responses, mu=found.mu,
                        sigma=found.sigma, nodes=2 * nodes - 1)
    flag = diagnostics.get("stopped_by_rule")
    return {"status": "ok", "reason": "", "seconds": fit.seconds, "n_iter": fit.n_iter,
            "package_converged": "no rule" if flag is None else ("yes" if flag else "no"),
            "converged": diagnostics.get("converged", ""),
            "n_runaway": diagnostics.get("n_runaway", np.nan), "loglik": found.loglik,
            "loglik_reference": best, "ll_gap": found.gap, "gap_at": found.at, "mu": found.mu,
            "sigma": found.sigma, "integral_check": abs(finer - found.loglik),
            "startup_seconds": diagnostics.get(f"{prefix}_startup_seconds", np.nan),
            "fit_seconds": diagnostics.get(f"{prefix}_fit_seconds", np.nan),
            "version": diagnostics.get(f"{prefix}_version", "")}


def run_one(name: str, model: str, responses: np.ndarray, best: float, nodes: int,
            budget: float, warm_up: bool) -> dict:
    """One method's row: fitted, or its one-line failure, or a timeout."""
    estimator = irtbench.get_estimator(name)(model=model)
    try:
        with time_limit(budget):
            if warm_up:
                estimator.warm_up(responses)
            fit = estimator.fit(responses)
    except FitTimeout as error:
        return {"status": "timeout", "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - a package's failure is a row, the run goes on
        return {"status": "error", "reason": first_line(error)}
    return row_of(fit, responses, best, nodes)


def markdown(table: pd.DataFrame) -> str:
    """The table the docs quote: one section per data set."""
    shown = ["model", "estimator", "objective", "seconds", "n_iter", "package_converged",
             "n_runaway", "ll_gap", "gap_at", "integral_check", "status"]
    lines = ["Log-likelihood gap: mml-em's marginal maximum minus the marginal log-likelihood at "
             "the method's items (at N(0, 1) skills, or at the best normal skills for the joint "
             "methods and the Rasch model; benchmarks/torch_family.py); integral_check: its "
             "change with twice the (adaptive) Gauss-Hermite nodes (large where a slope ran away: the "
             "integral of a near-step curve, and so that gap, is not converged).", ""]
    for dataset, part in table.groupby("dataset", sort=False):
        lines += [f"#### {dataset} ({part['shape'].iloc[0]})", "",
                  "| " + " | ".join(shown) + " | note |",
                  "|" + "---|" * (len(shown) + 1)]
        for row in part.itertuples():
            cells = [_cell(getattr(row, column)) for column in shown]
            lines.append("| " + " | ".join(cells) + f" | {row.reason} |")
        lines.append("")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "–" if np.isnan(value) else f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="(%(default)s)")
    parser.add_argument("--methods", default=",".join(METHODS), help="(%(default)s)")
    parser.add_argument("--models", default=",".join(MODELS), help="(%(default)s)")
    parser.add_argument("--nodes", type=int, default=gaps.DEFAULT_NODES,
                        help="Gauss-Hermite nodes of every integral (%(default)s)")
    parser.add_argument("--time-budget", type=float, default=900.0,
                        help="seconds after which a fit is stopped (%(default)s)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="no warm-up fit before each timed one")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "peers",
                        help="folder of real.csv and real.md (%(default)s)")
    args = parser.parse_args(argv)
    methods, models = args.methods.split(","), args.models.split(",")
    unknown = sorted(set(methods) - set(METHODS)) + sorted(set(models) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown {', '.join(unknown)}: methods are {', '.join(METHODS)}; "
                         f"models {', '.join(MODELS)}")
    for name in methods:
        cls = irtbench.get_estimator(name)
        if not cls.available():
            print(f"{name}: left out ({', '.join(cls.missing_requirements())}); "
                  f"{cls.install_command()}", file=sys.stderr)
    methods = [name for name in methods if irtbench.get_estimator(name).available()]
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    table = pd.DataFrame(columns=COLUMNS)
    for dataset in args.datasets.split(","):
        responses = load(dataset)
        shape = "x".join(map(str, responses.shape))
        for model in models:
            takers = [n for n in methods if model in irtbench.get_estimator(n).models]
            if not takers:
                continue
            best = gaps.reference_maximum(responses, model, nodes=args.nodes)
            for name in takers:
                row = {"dataset": dataset, "shape": shape, "model": model, "estimator": name,
                       "objective": irtbench.get_estimator(name).objective,
                       **run_one(name, model, responses, best, args.nodes, args.time_budget,
                                 not args.no_warm_up)}
                rows.append(row)
                print({k: v for k, v in row.items() if k in ("dataset", "model", "estimator",
                                                             "status", "seconds", "ll_gap",
                                                             "reason")}, flush=True)
                table = pd.DataFrame(rows).reindex(columns=COLUMNS)
                table.to_csv(args.out / "real.csv", index=False)
    (args.out / "real.md").write_text(markdown(table) + "\n")
    print(f"wrote {args.out / 'real.csv'} and {args.out / 'real.md'} "
          f"(load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

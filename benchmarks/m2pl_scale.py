"""The multidimensional 2PL at tinyBenchmarks' shape (300 models x 28659 items, D = 10), side by
side in one run: each estimator's wall time (``Fit.seconds``: host matrix in, estimates and SEs
out; compilation apart), the aligned loadings' RMSE and the other recovery metrics, and the
held-out log-likelihood per response on a random 5% of the cells kept out of the fit.

    python benchmarks/m2pl_scale.py [--students 300] [--questions 28659] [--dims 10]
        [--estimators jax-adam,torch-adam] [--out results/targets/m2pl_300x28659]

Writes ``<out>.csv`` (one row per estimator) and ``<out>.md`` (the table, the command, the
machine's load before and after). py-irt's multidimensional 2PL runs where its interpreter is
(``make py-irt-venv``) when named in ``--estimators``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench.metrics import held_out_log_likelihood
from irtbench.plots import markdown_table

HELD_OUT = 0.05


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--questions", type=int, default=28659)
    parser.add_argument("--dims", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--estimators", default="jax-adam,torch-adam")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/targets/m2pl_300x28659")
    args = parser.parse_args()

    data = irtbench.simulate(args.students, args.questions, model="m2pl", dims=args.dims,
                             seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    held_out = rng.random(data.responses.shape) < HELD_OUT
    training = np.where(held_out, np.nan, data.responses).astype(np.float32)
    truth_ll = held_out_log_likelihood("m2pl", data.responses, held_out, data.skill, data.items)
    rows, loads = [], [load()]
    for name in args.estimators.split(","):
        cls = irtbench.get_estimator(name)
        if not cls.available():
            print(f"{name}: skipped, not installed ({cls.install_command()})")
            continue
        options = {"model": "m2pl", "dims": args.dims}
        if "epochs" in cls.defaults:
            options["epochs"] = args.epochs
        if "device" in cls.defaults:
            options["device"] = "cpu"
        started = time.perf_counter()
        fit = irtbench.fit(training, name, **options)
        waited = time.perf_counter() - started
        metrics = irtbench.recovery(fit, data)
        rows.append({
            "estimator": name, "shape": f"{args.students}x{args.questions}", "dims": args.dims,
            "epochs": options.get("epochs"), "seconds": fit.seconds,
            "compile_seconds": fit.compile_seconds, "wall_seconds": waited,
            "rmse_loadings": metrics.get("rmse_loadings"),
            "rmse_intercept": metrics.get("rmse_intercept"),
            "rmse_discrimination": metrics.get("rmse_discrimination"),
            "corr_skill": metrics.get("corr_skill"),
            "held_out_ll": held_out_log_likelihood("m2pl", data.responses, held_out, fit.skill,
                                                   fit.items),
            "held_out_ll_truth": truth_ll,
            "n_runaway": fit.diagnostics.get("n_runaway"),
        })
        loads.append(load())
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    command = ("python benchmarks/m2pl_scale.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if k != "out") + f" --out {args.out}")
    out.with_suffix(".md").write_text(
        f"# M2PL at {args.students} x {args.questions}, D = {args.dims}\n\n"
        f"`{command}` on {platform.machine()} ({os.cpu_count()} cores), load average "
        f"(1 min) before and after each fit: {', '.join(loads)}.\n\n"
        f"Held-out: {HELD_OUT:.0%} of the cells, log-likelihood per response (the truth's: "
        f"{truth_ll:.4f}; a coin's: -0.6931).\n\n" + markdown_table(table) + "\n")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

"""The 2PL at the scale of LLM evaluation, side by side in one run: fit and evaluation time and
peak memory of each estimator at each shape.

    python benchmarks/llm_scale.py [--cases small,tiny,girth148,sparse] [--out results/targets/llm_scale.csv]

Shapes (``simulate(n, J, model="2pl")``: skills N(0, 1), discriminations LogNormal(0, 0.3)):

* ``tiny`` 300 x 2000 and ``small`` 300 x 28659 (tinyBenchmarks' Open LLM Leaderboard): mml-em,
  torch-adam, jax-adam, and mml-em with BILOG-MG's priors;
* ``girth148`` 11785 x 36259 (girth issue #148; 427 million responses, int8): mml-em;
* ``sparse``: a leaderboard-like sparse shape, 3000 models x 20000 items with 10% observed
  (6 million responses as triples), and ``sparse-small``, 1000 x 10000 with 10% observed:
  mml-em, torch-adam and jax-adam on the triples.

Each fit runs in a fresh process under the sweep's thread policy (``irtbench.threads.held_to``):
``fit_s`` is the wall time of the whole ``fit()`` call after a warm-up (compilation apart),
``peak_gb`` the process's peak resident memory over the fit (the data included), ``eval_s`` and
``eval_peak_gb`` the same for ``irtbench.recovery`` after it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "tiny": [(300, 2000, 0.0, name, {}) for name in ("mml-em", "torch-adam", "jax-adam")]
    + [(300, 2000, 0.0, "mml-em", {"prior_log_a_sd": 0.5, "prior_d_sd": 3.0})],
    "small": [(300, 28659, 0.0, name, {}) for name in ("mml-em", "torch-adam", "jax-adam")]
    + [(300, 28659, 0.0, "mml-em", {"prior_log_a_sd": 0.5, "prior_d_sd": 3.0})],
    "girth148": [(11785, 36259, 0.0, "mml-em", {})],
    "small-adam-prior": [(300, 28659, 0.0, name, {"prior_log_a_sd": 0.5})
                         for name in ("torch-adam", "jax-adam")],
    "sparse": [(3000, 20000, 0.9, name, {}) for name in ("mml-em", "torch-adam", "jax-adam")],
    "sparse-small": [(1000, 10000, 0.9, name, {}) for name in ("mml-em", "torch-adam",
                                                               "jax-adam")],
}


def _peak_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def child(spec: str) -> None:
    n, m, missing, name, options = json.loads(spec)
    import numpy as np

    import irtbench
    from irtbench.responses import to_sparse
    from irtbench.threads import held_to

    data = irtbench.simulate(n, m, seed=0, model="2pl", missing=missing,
                             compact=n * m > (1 << 25))
    responses = to_sparse(data.responses) if missing else data.responses
    device = {"device": "cpu"}
    estimator = irtbench.get_estimator(name)(model="2pl", **device, **options)
    with held_to(None) as cores:
        estimator.warm_up(responses)
        _reset_peak()
        start = time.perf_counter()
        fit = estimator.fit(responses)
        fit_s, peak = time.perf_counter() - start, _peak_bytes()
        _reset_peak()
        start = time.perf_counter()
        metrics = irtbench.recovery(fit, data)
        eval_s, eval_peak = time.perf_counter() - start, _peak_bytes()
    print(json.dumps({
        "estimator": name + ("+priors" if options else ""), "shape": f"{n}x{m}",
        "observed": int(np.sum(data.responses != -1) if data.responses.dtype == np.int8
                        else np.isfinite(data.responses).sum()),
        "layout": "sparse" if missing else str(data.responses.dtype), "threads": len(cores),
        "fit_s": fit_s, "compile_s": fit.compile_seconds, "peak_gb": peak / 1e9,
        "eval_s": eval_s, "eval_peak_gb": eval_peak / 1e9, "n_iter": fit.n_iter,
        "converged": bool(fit.diagnostics.get("converged", True)),
        "n_runaway": int(fit.diagnostics.get("n_runaway", 0)),
        **{key: metrics[key] for key in ("rmse_difficulty", "crb_ratio_difficulty",
                                         "rmse_discrimination", "crb_ratio_discrimination")},
    }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="tiny,small,sparse,girth148")
    parser.add_argument("--out", type=Path, default=Path("results/targets/llm_scale.csv"))
    parser.add_argument("--limit", type=float, default=1800.0, help="seconds per fit")
    parser.add_argument("--estimators", help="comma-separated: only these estimators' fits")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    import pandas as pd

    from irtbench.plots import markdown_table

    rows = []
    for case in args.cases.split(","):
        for spec in CASES[case]:
            if args.estimators and spec[3] not in args.estimators.split(","):
                continue
            try:
                done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                      capture_output=True, text=True, timeout=args.limit)
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                row = json.loads(lines[-1]) if lines else {
                    "estimator": spec[3], "shape": f"{spec[0]}x{spec[1]}",
                    "error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
            except subprocess.TimeoutExpired:
                row = {"estimator": spec[3], "shape": f"{spec[0]}x{spec[1]}",
                       "error": f"ran past {args.limit:g} s"}
            rows.append(row)
            print(row, flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)  # every finished row kept
    print(markdown_table(pd.DataFrame(rows)))
    print(f"\nload average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()

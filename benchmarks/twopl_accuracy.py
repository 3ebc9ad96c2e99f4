"""The 2PL numbers the README and the closing note quote, from one command::

    python benchmarks/twopl_accuracy.py > results/targets/twopl_accuracy_cpu.txt

1. ``mml-em``'s 2PL against the independent marginal ML fit written in ``tests/models/test_2pl.py``
   (scipy's BFGS on the quadrature marginal likelihood): largest gaps on LSAT7 and on a
   simulated 2000 x 8;
2. RMSE / Cramér–Rao bound of difficulties and discriminations at 5000x50, per data set
   (seeds 0, 1, 2) and pooled over their 150 items;
3. NumPyro VI and NUTS against the marginal MLE at 1000x20 (seed 3): the largest distance in
   SEs and the median ratio of posterior SDs to SEs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import irtbench

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_2pl import lsat7, marginal_ml_by_scipy


def scipy_gaps() -> None:
    for label, responses in (("LSAT7", lsat7()),
                             ("simulated 2000x8", irtbench.simulate(2000, 8, seed=11,
                                                                    model="2pl").responses)):
        fit = irtbench.fit(responses, "mml-em", device="cpu", model="2pl")
        a, b, log_likelihood = marginal_ml_by_scipy(responses)
        print(f"{label}: max gap a {np.abs(fit.discrimination - a).max():.2g}, "
              f"b {np.abs(fit.difficulty - b).max():.2g}; log-likelihood "
              f"{fit.diagnostics['log_likelihood']:.6f} vs {log_likelihood:.6f}; "
              f"{fit.n_iter} EM iterations")


def bound_ratios() -> None:
    squares: dict[str, list[tuple[float, float]]] = {"difficulty": [], "discrimination": []}
    for seed in range(3):
        data = irtbench.simulate(5000, 50, seed=seed, model="2pl")
        metrics = irtbench.recovery(
            irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl"), data)
        print(f"5000x50 seed {seed}: RMSE/CRB difficulty "
              f"{metrics['crb_ratio_difficulty']:.3f}, discrimination "
              f"{metrics['crb_ratio_discrimination']:.3f}")
        for kind, pairs in squares.items():
            pairs.append((metrics[f"rmse_{kind}"] ** 2, metrics[f"crb_{kind}"] ** 2))
    for kind, pairs in squares.items():
        mse, bound = np.mean(pairs, axis=0)
        print(f"pooled over 150 items: RMSE/CRB {kind} {np.sqrt(mse / bound):.3f}")


def bayesian_against_mle() -> None:
    data = irtbench.simulate(1000, 20, seed=3, model="2pl")
    mle = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
    for name, options in (("numpyro-vi", {}),
                          ("numpyro-nuts", {"num_warmup": 300, "num_samples": 300})):
        fit = irtbench.fit(data.responses, name, device="cpu", model="2pl", **options)
        parts = []
        for kind in ("discrimination", "difficulty"):
            estimate, se = getattr(fit, kind), getattr(mle, f"{kind}_se")
            distance = np.max(np.abs(estimate - getattr(mle, kind)) / se)
            ratio = np.median(getattr(fit, f"{kind}_se") / se)
            parts.append(f"{kind}: max distance {distance:.2f} SE, SD/SE {ratio:.2f}")
        print(f"{name} 1000x20: " + "; ".join(parts))


if __name__ == "__main__":
    scipy_gaps()
    bound_ratios()
    bayesian_against_mle()

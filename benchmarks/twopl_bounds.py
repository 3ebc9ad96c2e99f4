"""Are the 2PL's Cramér–Rao bounds bounds? Three checks, printed as tables:

    python benchmarks/twopl_bounds.py [--out results/targets/twopl_bounds.txt]

1. **Monte Carlo vs exact** at 10 items: the bound from 20000 simulated patterns (with the
   inverse-Wishart correction of ``irtbench.models.twopl.item_covariance``) against the exact one from
   all 1024 patterns, N = 1000.
2. **Known skills vs marginal** at 50-1000 items: the per-item bound with the skills known (what
   ``item_bounds`` uses above ``DENSE_UP_TO`` = 1000 items, a lower bound) against the dense
   marginal bound of all items together, N = 1000, after the alignment's projection: the ratio
   of their root-mean bounds, which tends to 1 as the test grows.
3. **Simulation at large J**: mml-em's RMSE over the items of a draw against the bound, after
   the affine alignment, at shapes past the dense limit, with the items that ran away counted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/targets/twopl_bounds.txt"))
    args = parser.parse_args()

    import irtbench
    from irtbench.models import twopl

    lines = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    rng = np.random.default_rng(0)
    a, b = rng.lognormal(0, 0.3, 10), rng.normal(size=10)
    limit = twopl.ENUMERATE_UP_TO
    exact = twopl.item_bounds(a, b, 1000)
    try:
        twopl.ENUMERATE_UP_TO = 5
        sampled = twopl.item_bounds(a, b, 1000)
    finally:
        twopl.ENUMERATE_UP_TO = limit
    say("1. Monte Carlo (20000 patterns) / exact (1024 patterns), 10 items, N = 1000")
    for name, s, e in (("a", sampled[0], exact[0]), ("b", sampled[1], exact[1])):
        ratio = s / e
        say(f"   {name}: ratio min {ratio.min():.3f}, median {np.median(ratio):.3f}, "
            f"max {ratio.max():.3f}")
    say()
    say("2. known-skill bound / marginal bound (aligned, root mean over items), N = 1000")
    say("   | items | a | b |")
    say("   | --- | --- | --- |")
    for n_items in (50, 200, 500, 1000):
        a, b = rng.lognormal(0, 0.3, n_items), rng.normal(size=n_items)
        keep = np.ones(n_items, bool)
        dense = twopl.item_bounds(a, b, 1000, aligned=keep, known_skills=False)
        known = twopl.item_bounds(a, b, 1000, aligned=keep, known_skills=True)
        ratios = [np.sqrt(np.mean(k**2) / np.mean(d**2)) for k, d in zip(known, dense)]
        say(f"   | {n_items} | {ratios[0]:.3f} | {ratios[1]:.3f} |")
    say()
    say("3. mml-em RMSE / bound (known-skill bound, aligned) past the dense limit, one draw each")
    say("   | shape | RMSE/CRB b | RMSE/CRB a | runaway items |")
    say("   | --- | --- | --- | --- |")
    for n, m in ((2000, 2000), (1000, 5000)):
        data = irtbench.simulate(n, m, seed=1, model="2pl")
        fit = irtbench.fit(data.responses, "mml-em", model="2pl", device="cpu")
        metrics = irtbench.recovery(fit, data)
        say(f"   | {n}x{m} | {metrics['crb_ratio_difficulty']:.3f} | "
            f"{metrics['crb_ratio_discrimination']:.3f} | {fit.diagnostics['n_runaway']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

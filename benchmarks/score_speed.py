"""The speed of scoring new respondents under calibrated items (issue 31's target: 10,000 new
respondents on 28,659 calibrated 2PL items in at most 5 s on the 2-core development machine):
:func:`irtbench.scoring.score` of complete simulated rows, each method, timed alone (the
simulation and the items' draw are not).

    python benchmarks/score_speed.py [--students 10000] [--questions 28659] [--model 2pl]
        [--methods eap,map,ml] [--form int8|float32] [--rounds 3]

Prints, per method, the median and the fastest of ``--rounds`` timed calls after one untimed
warm-up, and the load average (``/proc/loadavg``) before and after: numbers taken on a busy
machine say so. Nothing is written.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import irtbench
from irtbench.models import get_model
from irtbench.scoring import SkillPrior, score


def load_average() -> str:
    path = Path("/proc/loadavg")
    return path.read_text().strip() if path.exists() else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=10000)
    parser.add_argument("--questions", type=int, default=28659)
    parser.add_argument("--model", default="2pl")
    parser.add_argument("--methods", default="eap,map,ml")
    parser.add_argument("--form", choices=("int8", "float32"), default="int8",
                        help="the responses' dense form (default: %(default)s, 1 byte a cell)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = irtbench.simulate(args.students, args.questions, model=args.model, seed=args.seed,
                             compact=args.form == "int8")
    responses = data.responses
    model = get_model(args.model)
    print(f"{args.students} respondents x {args.questions} {model.title} items, {args.form} "
          f"({responses.nbytes / 2**20:.0f} MiB), {args.rounds} timed rounds after a warm-up")
    print(f"load average before: {load_average()}")
    for method in args.methods.split(","):
        seconds = []
        for round_ in range(args.rounds + 1):
            start = time.perf_counter()
            result = score(model, data.items, responses, method=method,
                           prior=SkillPrior.standard())
            if round_:
                seconds.append(time.perf_counter() - start)
        finite = np.isfinite(result.skill)
        error = np.sqrt(np.mean((result.skill[finite] - data.skill[finite]) ** 2))
        print(f"{method}: median {np.median(seconds):.2f} s, fastest {min(seconds):.2f} s; "
              f"RMSE against the true skills {error:.4f}, median SE "
              f"{np.median(result.skill_se[finite]):.4f}, {int((~finite).sum())} infinite")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()

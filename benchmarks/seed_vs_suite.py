"""The seed notebook's own loop against irtbench's estimators, side by side in one run.

The notebook's ``fit_model``: ``Bernoulli(probs=sigmoid(skill - difficulty))``, float32, Adam lr
0.01, 1000 epochs, penalty ``1e-2 * mean(difficulty)^2``, the data moved to the device inside
its timed region (one warm-up on a 50x50 slice first). Each irtbench estimator is timed by its
own clock (``Fit.seconds``: host matrix in, every estimate and SE out) after a warm-up on the
same data. RMSEs are after removing the mean error (the notebook's scale is identified up to a
shift only). Writes one CSV row per (size, method)::

    python benchmarks/seed_vs_suite.py --device cpu --sizes 1000x1000 --rounds 3 --out seed.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench.responses import parse_size

ESTIMATORS = ("torch-adam", "jax-adam", "jml-newton", "mml-em", "cml")


def notebook_fit(responses: np.ndarray, device: str, epochs: int = 1000, alpha: float = 1e-2
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """The notebook's loop, timed from the host matrix to the estimates on the host."""
    import torch

    def synchronize() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    start = time.perf_counter()
    answers = torch.from_numpy(responses).to(device)
    skill = torch.zeros(answers.shape[0], device=device, requires_grad=True)
    difficulty = torch.zeros(answers.shape[1], device=device, requires_grad=True)
    optimizer = torch.optim.Adam([skill, difficulty], lr=0.01)
    for _ in range(epochs):
        optimizer.zero_grad()
        probs = torch.sigmoid(skill[:, None] - difficulty[None, :])
        loss = (-torch.distributions.Bernoulli(probs=probs).log_prob(answers).mean()
                + alpha * torch.pow(difficulty.mean(), 2))
        loss.backward()
        optimizer.step()
    result = skill.detach().cpu().double().numpy(), difficulty.detach().cpu().double().numpy()
    synchronize()
    return *result, time.perf_counter() - start


def centred_rmse(estimate: np.ndarray, truth: np.ndarray) -> float:
    error = estimate - truth
    return float(np.sqrt(np.mean((error - error.mean()) ** 2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (%(default)s)")
    parser.add_argument("--sizes", default="1000x1000", help="comma-separated (%(default)s)")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of notebook + every estimator, interleaved; each row is "
                             "one round, its ratio against that round's notebook (%(default)s)")
    parser.add_argument("--out", type=Path, help="CSV file, written row by row")
    args = parser.parse_args(argv)
    rows = []

    def record(row: dict[str, object]) -> None:
        rows.append(row)
        print(row, flush=True)
        if args.out is not None:
            pd.DataFrame(rows).to_csv(args.out, index=False)

    for size in args.sizes.split(","):
        data = irtbench.simulate(*parse_size(size), seed=0)
        notebook_fit(data.responses[:50, :50].copy(), args.device, epochs=5)  # warm-up
        estimators = [irtbench.get_estimator(name)(device=args.device)
                      for name in args.estimators.split(",")]
        estimators = [e for e in estimators if e.available()]
        for estimator in estimators:
            estimator.warm_up(data.responses)
        for round_ in range(args.rounds):
            skill, difficulty, seconds = notebook_fit(data.responses, args.device)
            record({"size": size, "round": round_, "method": "seed-notebook", "seconds": seconds,
                    "rmse_difficulty": centred_rmse(difficulty, data.difficulty),
                    "rmse_skill": centred_rmse(skill, data.skill)})
            for estimator in estimators:
                fit = estimator.fit(data.responses)
                finite = np.isfinite(fit.skill)
                record({"size": size, "round": round_, "method": estimator.name,
                        "seconds": fit.seconds, "compute_seconds": fit.compute_seconds,
                        "compile_seconds": fit.compile_seconds,
                        "rmse_difficulty": centred_rmse(fit.difficulty, data.difficulty),
                        "rmse_skill": centred_rmse(fit.skill[finite], data.skill[finite]),
                        "ratio_to_notebook": seconds / fit.seconds, "device": fit.device})
    table = pd.DataFrame(rows).groupby(["size", "method"], sort=False)[
        ["seconds", "ratio_to_notebook"]].median()
    print("medians over rounds:\n" + table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Whole fits against the memory-bandwidth bound, from 10^6 to 10^10 responses, in one command.

    python benchmarks/gpu_scale.py --device cuda --out results/gpu-scale-<GPU>
    python benchmarks/gpu_scale.py --device cpu --sizes 1e4x100 --epochs 5   # a smoke run

First measures the device's bandwidth with a device-to-device copy (bytes read + bytes written
per second). Then, for each size (default 10^3 x 10^3, 10^5 x 10^3, 10^6 x 10^3, 10^7 x 10^3 and
the 2PL at 300 x 28659, tinyBenchmarks' leaderboard), simulates the responses **on the device**
(int8 codes, a block of rows at a time; a 10^10 matrix never exists in float on the host) and
brings them to host memory as a user would hold them, then fits each estimator of the plan to
them after a warm-up on the same data, one CSV row per fit as it finishes (``OUT/scale.csv``):

* ``seconds`` (the whole fit, ``Fit.seconds``: host matrix in, every estimate and SE back on
  the host, validation included), ``wall_seconds`` (the call of ``fit()``, compilation
  included), ``compute_seconds`` (the epochs alone, data on the device),
  ``responses_per_second`` (responses x iterations / ``compute_seconds``);
* ``bound_seconds_per_pass`` = responses x 1 byte / copy bandwidth (one read of the int8 codes
  at the copy's rate) and ``ratio_to_bound`` = (``compute_seconds`` / iterations) / that bound;
* ``max_diff_closed`` where the plan says so: the largest difference of the difficulties
  between the fused kernel and the closed form at the same epochs (float32 sums over 10^9
  terms in another order), and ``rmse_to_optimum``: the difficulties' RMSE to
  ``jml-newton``'s exact optimum of the same objective (float64).

Adam epochs: the estimator's default (1000) unless the plan cuts them (jax-adam above 10^8: 100;
rates per epoch do not depend on the count). A fit that fails (out of memory, say) becomes a row
with its error, and the run goes on.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np

import irtbench
from irtbench.responses import parse_size
from irtbench.results import environment, write_environment

COLUMNS = ("estimator", "model", "kernel", "n_students", "n_questions", "responses", "device",
           "status", "seconds", "wall_seconds", "compute_seconds", "compile_seconds", "n_iter",
           "responses_per_second", "copy_bytes_per_second", "bound_seconds_per_pass",
           "ratio_to_bound", "simulate_seconds", "max_diff_closed", "rmse_to_optimum", "reason")

#: (estimator, model, options, largest responses) of every size; the LLM shape takes the 2PL
PLAN = (
    ("torch-adam", "rasch", {}, 1e10),
    ("jax-adam", "rasch", {}, 1e9),
    ("jml-newton", "rasch", {}, 1e10),
    ("torch-adam", "2pl", {}, 1e9),
    ("jax-adam", "2pl", {}, 1e9),
)
LLM_PLAN = (("torch-adam", "2pl", {}, 1e8), ("jax-adam", "2pl", {}, 1e8),
            ("mml-em", "2pl", {}, 1e8))
#: above this many responses jax-adam runs this many epochs (per-epoch rates are what count)
CUT_EPOCHS_ABOVE, CUT_EPOCHS = 1e8, 100


def copy_bandwidth(device: str, nbytes: int = 1 << 30) -> float:
    """Bytes moved (read + written) per second by a device-to-device copy (median of 5)."""
    import torch

    source = torch.empty(nbytes, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    times = []
    for _ in range(6):
        synchronize(device)
        start = time.perf_counter()
        target.copy_(source)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * nbytes / sorted(times[1:])[2]


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def simulate_codes(n: int, m: int, model: str, device: str, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """int8 responses of ``model`` drawn on ``device`` a block of rows at a time (skills and
    difficulties N(0, 1), slopes LogNormal(0, 0.25^2) under the 2PL), returned in host memory
    with the true difficulties."""
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)
    skill = torch.randn(n, generator=generator, device=device)
    difficulty = torch.randn(m, generator=generator, device=device)
    slope = (torch.randn(m, generator=generator, device=device) * 0.25).exp()
    if model == "rasch":
        slope = torch.ones_like(slope)
    codes = np.empty((n, m), dtype=np.int8)
    step = max(1, (1 << 28) // m)
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        p = torch.sigmoid(slope * (skill[rows, None] - difficulty[None, :]))
        draws = torch.rand(p.shape, generator=generator, device=device) < p
        codes[rows] = draws.to(torch.int8).cpu().numpy()
    return codes, difficulty.cpu().numpy().astype(np.float64)


def shifted_rmse(estimate: np.ndarray, reference: np.ndarray) -> float:
    """RMSE after removing the mean difference (the objective fixes the origin by a penalty,
    the truth by its own draw), over the finite entries."""
    keep = np.isfinite(estimate) & np.isfinite(reference)
    diff = estimate[keep] - reference[keep]
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)))


def fit_row(name: str, model: str, options: dict, codes: np.ndarray, device: str,
            bandwidth: float, default_epochs: int | None) -> tuple[dict, irtbench.Fit | None]:
    """Warm up, fit, and describe one fit as a row (an error as a row too)."""
    n, m = codes.shape
    row = {"estimator": name, "model": model, "n_students": n, "n_questions": m,
           "responses": n * m, "device": device, "copy_bytes_per_second": bandwidth}
    options = {**options, "model": model}
    if "adam" in name:
        epochs = default_epochs or 1000
        if name == "jax-adam" and n * m > CUT_EPOCHS_ABOVE:
            epochs = min(epochs, CUT_EPOCHS)
        options["epochs"] = epochs
    try:
        estimator = irtbench.get_estimator(name)(device=device, **options)
        estimator.warm_up(codes)
        start = time.perf_counter()
        fit = estimator.fit(codes)
        wall = time.perf_counter() - start
    except Exception as error:  # noqa: BLE001 - a failed fit is a row
        traceback.print_exc()
        row.update(status="error", reason=f"{type(error).__name__}: {error}"[:300])
        return row, None
    bound = n * m / bandwidth
    row.update(status="ok", seconds=fit.seconds, wall_seconds=wall, n_iter=fit.n_iter,
               kernel=fit.diagnostics.get("kernel", ""), compute_seconds=fit.compute_seconds,
               compile_seconds=fit.compile_seconds,
               responses_per_second=n * m * fit.n_iter / fit.compute_seconds,
               bound_seconds_per_pass=bound,
               ratio_to_bound=fit.compute_seconds / fit.n_iter / bound)
    return row, fit


def plan_for(n: int, m: int, llm: bool) -> list[tuple[str, str, dict, float]]:
    return [entry for entry in (LLM_PLAN if llm else PLAN) if n * m <= entry[3]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda or cpu (default: %(default)s)")
    parser.add_argument("--sizes", default="1e3x1000,1e5x1000,1e6x1000,1e7x1000",
                        help="Rasch and 2PL sizes (default: %(default)s)")
    parser.add_argument("--llm-sizes", default="300x28659", help="2PL-only sizes")
    parser.add_argument("--epochs", type=int, default=None,
                        help="Adam epochs (default: the estimators' 1000)")
    parser.add_argument("--compare-at", type=float, default=1e9,
                        help="at this many responses, check the fused fit against the closed "
                        "form and jml-newton's optimum (default: %(default)g)")
    parser.add_argument("--out", type=Path, default=Path("results/gpu-scale"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    write_environment(args.out, environment(args.device))
    bandwidth = copy_bandwidth(args.device, 1 << 30 if args.device.startswith("cuda") else 1 << 26)
    print(f"copy bandwidth on {args.device}: {bandwidth / 1e9:.1f} GB/s", flush=True)
    sizes = [(parse_size(t), False) for t in args.sizes.split(",") if t]
    sizes += [(parse_size(t), True) for t in args.llm_sizes.split(",") if t]
    with open(args.out / "scale.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for (n, m), llm in sizes:
            data = {}
            for name, model, options, _ in plan_for(n, m, llm):
                if model not in data:
                    start = time.perf_counter()
                    data[model] = simulate_codes(n, m, model, args.device) + (
                        time.perf_counter() - start,)
                codes, truth, simulate_seconds = data[model]
                row, fit = fit_row(name, model, options, codes, args.device, bandwidth,
                                   args.epochs)
                row["simulate_seconds"] = simulate_seconds
                if fit is not None and name == "torch-adam" and model == "rasch" \
                        and math.isclose(n * m, args.compare_at, rel_tol=0.01):
                    row.update(compare(fit, codes, args.device))
                writer.writerow(row)
                handle.flush()
                print({k: row.get(k) for k in ("estimator", "model", "kernel", "responses",
                                               "status", "seconds", "compute_seconds",
                                               "ratio_to_bound", "max_diff_closed",
                                               "rmse_to_optimum", "reason")}, flush=True)
            data.clear()
    print(f"results in {args.out}/scale.csv")
    return 0


def compare(fit: irtbench.Fit, codes: np.ndarray, device: str) -> dict:
    """The fused fit against the closed form at the same epochs and jml-newton's optimum."""
    try:
        closed = irtbench.fit(codes, "torch-adam", device=device, kernel="closed",
                              storage="int8", epochs=fit.n_iter)
        optimum = irtbench.fit(codes, "jml-newton", device=device, tol=1e-9)
        return {"max_diff_closed": float(np.max(np.abs(closed.difficulty - fit.difficulty))),
                "rmse_to_optimum": shifted_rmse(fit.difficulty, optimum.difficulty)}
    except Exception as error:  # noqa: BLE001 - the comparison is extra
        return {"reason": f"compare: {type(error).__name__}: {error}"[:300]}


if __name__ == "__main__":
    sys.exit(main())

"""Throughput against the memory-bandwidth bound, from 10^7 to 10^9 responses, in one command.

    python benchmarks/gpu_scale.py --device cuda --out results/gpu-scale-<GPU>
    python benchmarks/gpu_scale.py --device cpu --sizes 1e4x100 --epochs 5   # a smoke run

First measures the device's bandwidth with a device-to-device copy of 1 GB (bytes read + bytes
written per second). Then, for each size (default 10^4 x 10^3, 10^5 x 10^3, 10^6 x 10^3), fits
``torch-adam`` (int8 storage), ``jax-adam`` (int8 codes decoded in its compiled loop) and
``jml-newton`` on
the same simulated data (compact int8 on the host: a 10^9-response matrix is 1 GB, never a
float32 one) and writes one row per fit to ``OUT/scale.csv`` as it finishes:

* ``seconds`` (the whole fit, ``Fit.seconds``: host matrix in, estimates and SEs out),
  ``compute_seconds`` (its iterations alone, data on the device), ``responses_per_second``
  (responses x iterations / compute_seconds);
* ``data_bytes_per_response``: what one pass must read at least, as the estimator stores the
  data (1 for the int8 codes of torch-adam and jax-adam, 1 for jml-newton's counting pass over
  the host's int8 matrix);
* ``bound_seconds_per_pass`` = responses x data bytes / copy bandwidth, the time of one pass that
  only reads its data at the copy's rate, and ``ratio_to_bound`` = (compute_seconds /
  iterations) / that bound. The goal is a ratio of 3 or less for the reference's epochs.

Adam epochs are cut to ``--epochs`` (100) at every size so that the sweep stays within about
10 minutes on one H100-class GPU; rates per epoch do not depend on the count. A fit that fails
(out of memory, say) becomes a row with its error, and the sweep goes on.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import traceback
from pathlib import Path

import irtbench
from irtbench.responses import parse_size
from irtbench.results import environment, write_environment

COLUMNS = ("estimator", "n_students", "n_questions", "responses", "device", "status", "seconds",
           "compute_seconds", "compile_seconds", "n_iter", "responses_per_second", "data_bytes_per_response", "copy_bytes_per_second",
           "bound_seconds_per_pass", "ratio_to_bound", "reason")
DATA_BYTES = {"torch-adam": 1.0, "jax-adam": 1.0, "jml-newton": 1.0}


def copy_bandwidth(device: str, nbytes: int = 1 << 30) -> float:
    """Bytes moved (read + written) per second by a device-to-device copy (median of 5)."""
    import torch

    source = torch.empty(nbytes, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    times = []
    for _ in range(6):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        target.copy_(source)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * nbytes / sorted(times[1:])[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda or cpu (default: %(default)s)")
    parser.add_argument("--sizes", default="1e4x1000,1e5x1000,1e6x1000")
    parser.add_argument("--epochs", type=int, default=100, help="Adam epochs per fit")
    parser.add_argument("--out", type=Path, default=Path("results/gpu-scale"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    write_environment(args.out, environment(args.device))
    bandwidth = copy_bandwidth(args.device, 1 << 30 if args.device.startswith("cuda") else 1 << 26)
    print(f"copy bandwidth on {args.device}: {bandwidth / 1e9:.1f} GB/s", flush=True)
    with open(args.out / "scale.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for n, m in (parse_size(text) for text in args.sizes.split(",")):
            data = irtbench.simulate(n, m, seed=0, compact=True)
            for name in DATA_BYTES:
                row = {"estimator": name, "n_students": n, "n_questions": m, "responses": n * m,
                       "device": args.device, "data_bytes_per_response": DATA_BYTES[name],
                       "copy_bytes_per_second": bandwidth}
                options = {"epochs": args.epochs} if "adam" in name else {}
                if name == "torch-adam":
                    options["storage"] = "int8"
                try:
                    estimator = irtbench.get_estimator(name)(device=args.device, **options)
                    estimator.warm_up()
                    fit = estimator.fit(data.responses)
                    bound = n * m * DATA_BYTES[name] / bandwidth
                    row.update(status="ok", seconds=fit.seconds, n_iter=fit.n_iter,
                               compute_seconds=fit.compute_seconds,
                               compile_seconds=fit.compile_seconds,
                               responses_per_second=n * m * fit.n_iter / fit.compute_seconds,
                               bound_seconds_per_pass=bound,
                               ratio_to_bound=fit.compute_seconds / fit.n_iter / bound)
                except Exception as error:  # noqa: BLE001 - a failed fit is a row
                    traceback.print_exc()
                    row.update(status="error", reason=f"{type(error).__name__}: {error}"[:300])
                writer.writerow(row)
                handle.flush()
                print({k: row.get(k) for k in ("estimator", "responses", "status", "seconds",
                                               "responses_per_second", "ratio_to_bound")},
                      flush=True)
    print(f"results in {args.out}/scale.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())

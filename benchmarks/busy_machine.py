"""Fit times on a quiet machine and with one busy loop beside, before and with the thread policy.

    python benchmarks/busy_machine.py [--rounds 3] [--out results/targets/busy_machine.csv]

Each (round, load, policy) is a fresh child process that simulates the data, warms every
estimator up on them and times one fit of each, end to end (the wall time of the whole
``Estimator.fit`` call):

* ``before``: how fits were timed before the policy: torch imported before irtbench (so GNU
  OpenMP keeps its default wait policy, 3 ms of spinning), every backend with its default
  threads, no pinning;
* ``irtbench``: the policy of the sweep's workers, :func:`irtbench.threads.held_to` with
  ``threads`` auto (the cores other processes leave idle, measured before each fit), pinned,
  ``OMP_WAIT_POLICY=PASSIVE`` with ``GOMP_SPINCOUNT=10000``.

``busy``: one ``sh -c 'while :; do :; done'`` running, unpinned, beside the child. Rounds
interleave the loads and the policies, so slow drifts of the machine hit all alike; the table
gives medians over the rounds and the load average at the start. A fit that runs past
``--limit`` seconds is recorded at the limit (``>``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FITS = (  # estimator, n_students, n_questions
    ("jml-newton", 10000, 1000),
    ("cml", 10000, 1000),
    ("mml-em", 10000, 1000),
    ("torch-adam", 1000, 1000),
    ("jax-adam", 1000, 1000),
)


def child(policy: str, limit: float) -> None:
    """Time each fit of FITS in this process under ``policy``; print one JSON line each."""
    if policy == "before":
        import torch  # noqa: F401 - first: GNU OpenMP starts with its default wait policy
    import contextlib

    import irtbench
    from irtbench.harness import FitTimeout, time_limit
    from irtbench.threads import Usage, allowed_cores, held_to

    data = {}
    for name, n, m in FITS:
        if (n, m) not in data:
            data[n, m] = irtbench.simulate(n, m, seed=0).responses
        responses = data[n, m]
        options = {"device": "cpu"} if "device" in irtbench.get_estimator(name).defaults else {}
        estimator = irtbench.get_estimator(name)(**options)
        hold = held_to(None) if policy == "irtbench" else contextlib.nullcontext(allowed_cores())
        with hold as cores:
            estimator.warm_up(responses)
            start = time.perf_counter()
            try:
                with Usage(cores) as usage, time_limit(limit):
                    estimator.fit(responses)
                seconds, capped = time.perf_counter() - start, False
            except FitTimeout:
                seconds, capped = limit, True
        print(json.dumps({"estimator": name, "size": f"{n}x{m}", "seconds": seconds,
                          "capped": capped, "threads": len(cores),
                          "cpu_seconds": usage.cpu_seconds, "contention": usage.contention}),
              flush=True)


def run_child(policy: str, limit: float) -> list[dict]:
    env = {**os.environ}
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):  # each side chooses its own
        env.pop(name, None)
    done = subprocess.run([sys.executable, __file__, "--child", policy, "--limit", str(limit)],
                          capture_output=True, text=True, env=env, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("results/targets/busy_machine.csv"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.limit)
        return

    import pandas as pd

    from irtbench.plots import markdown_table

    rows = []
    for round_ in range(args.rounds):
        for load in ("quiet", "busy"):
            loop = (subprocess.Popen(["sh", "-c", "while :; do :; done"]) if load == "busy"
                    else None)
            try:
                time.sleep(1.0)
                for policy in ("before", "irtbench"):
                    load_average = Path("/proc/loadavg").read_text().split()[0]
                    for row in run_child(policy, args.limit):
                        rows.append({**row, "round": round_, "load": load, "policy": policy,
                                     "load_average": float(load_average)})
                        print(rows[-1], flush=True)
            finally:
                if loop is not None:
                    loop.kill()
                    loop.wait()
            time.sleep(2.0)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(markdown_table(summary(table)))
    contention = table[table.policy == "irtbench"].groupby("load").contention.median()
    print(f"\nrows: {args.out}; {os.cpu_count()} cores; median over rounds of {args.rounds}; "
          f"load average at the children's start: quiet "
          f"{table[table.load == 'quiet'].load_average.median():.2f}, busy "
          f"{table[table.load == 'busy'].load_average.median():.2f} (median; the 1-minute "
          f"average lags); contention during the irtbench fits (median): quiet "
          f"{contention.get('quiet', float('nan')):.1%}, busy {contention.get('busy', float('nan')):.1%}")


def summary(table):
    """Medians over rounds: quiet and busy seconds per policy, the busy/quiet ratio, the quiet
    change of the policy, and the threads the policy chose under each load."""
    import pandas as pd

    median = table.groupby(["estimator", "size", "load", "policy"], sort=False).agg(
        seconds=("seconds", "median"), capped=("capped", "any"), threads=("threads", "median"))
    rows = []
    for (name, size), group in median.groupby(level=[0, 1], sort=False):
        get = group.droplevel([0, 1])

        def cell(load: str, policy: str) -> str:
            value = get.loc[(load, policy)]
            return (">" if value.capped else "") + f"{value.seconds:.3g}"

        quiet, busy = get.loc[("quiet", "irtbench")], get.loc[("busy", "irtbench")]
        rows.append({
            "fit": f"{name} {size}",
            "quiet, before (s)": cell("quiet", "before"),
            "quiet, irtbench (s)": cell("quiet", "irtbench"),
            "busy loop, before (s)": cell("busy", "before"),
            "busy loop, irtbench (s)": cell("busy", "irtbench"),
            "busy / quiet, irtbench": busy.seconds / quiet.seconds,
            "quiet, irtbench / before": quiet.seconds / get.loc[("quiet", "before")].seconds,
            "threads quiet / busy": f"{quiet.threads:g} / {busy.threads:g}",
        })
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()

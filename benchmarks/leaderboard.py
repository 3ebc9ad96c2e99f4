"""Issue 31's targets at the LLM leaderboard's shape, as a user meets them: the commands
``irtbench compare`` and ``irtbench subset`` on a simulated 2PL of 300 models x 28659 items
(tinyBenchmarks' Open LLM Leaderboard), each timed from the shell (the interpreter's start and
imports included) with the load average before and after.

    python benchmarks/leaderboard.py [--out results/leaderboard] [--steps compare,subset]
        [--students 300] [--questions 28659] [--seed 0] [--force]

The data: ``irtbench.simulate(300, 28659, model="2pl", seed=0)`` (skills N(0, 1),
discriminations LogNormal(0, 0.3), difficulties N(0, 1): the suite's 2PL), written as a CSV in
a temporary folder (17 MB, not kept). The steps:

* ``compare``: ``irtbench compare DATA --estimators mml-em --models 2pl --folds 5`` (cell
  folds; target 2 minutes);
* ``subset``: ``irtbench subset DATA --estimators jax-adam --models 2pl,m2pl -o dims=10
  --strategies random,stratified,information,clustering --items 25,50,100,200 --folds 5``
  (target 10 minutes; and with 100 items the best combination's mean absolute error of the
  estimated accuracy at most 2 points, with random selection beside it).

Each command writes its own folder under ``--out`` (``compare/``, ``subset/``); this script adds
``README.md``: the commands, their wall seconds, the load, and the subset's table at k = 100.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench.plots import markdown_table

STEPS = ("compare", "subset")
TARGETS = {"compare": 120.0, "subset": 600.0}


def load_average() -> str:
    path = Path("/proc/loadavg")
    return path.read_text().strip() if path.exists() else "?"


def command_of(step: str, data: Path, out: Path) -> list[str]:
    """The ``irtbench`` command line of one step (its output folder replaced if present)."""
    if step == "compare":
        return ["compare", str(data), "--estimators", "mml-em", "--models", "2pl", "--folds", "5",
                "--out", str(out / "compare"), "--force", "--time-budget", "1800"]
    return ["subset", str(data), "--estimators", "jax-adam", "--models", "2pl,m2pl",
            "-o", "dims=10", "--strategies", "random,stratified,information,clustering",
            "--items", "25,50,100,200", "--folds", "5", "--out", str(out / "subset"),
            "--force", "--time-budget", "3600"]


def write_data(folder: Path, students: int, questions: int, seed: int) -> Path:
    """The simulated 2PL as a CSV of 0/1 with a header row of item names."""
    data = irtbench.simulate(students, questions, model="2pl", seed=seed)
    path = folder / f"leaderboard_{students}x{questions}.csv"
    frame = pd.DataFrame(np.asarray(data.responses, dtype=np.int8),
                         columns=[f"item{j}" for j in range(questions)])
    frame.to_csv(path, index=False)
    return path


def run_step(step: str, data: Path, out: Path) -> dict[str, object]:
    """One command, timed from the shell's view, its output kept in ``out/step.log``."""
    line = [str(Path(sys.executable).parent / "irtbench"), *command_of(step, data, out)]
    before = load_average()
    started = time.perf_counter()
    done = subprocess.run(line, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (out / f"{step}.log").write_text(done.stdout + done.stderr)
    print(done.stdout[-3000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    return {"step": step, "seconds": round(seconds, 1), "target_s": TARGETS[step],
            "exit": done.returncode, "load_before": before, "load_after": load_average()}


def subset_table(out: Path, k: int = 100) -> str:
    """The subset's summary at ``k``: every estimator x model x strategy x estimate."""
    path = out / "subset" / "summary.csv"
    if not path.exists():
        return "(no subset summary)"
    summary = pd.read_csv(path)
    at_k = summary[summary.k == k].sort_values("mae")
    columns = ["estimator", "model", "strategy", "method", "mae", "mae_sd", "kendall_tau",
               "seconds_calibrate", "seconds_select", "seconds_score"]
    return markdown_table(at_k[columns])


def write_readme(out: Path, rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    shown = " ".join(f"--{k}={v}" for k, v in (("students", args.students),
                                               ("questions", args.questions),
                                               ("seed", args.seed)))
    commands = "\n".join(
        "    irtbench " + " ".join(command_of(row["step"], Path("DATA.csv"), out))
        for row in rows)
    table = markdown_table(pd.DataFrame(rows))
    text = (f"# Issue 31's targets at the leaderboard's shape\n\n"
            f"Made by `python benchmarks/leaderboard.py {shown}` on the project's 2-core CPU "
            f"machine; DATA.csv is `irtbench.simulate({args.students}, {args.questions}, "
            f"model=\"2pl\", seed={args.seed})` as 0/1 (not kept). The commands:\n\n"
            f"{commands}\n\nWall seconds of each, from the shell (interpreter start and "
            f"imports included), with `/proc/loadavg` before and after:\n\n{table}\n\n"
            f"`subset`'s summary at k = 100 (mean absolute error of the estimated "
            f"whole-benchmark accuracy, its SD over the 5 folds; Kendall's tau of the new "
            f"respondents' ranking):\n\n{subset_table(out)}\n")
    (out / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/leaderboard"))
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--questions", type=int, default=28659)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; the steps are {', '.join(STEPS)}")
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        parser.error(f"{args.out} holds files; --force replaces them")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as folder:
        data = write_data(Path(folder), args.students, args.questions, args.seed)
        rows = [run_step(step, data, args.out) for step in steps]
    write_readme(args.out, rows, args)
    print((args.out / "README.md").read_text())
    return max(int(row["exit"]) for row in rows)


if __name__ == "__main__":
    sys.exit(main())

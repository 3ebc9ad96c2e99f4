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
``steps.csv`` (each command's wall seconds, exit code and load) and ``README.md``: the commands,
their seconds, the subset's table at k = 100 and the floor of its error (:func:`floor_table`);
``--render`` rewrites ``README.md`` from the folder; ``--steps compare --force`` redoes one
step and keeps the others.

**The floor.** With the true items known, a respondent of skill :math:`\theta` scored from the
k items :math:`S` has :math:`\\mathrm{SD}(\\hat\theta) \\ge I_S(\theta)^{-1/2}`,
:math:`I_S = \\sum_{j\\in S} a_j^2 p_j(1-p_j)`, so the accuracy over all items,
:math:`A(\theta) = \frac1J\\sum_j p_j(\theta)`, is known to
:math:`|A'(\theta)| I_S(\theta)^{-1/2}` at best (the delta method), and the realised accuracy
adds the unseen answers' own noise, :math:`\\sqrt{\\sum_j p_j(1-p_j)}/J`. For a normal error the
mean absolute error is :math:`\\sqrt{2/\\pi}` times the SD: averaged over the data's true skills,
the floor of the MAE for the k most informative items (at the population) and for k random
ones. It bounds unbiased estimates only: EAP's shrinkage can go a little below it.
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
    done = subprocess.run(line, capture_output=True, text=True, check=False)
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


def floor_table(students: int, questions: int, seed: int, sizes: tuple[int, ...] = (25, 50, 100, 200)
                ) -> str:
    """The floor of the mean absolute accuracy error (module docstring) at each k."""
    data = irtbench.simulate(students, questions, model="2pl", seed=seed)
    a, b = np.asarray(data.items["discrimination"]), np.asarray(data.items["difficulty"])
    p = 1 / (1 + np.exp(-a * (np.asarray(data.skill)[:, None] - b)))
    w = p * (1 - p)
    slope = (a * w).mean(axis=1)  # A'(theta)
    unseen = np.sqrt(w.sum(axis=1)) / questions
    most = np.argsort(-(a**2 * w).sum(axis=0))
    random = np.random.default_rng(seed).permutation(questions)
    rows = []
    for k in sizes:
        floors = {}
        for name, items in (("information", most[:k]), ("random", random[:k])):
            information = (a[items] ** 2 * w[:, items]).sum(axis=1)
            sd = np.sqrt(slope**2 / information + unseen**2)
            floors[name] = float(np.mean(np.sqrt(2 / np.pi) * sd))
        rows.append({"k": k, "floor_information": floors["information"],
                     "floor_random": floors["random"]})
    return markdown_table(pd.DataFrame(rows))


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
            f"respondents' ranking):\n\n{subset_table(out)}\n\n"
            f"The floor of that error with the true items known (module docstring of "
            f"`benchmarks/leaderboard.py`: the delta method on the skill's Cramér–Rao bound, "
            f"plus the unseen answers' noise; random items as one seeded draw):\n\n"
            f"{floor_table(args.students, args.questions, args.seed)}\n")
    (out / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/leaderboard"))
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--questions", type=int, default=28659)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    parser.add_argument("--render", action="store_true",
                        help="rewrite README.md from the folder's steps.csv and results")
    args = parser.parse_args(argv)
    if args.render:
        if not (args.out / "steps.csv").is_file():
            parser.error(f"{args.out / 'steps.csv'} is missing: run the steps first")
        write_readme(args.out, pd.read_csv(args.out / "steps.csv").to_dict("records"), args)
        print((args.out / "README.md").read_text())
        return 0
    steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; the steps are {', '.join(STEPS)}")
    present = [step for step in steps if (args.out / step).exists()]
    if present and not args.force:
        parser.error(f"{args.out} holds {', '.join(present)}/; --force replaces them")
    for step in present:  # the other steps' folders and rows stay
        shutil.rmtree(args.out / step)
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "steps.csv"
    rows = [row for row in (pd.read_csv(table).to_dict("records") if table.is_file() else [])
            if row["step"] not in steps]
    with tempfile.TemporaryDirectory() as folder:
        data = write_data(Path(folder), args.students, args.questions, args.seed)
        for step in steps:
            rows.append(run_step(step, data, args.out))
            pd.DataFrame(rows).to_csv(table, index=False)
    write_readme(args.out, rows, args)
    print((args.out / "README.md").read_text())
    return max(int(row["exit"]) for row in rows)


if __name__ == "__main__":
    sys.exit(main())

"""The ``irtbench`` command.

Exit codes: 0 success; 1 a check found a regression; 2 bad usage or unusable input
(one line on stderr naming the problem).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from irtbench import __version__
from irtbench.data import load_responses
from irtbench.estimators import BackendNotInstalled, estimators, fit, get_estimator
from irtbench.model import extremes

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["epochs=200", "device=cpu"]`` -> ``{"epochs": 200, "device": "cpu"}``."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {pair!r} is not of the form KEY=VALUE")
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


# -- irtbench list ---------------------------------------------------------------------------
def command_list(args: argparse.Namespace) -> int:
    rows = []
    for name in estimators():
        cls = get_estimator(name)
        available = cls.available()
        rows.append(
            {
                "estimator": name,
                "backend": cls.backend,
                "installed": "yes" if available else f"no: pip install 'irtbench[{cls.extra}]'",
                "devices": ",".join(cls.devices()) if available else "-",
                "description": cls.summary,
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return EXIT_OK


# -- irtbench fit ----------------------------------------------------------------------------
def estimates_table(table_students: list[str], table_questions: list[str], result: Any,
                    responses: np.ndarray) -> pd.DataFrame:
    """One row per student and per question: kind, label, estimate, se, extreme."""
    extreme_students, extreme_questions = extremes(responses)

    def block(kind: str, labels: list[str], estimate: np.ndarray, se: np.ndarray | None,
              extreme: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "kind": kind,
                "label": labels,
                "estimate": estimate,
                "se": se if se is not None else np.nan,
                "extreme": extreme,
            }
        )

    return pd.concat(
        [
            block("student", table_students, result.skill, result.skill_se, extreme_students),
            block("question", table_questions, result.difficulty, result.difficulty_se,
                  extreme_questions),
        ],
        ignore_index=True,
    )


def command_fit(args: argparse.Namespace) -> int:
    table = load_responses(args.file)
    options = parse_options(args.option)
    if args.device is not None:
        options["device"] = args.device
    cls = get_estimator(args.estimator)
    if "device" in options and "device" not in cls.defaults:
        raise UsageError(f"estimator {args.estimator!r} has no device option")
    result = fit(table.responses, estimator=args.estimator, **options)
    out = estimates_table(table.students, table.questions, result, table.responses)
    out.to_csv(args.out, index=False)

    responses = table.responses
    n_students, n_questions = responses.shape
    observed = np.isfinite(responses).mean()
    n_extreme = int(out.loc[out.kind == "student", "extreme"].sum())
    n_extreme_q = int(out.loc[out.kind == "question", "extreme"].sum())
    difficulty = result.difficulty - result.difficulty.mean()
    print(f"{args.file}: {n_students} students x {n_questions} questions, "
          f"{observed:.1%} observed, {np.nanmean(responses):.1%} correct")
    print(f"extreme (all right or all wrong): {n_extreme} student(s), {n_extreme_q} question(s); "
          "their estimates are not finite ML estimates (flagged in the file)")
    print(f"{result.estimator} on {result.device}: {result.seconds:.2f} s, "
          f"{result.n_iter} iterations, final loss {result.final_loss:.5g}")
    print(f"difficulty (centred): min {difficulty.min():.2f}, max {difficulty.max():.2f}; "
          f"skill sd {np.std(result.skill):.2f}")
    print(f"wrote {len(out)} estimates to {args.out}")
    return EXIT_OK


# -- argument parsing -----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="irtbench",
        description="Benchmark and compare estimators of the Rasch model "
        "P(correct) = sigmoid(skill - difficulty) across PyTorch, JAX and NumPyro.",
        epilog="Exit codes: 0 ok, 1 a check found a regression, 2 bad usage or unusable input. "
        "Run 'irtbench COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"irtbench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list", help="list the estimators, whether they are installed, and their devices",
        description="List every registered estimator, its backend, whether that backend is "
        "installed (and the pip extra that installs it), and the devices it can use here.",
    )
    listing.set_defaults(handler=command_list)

    fitting = commands.add_parser(
        "fit", help="fit a Rasch model to a CSV of responses and write the estimates",
        description="Fit a Rasch model to real data. FILE is a wide CSV (rows = students, "
        "columns = questions, header = question labels, blank/NA = missing; a first column "
        "named id/student/person is taken as student labels) or a long CSV with the columns "
        "student,question,response. Writes one row per student and per question: kind, label, "
        "estimate, se (where the estimator has one) and extreme (all answers right or all "
        "wrong: no finite ML estimate).",
    )
    fitting.add_argument("file", metavar="FILE.csv", help="the responses (0/1, blank = missing)")
    fitting.add_argument("--estimator", default="torch-adam",
                         help="estimator name, see 'irtbench list' (default: %(default)s)")
    fitting.add_argument("--out", default="estimates.csv", type=Path,
                         help="where to write the estimates (default: %(default)s)")
    fitting.add_argument("--device", default=None,
                         help="auto, cpu, cuda or cuda:N (default: the estimator's, auto)")
    fitting.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                         help="an estimator option, e.g. -o epochs=2000 (repeatable)")
    fitting.set_defaults(handler=command_fit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``irtbench`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, ValueError, FileNotFoundError, BackendNotInstalled) as error:
        print(f"irtbench {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"irtbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

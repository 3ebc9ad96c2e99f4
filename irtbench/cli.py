"""The ``irtbench`` command.

Exit codes: 0 success; 1 a check found a regression; 2 bad usage or unusable input
(one line on stderr naming the problem).
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from irtbench import devices, harness
from irtbench.csvio import (
    LONG_COLUMNS,
    ExtraNotInstalled,
    ResponseTable,
    check_output,
    first_few,
    load_responses,
    with_unobserved,
    write_csv,
)
from irtbench.estimates import COLUMN_STEMS, ORIGINS, estimates_table, part_columns, read_items
from irtbench.estimators import BackendNotInstalled, Fit, estimators, fit, get_estimator
from irtbench.estimators.options import markdown as options_markdown
from irtbench.models import MODELS, Model, get_model
from irtbench.models.twopl import RUNAWAY_LIMIT
from irtbench.responses import parse_size
from irtbench.results import IncompatibleResults
from irtbench.scoring import METHODS
from irtbench.version import __version__

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_NO_FIT = 0, 1, 2, 3


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


def _threads(text: str) -> int | None:
    """``--threads``: ``auto`` (None) or a positive integer."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--threads {text!r} is neither auto nor a number") from None


# -- irtbench list ---------------------------------------------------------------------------
def option_tables(names: Sequence[str]) -> str:
    """The Markdown option tables of ``names``, from their declarations (docs/options.md's)."""
    return "\n\n".join(options_markdown(name, get_estimator(name).spec) for name in names)


#: the widest line ``irtbench list`` prints
LIST_WIDTH = 100


def wrapped_table(rows: list[dict[str, str]], width: int = LIST_WIDTH) -> str:
    """``rows`` as left-aligned columns under their keys, the last column wrapped (continued
    under itself) so that no line is wider than ``width``."""
    keys = list(rows[0])
    widths = [max(len(key), *(len(row[key]) for row in rows)) for key in keys[:-1]]
    indent = sum(widths) + 2 * len(widths)
    last = max(width - indent, 20)

    def line(cells: list[str]) -> list[str]:
        head = "".join(cell.ljust(w + 2) for cell, w in zip(cells, widths))
        tail = textwrap.wrap(cells[-1], last, break_on_hyphens=False) or [""]
        return [(head + tail[0]).rstrip()] + [" " * indent + more for more in tail[1:]]

    lines = line(keys)
    for row in rows:
        lines += line([row[key] for key in keys])
    return "\n".join(lines)


def command_list(args: argparse.Namespace) -> int:
    if args.options is not None:
        names = _comma_list(args.options, str, "--options") if args.options else estimators()
        for name in names:
            get_estimator(name)  # an unknown name: one line listing the valid ones
        print(option_tables(names))
        return EXIT_OK
    rows, missing = [], []
    for name in estimators():
        cls = get_estimator(name)
        available = cls.available()
        if not available:
            missing.append(f"{name} is not installed; install it with: {cls.install_command()}")
        rows.append(
            {
                "estimator": name,
                "models": ",".join(cls.models),
                "backend": cls.backend,
                "installed": "yes" if available else "no*",
                "devices": ",".join(cls.devices()) if available else "-",
                "description": cls.summary,
            }
        )
    print(wrapped_table(rows))
    for note in missing:  # the install commands below the table, wrapped alike
        print("\n".join(textwrap.wrap("* " + note, LIST_WIDTH, subsequent_indent="  ",
                                       break_long_words=False, break_on_hyphens=False)))
    return EXIT_OK


def print_notes(path: Path | str, table: ResponseTable) -> None:
    """The notes of :func:`~irtbench.csvio.load_responses` (the rows and columns with no
    observed answer it left out, the columns of a long file it ignored) on stderr, one line
    each; printed once a command has done its work, so that an error stays its only line."""
    for note in table.notes:
        print(f"note: {path}: {note}", file=sys.stderr)


# -- irtbench fit ----------------------------------------------------------------------------
def origin_line(result: Fit, origin: str, students: pd.DataFrame, questions: pd.DataFrame
                ) -> str:
    """The summary's line on how the printed and written estimates are identified."""
    skill = students.filter(regex=r"^skill_\d+$") if "skill_1" in students else students.estimate
    where = (f"mean skill {np.nanmean(skill.to_numpy()):.2f}, mean difficulty "
             f"{questions.estimate.mean():.2f} over the non-extreme ones")
    if origin == "estimator":
        hint = ("" if "skill_1" in students else
                "; --origin mean-difficulty shifts both to a mean difficulty of 0")
        return (f"origin: {result.estimator}'s own identification, as irtbench.fit returns it "
                f"({where}){hint}")
    return f"origin: mean-difficulty, the same for every estimator ({where})"


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


#: the item priors a runaway warning suggests, at the usual values (BILOG-MG's slope prior,
#: log a ~ N(0, 0.5^2), as a density of log a or, as BILOG-MG takes it, of a; a normal prior of
#: SD 3 on the intercept d, as mirt's): each estimator takes those its spec lists
ITEM_PRIORS = {"prior_log_a_sd": 0.5, "prior_a_lognormal_sd": 0.5, "prior_d_sd": 3}


def prior_advice(args: argparse.Namespace, result: Fit) -> str | None:
    """The command that refits with item priors, for a fit whose items ran away: the fit's own
    estimator with the priors it takes for this model and the user's options, else the first
    installed marginal-likelihood estimator (declared ``objective``) that takes them; only
    priors not already given and only a command whose options the estimator accepts for this
    model. None when there is none to suggest (every prior the estimator takes was given, or
    no estimator takes them for this model)."""
    marginal = [n for n in estimators(available_only=True)
                if get_estimator(n).objective == "marginal"]
    for name in dict.fromkeys([result.estimator, *marginal]):
        own = name == result.estimator
        given = dict(result.options) if own else {"model": result.model}
        takes = [key for key in ITEM_PRIORS if key in get_estimator(name).spec]
        if own and takes and all(given.get(key) is not None for key in takes):
            return None  # the priors were given and items still ran away: no advice
        proposal = {key: ITEM_PRIORS[key] for key in takes if given.get(key) is None}
        if not proposal:
            continue
        try:
            get_estimator(name)(**{**given, **proposal}).resolved_options()
        except ValueError:  # not for this model
            continue
        words = ["irtbench", "fit", str(args.file), "--estimator", name, "--model", result.model]
        if own:
            words += [word for pair in args.option for word in ("-o", pair)]
            words += ["--device", args.device] if args.device is not None else []
        words += [word for key, value in proposal.items() for word in ("-o", f"{key}={value}")]
        out = Path(args.out)
        return shlex.join(words + ["--out", str(out.with_name(f"{out.stem}-prior{out.suffix}"))])
    return None


def command_fit(args: argparse.Namespace) -> int:
    out = check_output(args.out, force=args.force)
    options = parse_options(args.option)
    if args.device is not None:
        options["device"] = args.device
    if args.model is not None:
        options["model"] = args.model
    chosen = get_estimator(args.estimator)(**options)  # an unknown name: one line, the nearest
    chosen.require_backend()  # the backend (a peer's interpreter: its option), before the file
    chosen.resolved_options()  # the options and the device, before the file
    if (args.origin == "mean-difficulty" and options.get("model") in MODELS
            and len(get_model(str(options["model"])).skill_shape(1)) > 1):
        raise ValueError(f"--origin mean-difficulty shifts scalar skills; the skills of the "
                         f"{options['model']} model are vectors: use --origin estimator")
    table = load_responses(args.file)
    try:
        result = fit(table.responses, estimator=args.estimator, **options)
    except ValueError as error:  # what the file holds cannot be fitted: name the file
        raise ValueError(f"{args.file}: {error}") from None
    estimates = estimates_table(table, result, args.origin)
    write_csv(estimates, out)

    responses = table.responses
    n_students, n_questions = responses.shape
    estimated = ~estimates.get("unobserved", pd.Series(False, index=estimates.index))
    students = estimates[(estimates.kind == "student") & ~estimates.extreme & estimated]
    questions = estimates[(estimates.kind == "question") & ~estimates.extreme & estimated]
    n_extreme = n_students - len(students)
    print(f"{args.file}: {n_students} students x {n_questions} questions, "
          f"{np.isfinite(responses).mean():.1%} observed, {np.nanmean(responses):.1%} correct")
    labels = (f"column {table.label_column!r}" if table.label_column is not None
              else "none in the file: students numbered by row from 0")
    print(f"student labels: {labels}")
    print(f"extreme (all right or all wrong): {n_extreme} student(s), "
          f"{n_questions - len(questions)} question(s); flagged in the file, left out below")
    print(f"{result.estimator} on {result.device}: {result.seconds:.2f} s, "
          f"{result.n_iter} iterations, final loss {result.final_loss:.5g}")
    if result.diagnostics:  # convergence flags; r-hat, ESS and divergences of NUTS
        print("diagnostics: " + ", ".join(f"{key} {_short(value)}"
                                          for key, value in result.diagnostics.items()))
    print(origin_line(result, args.origin, students, questions))
    skills = students.filter(regex=r"^skill_\d+$")  # D columns of a multidimensional model
    spread = (" ".join(f"{sd:.2f}" for sd in skills.std(ddof=0)) if len(skills.columns)
              else f"{students.estimate.std(ddof=0):.2f}")
    print(f"{result.model} model; difficulty: min {questions.estimate.min():.2f}, max "
          f"{questions.estimate.max():.2f}; skill sd {spread}")
    for name in result.extra_items:
        if name not in questions:  # a matrix of columns (the M2PL's loadings)
            stem, width = COLUMN_STEMS.get(name, name), np.shape(result.extra_items[name])[1]
            print(f"{name}: the columns {stem}_1 ... {stem}_{width} of the file")
            continue
        values = questions[name]
        print(f"{name}: min {values.min():.2f}, median {values.median():.2f}, max "
              f"{values.max():.2f}; median SE {questions[f'{name}_se'].median():.2f}")
    if "runaway" in estimates:
        runaway = estimates[estimates.runaway.fillna(False).astype(bool)]
        if len(runaway):
            print(f"warning: {len(runaway)} question(s) ran away ({first_few(list(runaway.label))}: a "
                  f"slope a or intercept d = -ab beyond +/-{RUNAWAY_LIMIT:g}, or an SE of a above "
                  f"{RUNAWAY_LIMIT:g}): the likelihood keeps rising along them, the data do not "
                  "identify them; the fit is not converged."
                  + (f" Priors help: {advice}" if (advice := prior_advice(args, result)) else ""),
                  file=sys.stderr)
    if "flat" in estimates:
        warn_flat(estimates)
    print_notes(args.file, table)
    if table.unobserved:
        print(f"not estimated (no observed answer): {len(table.unobserved.students)} "
              f"student(s), {len(table.unobserved.questions)} question(s); written with empty "
              "estimates, flagged in the file's unobserved column")
    print(f"wrote {len(estimates)} estimates to {out}")
    return EXIT_OK


# -- irtbench score --------------------------------------------------------------------------
def scores_table(table: ResponseTable, result: Any, method: str) -> pd.DataFrame:
    """One row per respondent of the file: ``label``, ``skill`` and ``se`` (a model of D
    skills: ``skill_1``, ``skill_1_se``, ... as in the estimates file), ``extreme``,
    ``n_answered`` and ``method``; the respondents with no observed answer at their place, not
    scored (skill and SE empty, ``n_answered`` 0), flagged in the column ``unobserved``."""
    skill = result.skill
    parts = ({"skill": skill, "se": result.skill_se} if skill.ndim == 1
             else part_columns("skill", skill, result.skill_se))
    scores = pd.DataFrame({"label": table.students, **parts, "extreme": result.extreme,
                           "n_answered": result.n_answered, "method": method})
    if table.unobserved.students:
        scores = with_unobserved(scores, table.unobserved.students, n_answered=0,
                                 method=method)
    return scores


def given_prior(text: str, vector: bool) -> Any:
    """``--prior MEAN,SD``: the skills' normal prior of a model of one skill."""
    from irtbench.scoring import SkillPrior

    if vector:
        raise UsageError("--prior MEAN,SD is for a model of one skill; the M2PL's prior is "
                         "the mean vector and covariance of the fit's skills")
    values = _comma_list(text, float, "--prior")
    if len(values) != 2 or not values[1] > 0:
        raise UsageError(f"--prior {text!r}: give MEAN,SD with SD > 0, e.g. --prior 0,1")
    return SkillPrior(values[0], values[1])


def command_score(args: argparse.Namespace) -> int:
    from irtbench.scoring import SkillPrior, score

    out = check_output(args.out, force=args.force)
    calibrated = read_items(args.items)
    model = get_model(calibrated.model)
    vector = len(model.skill_shape(1)) > 1
    method = args.method or ("map" if vector else "eap")
    if vector and method != "map":
        raise UsageError(f"{args.items} holds an {model.title} fit, scored by MAP only "
                         f"(--method map), not {method}")
    table = load_responses(args.data)
    position = {label: j for j, label in enumerate(calibrated.labels)}
    unknown = [q for q in table.questions if q not in position]
    if unknown:
        raise UsageError(f"{args.data}: {len(unknown)} question(s) not in {args.items}: "
                         f"{first_few(unknown)}; score only the items it calibrated")
    columns = [position[q] for q in table.questions]
    items = {name: values[columns] for name, values in calibrated.items.items()}
    prior = (SkillPrior.of_skills(calibrated.skill) if args.prior is None
             else given_prior(args.prior, vector))
    result = score(model, items, table.responses, method=method, prior=prior)
    write_csv(scores_table(table, result, method), out)

    n_rows, n_questions = table.responses.shape
    print(f"{args.data}: {n_rows} respondents x {n_questions} questions, "
          f"{np.isfinite(table.responses).mean():.1%} observed; items from {args.items} "
          f"({model.title}, {len(calibrated.labels)} calibrated)")
    in_file = set(table.questions) | {label for _, label in table.unobserved.questions}
    absent = [label for label in calibrated.labels if label not in in_file]
    if absent:
        print(f"{len(absent)} calibrated item(s) not in {args.data}, not used: "
              f"{first_few(absent)}")
    not_estimated = [q for q in table.questions if calibrated.unobserved[position[q]]]
    if not_estimated:
        print(f"{len(not_estimated)} item(s) not estimated in {args.items} (no observed answer "
              f"in the data of its fit) left out: {first_few(not_estimated)}")
    if result.n_left_out > len(not_estimated):
        print(f"{result.n_left_out - len(not_estimated)} item(s) with a non-finite estimate in "
              f"{args.items} left out")
    if method != "ml":
        spread = (f"N({prior.mean:.3f}, {prior.sd_or_cov:.3f}^2)" if not vector else
                  f"N(mean, covariance) of {len(prior.mean)} dimensions")
        print(f"prior: {spread}, " + ("the skills of " + str(args.items) if args.prior is None
                                      else "--prior"))
    finite = result.skill[np.isfinite(result.skill).reshape(n_rows, -1).all(axis=1)]
    print(f"{method.upper()}: {len(finite)} finite skill(s), mean "
          f"{np.mean(finite, axis=0).round(3)}, SD {np.std(finite, axis=0).round(3)}; median "
          f"SE {np.median(result.skill_se, axis=0).round(3)}; {int(result.extreme.sum())} "
          "respondent(s) all right or all wrong (flagged)")
    print_notes(args.data, table)
    print(f"wrote {n_rows + len(table.unobserved.students)} scores to {out}")
    return EXIT_OK


def warn_flat(estimates: pd.DataFrame) -> None:
    """One line on stderr counting the flat questions
    (:func:`~irtbench.models.twopl.flat_items`) and naming the first five, if any."""
    flat = estimates[estimates.flat.fillna(False).astype(bool)]
    if len(flat):
        print(f"warning: {len(flat)} question(s) are flat ({first_few(list(flat.label))}: a slope near 0, "
              "the difficulty's 95% interval, estimate +/- 1.96 SE, holding every student's "
              "skill): the data do not locate their difficulties (flagged in the file's flat "
              "column); read their slopes and intercepts (d = -ab), or leave them out. Not "
              "runaways: a finite optimum.", file=sys.stderr)


# -- irtbench run ----------------------------------------------------------------------------
def _comma_list(text: str, parse: Any, what: str) -> list[Any]:
    try:
        return [parse(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError as error:
        raise UsageError(f"{what} {text!r}: {error}") from None


def print_summary(table: pd.DataFrame) -> None:
    summary = harness.summarize(table)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(harness.mark_runaways(summary).to_string(index=False,
                                                       float_format=lambda x: f"{x:.3g}"))
    if summary.n_runaway.fillna(0).gt(0).any():
        print(harness.RUNAWAY_NOTE)
    problems = table[table.status != "ok"]
    for row in problems.itertuples():
        print(f"{row.status}: {row.estimator} {row.n_students}x{row.n_questions} "
              f"seed={row.seed}: {row.reason}")


def command_run(args: argparse.Namespace) -> int:
    sizes = harness.QUICK_SIZES if args.quick else harness.DEFAULT_SIZES
    if args.sizes:
        sizes = _comma_list(args.sizes, parse_size, "--sizes")
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else harness.DEFAULT_SEEDS)
    models = _comma_list(args.model, str.lower, "--model")  # 2PL as 2pl
    names = _comma_list(args.estimators, str, "--estimators") if args.estimators else None
    missing = _comma_list(args.missing or "0", float, "--missing")
    like = designs_like(args, models) if args.like is not None else None
    # the values themselves are checked once, by harness.sweep, before any work
    devices.resolve(args.device, devices.cuda_device_count(), "torch")  # fails at once, naming
    # the problem, without CUDA
    out = args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    threads = _threads(args.threads)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        table = harness.sweep(
            sizes, names, seeds=seeds, missing=missing, models=models, device=args.device, out=out,
            resume=args.resume, force=args.force, time_budget=args.time_budget,
            options=parse_options(args.option), after_row=rows.append,
            isolate=not args.in_process, threads=threads, jobs=args.jobs,
            repeat=args.repeat, scheduler=args.scheduler, like=like,
            items=_comma_list(args.items, int, "--items") if args.items else (),
            quick=args.quick,
            on_start=lambda: print(f"results go to {out}/ (results.csv is written fit by fit)",
                                   file=sys.stderr),
        )
    except KeyboardInterrupt:
        print(f"interrupted: {len(rows)} finished row(s) kept in {out}/results.csv; "
              f"finish with: irtbench run --resume --out {out} (and the same options)",
              file=sys.stderr)
        return 130
    print_summary(table)
    print(f"{len(rows)} fit(s) in {time.perf_counter() - start:.1f} s; results in {out}/")
    if not (table.status == "ok").any():
        print(f"no fit succeeded ({len(table)} cell(s) failed or were skipped); see the "
              f"reasons above and in {out}/results.csv", file=sys.stderr)
        return EXIT_NO_FIT
    draw(out, args.svg)
    return EXIT_OK


def designs_like(args: argparse.Namespace, models: list[str]) -> dict[str, Any]:
    """``--like FILE``: per model, the design of data like the file's (:mod:`irtbench.like`),
    printed; ``--sizes`` and ``--missing`` are the file's then, and refused."""
    from irtbench.like import design_like

    if args.sizes or args.missing is not None or args.quick:
        raise UsageError("--like takes the file's shape and missing cells: leave out --sizes, "
                         "--missing and --quick")
    for model in models:
        get_model(model)  # an unknown name: one line naming the models
    table = load_responses(args.like)
    designs = {model: design_like(table.responses, model, source=str(args.like))
               for model in models}
    print_notes(args.like, table)  # once every design is made: an error stays one line
    for model, design in designs.items():
        n_students, n_questions = design.shape
        print(f"like {args.like}: {n_students} x {n_questions}, {design.missing:.1%} missing; "
              f"{model} items and skill SD {design.skill_sd:.3g} from mml-em's fit "
              f"(converged {design.converged}; {design.adjusted} item(s) clipped to be usable "
              "as truth)", file=sys.stderr)
    return designs


def draw(folder: Path, svg: bool) -> None:
    from irtbench import plots

    written = plots.plot_all(folder, ("png", "svg") if svg else ("png",))
    report = plots.write_report(folder)
    print(f"figures: {', '.join(p.name for p in written)}; report: {report}")


def command_plot(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise UsageError(f"no such results folder: {args.folder}")
    draw(args.folder, args.svg)
    return EXIT_OK


# -- irtbench compare -----------------------------------------------------------------------
def command_compare(args: argparse.Namespace) -> int:
    from irtbench.compare import compare, write_comparison

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.force:
        raise UsageError(f"--out {args.out} exists and is not empty; choose another folder or "
                         "overwrite its comparison with --force")
    if args.folds < 2:
        raise UsageError(f"--folds {args.folds}: at least 2 folds are needed")
    table = load_responses(args.file)
    estimators_named = (_comma_list(args.estimators, str, "--estimators")
                        if args.estimators else None)
    models = _comma_list(args.models.lower(), str, "--models") if args.models else None
    for name in estimators_named or ():
        get_estimator(name)  # an unknown name: one line listing the valid ones
    start = time.perf_counter()
    result = compare(table.responses, estimators=estimators_named, models=models,
                     folds=args.folds, split=args.split, time_budget=args.time_budget or None,
                     seed=args.seed, options=parse_options(args.option), scoring=args.scoring,
                     threads=_threads(args.threads), progress=None)
    seconds = time.perf_counter() - start
    n_students, n_questions = table.responses.shape
    settings = (f"{args.file}: {n_students} x {n_questions}, "
                f"{np.isfinite(table.responses).mean():.1%} observed; {args.folds} folds over "
                f"the {'observed cells' if args.split == 'cells' else 'respondents'}, seed "
                f"{args.seed}" + (f", held-out rows scored by {args.scoring.upper()}"
                                  if args.split == "rows" else ""))
    written = write_comparison(result, args.out, source=str(args.file), seconds=seconds,
                               settings=settings)
    shown = [c for c in ("estimator", "model", "status", "heldout_logloss", "heldout_logloss_sd",
                         "imv", "brier", "auc", "aic", "bic", "seconds", "converged",
                         "n_runaway")
             if c in result.summary]
    print(settings)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(result.summary[shown].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    for row in result.summary[result.summary.status != "ok"].itertuples():
        print(f"{row.status}: {row.estimator} {row.model}: {row.reason}")
    print(result.verdict)
    print_notes(args.file, table)
    print(f"compared in {seconds:.1f} s; wrote {', '.join(p.name for p in written)} to "
          f"{args.out}/")
    return EXIT_OK


# -- irtbench subset ------------------------------------------------------------------------
def command_subset(args: argparse.Namespace) -> int:
    from irtbench.subset import get_strategy, subset, write_subset
    from irtbench.subset.report import best_at_each_k, check_folder

    check_folder(args.out, force=args.force)
    if args.folds < 2:
        raise UsageError(f"--folds {args.folds}: at least 2 folds are needed")
    sizes = _comma_list(args.items, int, "--items")
    if any(k < 1 for k in sizes) or not sizes:
        raise UsageError(f"--items {args.items!r}: each size must be a positive integer")
    strategies = _comma_list(args.strategies, str, "--strategies") if args.strategies else None
    for name in strategies or ():
        get_strategy(name)  # an unknown name: one line naming the strategies
    names = _comma_list(args.estimators, str, "--estimators") if args.estimators else None
    for name in names or ():
        get_estimator(name)  # an unknown name: one line listing the valid ones
    models = _comma_list(args.models.lower(), str, "--models") if args.models else None
    for model in models or ():
        get_model(model)
    table = load_responses(args.file)
    start = time.perf_counter()
    result = subset(table.responses, estimators=names, models=models, items=sizes,
                    strategies=strategies, folds=args.folds, seed=args.seed,
                    time_budget=args.time_budget or None, options=parse_options(args.option),
                    scoring=args.scoring, threads=_threads(args.threads), progress=None)
    seconds = time.perf_counter() - start
    n_students, n_questions = table.responses.shape
    settings = (f"{args.file}: {n_students} x {n_questions}, "
                f"{np.isfinite(table.responses).mean():.1%} observed; {args.folds} folds of "
                f"rows, seed {args.seed}; k = {', '.join(map(str, sorted(set(result.summary.k))))}"
                + (f"; skills scored by {args.scoring.upper()}" if args.scoring else ""))
    written = write_subset(result, args.out, source=str(args.file), seconds=seconds,
                           settings=settings, force=args.force)
    print(settings)
    for row in best_at_each_k(result.summary).itertuples():
        print(f"best at k={row.k}: {row.estimator} {row.model}, {row.strategy}, {row.method}: "
              f"mean absolute error {100 * row.mae:.2f} points (sd over folds "
              f"{100 * row.mae_sd:.2f}), Kendall tau {row.kendall_tau:.3f}")
    print_notes(args.file, table)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    problems = result.summary[result.summary.status != "ok"]
    for row in problems.drop_duplicates(["estimator", "model", "strategy", "reason"]).itertuples():
        print(f"{row.status}: {row.estimator} {row.model} {row.strategy}: {row.reason}")
    print(f"measured in {seconds:.1f} s; wrote {', '.join(p.name for p in written)} to "
          f"{args.out}/")
    if not (result.folds.status == "ok").any():
        print("nothing was measured: every calibration or strategy failed or was skipped "
              f"(the reasons above and in {args.out}/subset.csv)", file=sys.stderr)
        return EXIT_NO_FIT
    return EXIT_OK


# -- irtbench check --------------------------------------------------------------------------
def command_check(args: argparse.Namespace) -> int:
    from irtbench.baseline import CROSS_Z, SAME_RTOL, check

    for folder in (args.folder, args.baseline):
        if not folder.is_dir():
            raise UsageError(f"no such results folder: {folder}")
    result = check(args.folder, args.baseline, mode=args.mode)
    rule = (f"{SAME_RTOL:.1%} of the baseline value" if result.mode == "same"
            else f"{CROSS_Z} x the baseline's seed-to-seed sd")
    print(f"compared {result.cells} cell(s) of {args.folder} with {args.baseline} "
          f"({result.mode}-platform tolerance: {rule})")
    for warning in result.warnings:
        print(f"warning: {warning}")
    if result.passed:
        print("no recovery metric got worse beyond tolerance")
        return EXIT_OK
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(result.regressions.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"{len(result.regressions)} metric(s) got worse beyond tolerance")
    return EXIT_REGRESSION


# -- argument parsing -----------------------------------------------------------------------
#: every model with its formula, for the help texts
MODEL_FORMULAS = "; ".join(f"{name}: {get_model(name).formula}" for name in MODELS)


def in_words(words: Sequence[str], last: str = "or") -> str:
    """``["a", "b", "c"]`` -> ``"a, b or c"``."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


#: the models by their titles, ``Rasch, 2PL, ... or M2PL``, for the help texts
MODEL_TITLES = in_words([get_model(name).title for name in MODELS])
#: the models with item parameters besides the difficulty, and those parameters
WITH_MORE_ITEMS = [name for name in MODELS if len(get_model(name).item_parameters) > 1]
MORE_ITEM_PARAMETERS = list(dict.fromkeys(
    part for name in WITH_MORE_ITEMS for part in get_model(name).item_parameters[1:]))
#: the models with a rule for flat questions (:meth:`irtbench.models.base.Model.flat`)
WITH_FLAT_RULE = [name for name in MODELS if type(get_model(name)).flat is not Model.flat]
#: the help of every command's argument of responses
RESPONSES_HELP = ("0/1, blank = missing: a CSV or Parquet file, wide or long (see 'irtbench "
                  "fit --help')")
#: the files every command reads responses from (:func:`irtbench.csvio.load_responses`)
DATA_FILES = (
    "a CSV file, or a Parquet file (.parquet, .pq; needs pip install 'irtbench[parquet]'), "
    "wide (rows = students, columns = questions, header = question labels, blank/NA = "
    "missing; a first column named id/student/person is taken as student labels) or long "
    "(one row per answer, a column for each of the respondent, named "
    + "/".join(LONG_COLUMNS["respondent"]) + ", the item, "
    + "/".join(LONG_COLUMNS["item"]) + ", and the answer, "
    + "/".join(LONG_COLUMNS["answer"]) + ", in any case; other columns ignored). Answers are "
    "0/1 (0.0/1.0); students and questions with no observed answer are left out with a note.")


def add_fitting_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that fits estimators on a user's data under one budget
    (``compare``, ``subset``): the budget, the estimators' options, their threads."""
    parser.add_argument("--time-budget", type=float, default=600.0, metavar="SECONDS",
                        help="for the whole command: the fits left when it is spent are "
                        "skipped with that reason (default: %(default)s; 0 = no limit)")
    parser.add_argument("--option", "-o", action="append", default=[],
                        metavar="[NAME:]KEY=VALUE", help="an estimator option, as for "
                        "'irtbench run' (repeatable)")
    parser.add_argument("--threads", default="auto", metavar="N",
                        help="threads of every fit, pinned (default: auto, the cores other "
                        "processes leave idle)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="irtbench",
        description="Benchmark and compare estimators of item response models ("
        + MODEL_FORMULAS + "), across PyTorch, JAX and NumPyro and against the field's own "
        "packages.",
        epilog="Exit codes: 0 ok, 1 a check found a regression, 2 bad usage or unusable input, "
        "3 a run in which no fit succeeded. "
        "Run 'irtbench COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"irtbench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list", help="list the estimators, the models they fit, whether they are installed, "
        "and their devices",
        description="List every registered estimator, the models it fits, its backend, "
        "whether that backend is "
        "installed (and the pip extra that installs it), and the devices it can use here.",
    )
    listing.add_argument("--options", nargs="?", const="", default=None, metavar="NAMES",
                         help="print the options of the comma-separated estimators (all when "
                         "no name is given) as Markdown tables: name, default, constraint, "
                         "meaning, from each estimator's declarations")
    listing.set_defaults(handler=command_list)

    fitting = commands.add_parser(
        "fit", help=f"fit a {MODEL_TITLES} model to a file of responses and write the "
        "estimates",
        description=f"Fit a {MODEL_TITLES} model (--model; the Rasch model by default) to "
        "real data. FILE is " + DATA_FILES + " Writes one row per student and per question "
        "of FILE: kind, label, "
        "estimate, se (where the estimator has one) and extreme (all answers right or all "
        "wrong: no finite ML estimate); under the "
        + in_words([get_model(name).title for name in WITH_MORE_ITEMS], "and")
        + " also each question's other parameters (" + ", ".join(MORE_ITEM_PARAMETERS)
        + "; a vector one as a column per coordinate: "
        + ", ".join(f"{stem}_1 ... {stem}_D" for part, stem in COLUMN_STEMS.items()
                    if part in MORE_ITEM_PARAMETERS)
        + ") with their SEs (NAME_se) and runaway (estimates that diverged); under the "
        + in_words([get_model(name).title for name in WITH_FLAT_RULE], "and")
        + ", from an estimator with SEs, flat (a slope near 0: a difficulty whose 95% interval "
        "holds every student's skill, which the data do not locate); "
        "origin, how the estimates are identified (--origin); and, when FILE had students or "
        "questions with no observed answer, unobserved (True on their rows, written with "
        "empty estimates: not fitted). The file is written at once at "
        "the end (nothing partial on failure); an existing file is kept unless --force.",
    )
    fitting.add_argument("file", metavar="FILE.csv", help=RESPONSES_HELP)
    fitting.add_argument("--estimator", default="torch-adam",
                         help="estimator name, see 'irtbench list' (default: %(default)s)")
    fitting.add_argument("--out", default="estimates.csv", type=Path,
                         help="where to write the estimates (default: %(default)s; an existing "
                         "file is kept unless --force)")
    fitting.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    fitting.add_argument("--model", choices=MODELS, default=None, type=str.lower,
                         help="the model, in any case (default: rasch): " + MODEL_FORMULAS
                         + "; 'irtbench list' shows which estimators fit which")
    fitting.add_argument("--origin", choices=ORIGINS, default=next(iter(ORIGINS)),
                         help="; ".join(f"{key}: {doc}" for key, doc in ORIGINS.items())
                         + " (default: %(default)s)")
    fitting.add_argument("--device", default=None,
                         help="auto, cpu, cuda or cuda:N (default: the estimator's, auto)")
    fitting.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                         help="an estimator option, e.g. -o epochs=2000 (repeatable)")
    fitting.set_defaults(handler=command_fit)

    scoring = commands.add_parser(
        "score", help="skills (with SEs) of new respondents under the items of a fit",
        description="Score new respondents under item parameters held fixed: ITEMS.csv is an "
        "estimates file that 'irtbench fit' wrote (its model is read from its columns: "
        "discrimination for the 2PL, guessing for the 3PL, ceiling for the 4PL, intercept and "
        "loading_1 ... for the M2PL), DATA.csv the respondents' answers in any layout 'fit' "
        "reads. Questions are matched by name: each of DATA.csv must be in ITEMS.csv; items "
        "of ITEMS.csv that DATA.csv lacks are not used (a respondent may answer a subset), "
        "and so are those it did not estimate (its unobserved column). "
        "Writes one row per respondent: label, skill, se (the M2PL: skill_1, skill_1_se, "
        "...), extreme (all right or all wrong: ML +/-inf with SE inf), n_answered, method; "
        "and, when DATA.csv had respondents with no observed answer, unobserved (True on "
        "their rows, not scored). "
        "EAP and MAP take the skills of ITEMS.csv as the prior (their mean and SD; the M2PL: "
        "mean vector and covariance). An existing OUT is kept unless --force.",
    )
    scoring.add_argument("items", metavar="ITEMS.csv", type=Path,
                         help="the estimates of 'irtbench fit'")
    scoring.add_argument("data", metavar="DATA.csv", type=Path,
                         help="the respondents' answers, " + RESPONSES_HELP)
    scoring.add_argument("--out", required=True, type=Path,
                         help="where to write the scores (an existing file is kept unless "
                         "--force)")
    scoring.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    scoring.add_argument("--method", choices=METHODS, default=None, type=str.lower,
                         help="eap (posterior mean and SD), map (posterior mode and "
                         "1/sqrt(information + prior precision)) or ml (maximum likelihood, "
                         "1/sqrt(information)) (default: eap; the M2PL: map, its only one)")
    scoring.add_argument("--prior", metavar="MEAN,SD",
                         help="EAP's and MAP's normal prior of the skill (default: the mean and "
                         "SD of the skills in ITEMS.csv; a marginal fit's skills are EAPs, whose "
                         "SD is below that of the N(0, 1) it assumed: --prior 0,1 scores as it "
                         "did)")
    scoring.set_defaults(handler=command_score)

    running = commands.add_parser(
        "run", help="run a benchmark sweep: sizes x estimators x seeds",
        description="Simulate data (the Rasch model and the 2PL by default; --model) for every "
        "size x missing fraction x seed, fit every estimator of that model on it, and record one row per fit in OUT/results.csv (time of the fit "
        "alone, compile time apart, throughput, peak memory, recovery against the truth and the "
        "Cramer-Rao bound), the loss curves in OUT/curves.csv and the environment in "
        "OUT/environment.json. Rows are written as they finish: an interrupted run keeps them "
        "and --resume completes it. Prints a summary table.",
    )
    running.add_argument("--quick", action="store_true",
                         help="a smoke run of about 45 s on an idle 2-core machine: size "
                         + ",".join(f"{n}x{m}" for n, m in harness.QUICK_SIZES)
                         + ", one seed, the default estimators but "
                         + " and ".join(n for n in estimators() if get_estimator(n).in_default_sweep
                                        and not get_estimator(n).in_quick_sweep)
                         + " (name them with --estimators)")
    running.add_argument("--sizes", help="comma-separated STUDENTSxQUESTIONS (default: "
                         + ",".join(f"{n}x{m}" for n, m in harness.DEFAULT_SIZES) + ")")
    running.add_argument("--estimators", help="comma-separated names (default: every installed "
                         "estimator; see 'irtbench list')")
    running.add_argument("--seeds", type=int, help="number of seeds per size (default: "
                         f"{harness.DEFAULT_SEEDS}; 1 with --quick)")
    running.add_argument("--missing", default=None, help="comma-separated fractions of responses "
                         "missing at random (default: 0)")
    running.add_argument("--like", type=Path, metavar="DATA.csv",
                         help="simulate data like this file's (read as by 'irtbench fit'): its "
                         "shape, its missing cells, and item parameters and a skill SD from "
                         "mml-em's fit of each --model to it; the seeds draw skills and answers")
    running.add_argument("--model", default=",".join(harness.DEFAULT_MODELS), help="comma-separated models to simulate "
                         "and fit, of " + ", ".join(MODELS) + " in any case (the 2PL, 3PL and 4PL: skills N(0,1), "
                         "discriminations LogNormal(0, 0.3), the 3PL's floors Beta(6, 16), the "
                         "4PL's ceilings Beta(20, 2)); "
                         "each with the estimators that fit it (default: %(default)s)")
    running.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    running.add_argument("--out", type=Path, help="results folder (default: runs/DATE-TIME)")
    running.add_argument("--resume", action="store_true",
                         help="complete an existing results folder, skipping its finished cells")
    running.add_argument("--force", action="store_true",
                         help="with --resume, accept a folder made in another environment")
    running.add_argument("--time-budget", type=float, default=harness.DEFAULT_TIME_BUDGET,
                         metavar="SECONDS",
                         help="stop a fit after this long and record it as a timeout "
                         "(default: %(default)s; 0 = no limit)")
    running.add_argument("--option", "-o", action="append", default=[], metavar="[NAME:]KEY=VALUE",
                         help="an estimator option for every estimator that has it, or for NAME "
                         "only, e.g. -o torch-adam:epochs=2000 (repeatable)")
    running.add_argument("--threads", default="auto", metavar="N",
                         help="threads (and cores, each fit pinned to them) for every backend "
                         "of every fit (default: auto, the cores of its share that other "
                         "processes leave idle, measured just before the fit)")
    running.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                         help="cells run at once, each in its own worker pinned to its own "
                         "share of the cores (default: %(default)s)")
    running.add_argument("--items", default=None, metavar="K,K,...",
                         help="after each fit, new respondents of the cell's population scored "
                         "from K items under the fit's items (random and most-informative "
                         "items; the weighted mean, p-IRT and gp-IRT of irtbench subset): the "
                         "error of their estimated whole-benchmark accuracy, in accuracy.csv and "
                         "the report (e.g. 25,50,100; default: none)")
    running.add_argument("--repeat", type=int, default=1, metavar="K",
                         help="timed fits per cell after the warm-up; rows keep the median and "
                         "the min and max (default: %(default)s)")
    running.add_argument("--scheduler", metavar="ADDRESS",
                         help="send the cells to this dask.distributed scheduler (e.g. "
                         "tcp://host:8786) instead of running them here; needs irtbench[dask]")
    running.add_argument("--in-process", action="store_true",
                         help="fit every cell in this process instead of a worker process of "
                         "its own each (for debugging; time limits then use SIGALRM and peak "
                         "memory is shared with earlier fits)")
    running.add_argument("--svg", action="store_true", help="also write the figures as SVG")
    running.set_defaults(handler=command_run)

    plotting = commands.add_parser(
        "plot", help="(re)draw the figures and report.md of a results folder",
        description="Draw the comparison figures (recovery, speed, time to accuracy, error "
        "histograms, coverage, memory) and DIR/report.md from the files in DIR alone, so any "
        "old run can be re-plotted.",
    )
    plotting.add_argument("folder", metavar="DIR", type=Path, help="a folder written by 'irtbench run'")
    plotting.add_argument("--svg", action="store_true", help="also write the figures as SVG")
    plotting.set_defaults(handler=command_plot)

    comparing = commands.add_parser(
        "compare", help="which estimator and model for my data? held-out prediction, AIC/BIC, "
        "agreement",
        description="Fit each estimator, for each model it fits, to a response matrix (FILE: "
        "as for 'irtbench fit', wide or long) and compare: held-out prediction over K folds "
        "(mean log-loss per response, Brier score, AUC, each with its SD over folds; "
        "probabilities clipped to [1e-6, 1 - 1e-6], infinite estimates counted), AIC, BIC and "
        "likelihood-ratio tests of the nested models for the marginal-likelihood fits, the "
        "InterModel Vigorish of each fit over the item-means baseline, the agreement of every "
        "pair of estimators' item parameters in a common frame (symmetric), each fit's time, "
        "memory, convergence and runaways, and one sentence naming the best estimator and "
        "model and whether the next best is within the fold-to-fold noise. Writes "
        "DIR/compare.csv, "
        "DIR/agreement.csv, DIR/folds.csv, DIR/tests.csv, figures and DIR/report.md, each "
        "file whole or not at all.",
    )
    comparing.add_argument("file", metavar="FILE.csv", help=RESPONSES_HELP)
    comparing.add_argument("--out", type=Path, default=Path("compare"),
                           help="the folder to write (default: %(default)s; one that exists "
                           "and is not empty is refused unless --force)")
    comparing.add_argument("--force", action="store_true",
                           help="write into a non-empty --out: the files of an earlier "
                           "comparison there are replaced, and those this one does not write "
                           "removed")
    comparing.add_argument("--estimators", help="comma-separated names (default: the sweep's "
                           "default estimators but numpyro-nuts, each with its default models)")
    comparing.add_argument("--models", help="comma-separated models of " + ", ".join(MODELS)
                           + " (default: " + ",".join(harness.DEFAULT_MODELS) + ")")
    comparing.add_argument("--folds", type=int, default=5, metavar="K",
                           help="folds of the held-out prediction (default: %(default)s)")
    comparing.add_argument("--split", choices=("cells", "rows"), default="cells",
                           help="hold out observed cells, or whole respondents (each scored "
                           "from half of its answers, the other half predicted) (default: "
                           "%(default)s)")
    comparing.add_argument("--scoring", choices=METHODS, default="eap",
                           help="with --split rows: how a held-out respondent's skill is "
                           "estimated from its half, under the fit's skill distribution "
                           "(default: %(default)s; the M2PL: map)")
    comparing.add_argument("--seed", type=int, default=0, help="fixes the folds (default: 0)")
    add_fitting_options(comparing)
    comparing.set_defaults(handler=command_compare)

    from irtbench.subset import DEFAULT_ESTIMATORS, DEFAULT_ITEMS, DEFAULT_MODELS, STRATEGIES

    subsetting = commands.add_parser(
        "subset", help="calibrate items on some respondents, score new ones on k items: which "
        "estimator, model, item choice and estimate give the most accurate accuracy",
        description="The efficient-evaluation benchmark (tinyBenchmarks' question): the rows "
        "of FILE (as for 'irtbench fit') are split into K folds; for each fold the items are "
        "calibrated on the other rows by each estimator x model, and each of the fold's rows, "
        "a new respondent, answers k items chosen by each strategy (random; stratified by "
        "difficulty; most information at the calibration population; tinyBenchmarks' "
        "anchor points by K-means of the items' IRT embeddings; adaptive, CAT). Its accuracy "
        "over all items is estimated three ways: the strategy's weighted mean of its k "
        "answers, p-IRT (the other items by their predicted probability) and gp-IRT (their "
        "mix). Writes DIR/subset.csv (one row per estimator x model x strategy x k x method x "
        "fold: mean absolute error, Kendall's tau, seconds to calibrate, select and score), "
        "DIR/summary.csv (mean and SD over folds), DIR/subset.png and DIR/report.md (the best "
        "combination at each k; random selection against it), each file whole or not at all.",
    )
    subsetting.add_argument("file", metavar="FILE.csv",
                            help=RESPONSES_HELP)
    subsetting.add_argument("--out", type=Path, default=Path("subset"),
                            help="the folder to write (default: %(default)s; one that holds "
                            "anything is kept unless --force)")
    subsetting.add_argument("--force", action="store_true",
                            help="write into a folder that holds files, replacing those of an "
                            "earlier run")
    subsetting.add_argument("--estimators", help="comma-separated names (default: "
                            + ",".join(DEFAULT_ESTIMATORS) + ")")
    subsetting.add_argument("--models", help="comma-separated models of " + ", ".join(MODELS)
                            + " (default: " + ",".join(DEFAULT_MODELS) + "; the M2PL needs "
                            "an estimator that fits it: 'irtbench list')")
    subsetting.add_argument("--items", default=",".join(map(str, DEFAULT_ITEMS)),
                            metavar="K,K,...",
                            help="the numbers of items shown (default: %(default)s; those "
                            "above the data's items are left out with a note)")
    subsetting.add_argument("--strategies", metavar="NAMES",
                            help="comma-separated, of " + ", ".join(STRATEGIES)
                            + " (default: all)")
    subsetting.add_argument("--folds", type=int, default=5, metavar="K",
                            help="folds of the rows (default: %(default)s)")
    subsetting.add_argument("--seed", type=int, default=0,
                            help="fixes the folds and the strategies' draws (default: 0)")
    subsetting.add_argument("--scoring", choices=("eap", "map", "ml"), default=None,
                            help="how a new respondent's skill is estimated from its k answers "
                            "(default: EAP under the calibration skill distribution; MAP for "
                            "the M2PL)")
    add_fitting_options(subsetting)
    subsetting.set_defaults(handler=command_subset)

    checking = commands.add_parser(
        "check", help="fail (exit 1) when recovery got worse than in a baseline folder",
        description="Compare the recovery metrics (RMSE, CRB ratios, coverage) of DIR with a "
        "baseline results folder, cell by cell (estimator, size, missing, seed). Exit 1 with a "
        "table of what got worse beyond tolerance, 0 otherwise, 2 for unusable input (no common "
        "cell, missing columns, different simulated data). Tolerance: 0.2% of the baseline "
        "value on the same platform (same device, CPU and versions); half the baseline's "
        "seed-to-seed standard deviation across platforms. Timing is pytest-benchmark's job.",
    )
    checking.add_argument("folder", metavar="DIR", type=Path, help="a folder written by 'irtbench run'")
    checking.add_argument("--baseline", type=Path, default=Path("results/baseline"),
                          help="the reference folder (default: %(default)s)")
    checking.add_argument("--mode", choices=("auto", "same", "cross"), default="auto",
                          help="tolerance: same- or cross-platform; auto compares the two "
                          "environment.json files (default: %(default)s)")
    checking.set_defaults(handler=command_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``irtbench`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, ValueError, FileNotFoundError, FileExistsError, BackendNotInstalled,
            ExtraNotInstalled, IncompatibleResults) as error:
        print(f"irtbench {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"irtbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

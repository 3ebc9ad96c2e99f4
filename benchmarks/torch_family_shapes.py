r"""irtbench beside the torch family (irtorch, torch-measure) on simulated 2PL data at the shapes
that matter, side by side in one run: how long each method takes, how close to the truth it
gets, and so which of each package's methods reaches the best accuracy first, in how many
seconds (issue 32's target: irtbench's best ahead of both packages' best on time to reach the
same accuracy).

**Data.** ``irtbench.simulate(n, J, model="2pl", seed=--seed)`` at each of ``--sizes``
(:data:`SIZES`: 1000 x 50, 10000 x 100, 2000 x 1000 and the leaderboard's 300 x 28659).

**Methods** (:func:`default_methods`), each with its defaults: irtbench's ``mml-em`` (marginal
ML by EM), ``jax-adam`` and ``torch-adam`` (the reference estimator's joint objective, 1000
full-batch Adam steps) and ``numpyro-vi`` (variational Bayes, the counterpart of
torch-measure's SVI); then every estimator of the torch family that fits the 2PL, read from the
registry (:func:`irtbench.estimators._torch_family.members`: irtorch's MML, VAE and JML,
torch-measure's MLE, JML, EM and SVI; those whose environment is missing are left out with
the command that builds it). ``--methods`` names others: an estimator, or an estimator with
options, ``torch-adam[epochs=5000,lr=0.05]`` (a *variant*: a hollow marker in the figure). The
methods of a shape take turns package by package (one of irtbench's, one of irtorch's, one of
torch-measure's, ...: :func:`interleaved`), so that a drift of the machine's load falls on
every package alike; ``--rounds`` repeats that, each round starting one method later.

**One fit** (:func:`run_job`), in a worker process of its own (a fork server's, pinned to the
allowed cores with every backend held to their number: :func:`irtbench.threads.held_to`): the
data simulated from the seed, the estimator's warm-up (untimed: a few iterations on the same
data; for the peers, their child interpreter's start on 200 rows), then the fit on the suite's
clock (``Fit.seconds``; for the peers it includes their interpreter's start and imports,
``startup_seconds``). A fit past ``--time-budget`` seconds (300; its warm-up has as long again,
or :data:`MIN_WARM_UP`) is killed, its row ``timeout``; one that fails is ``error`` with its
one-line message. A method that timed out at a smaller shape, or whose seconds there times the
ratio of responses pass the budget, is ``skipped`` with the reason (``--run-all`` runs it
anyway).

**Per fit** (``shapes.csv``, each row appended as it finishes, so an interrupted run keeps
them; ``--resume`` finishes such a run): ``seconds``; ``rmse_discrimination`` and
``rmse_difficulty`` after the 2PL's affine alignment to the truth (:func:`irtbench.recovery`)
and ``rmse``, their root mean square; ``ll_gap``, the marginal log-likelihood gap to the exact
optimum (:func:`irtbench.gaps.gap`, with ``gap_at``); ``package_converged``, the method's own
flag (the torch family's stopping rule fired; irtbench's ``converged``; "no rule" for a fixed
number of steps); the suite's ``converged`` (false where an item ran away) and ``n_runaway``;
``n_iter``; ``peak_rss_gb``, the larger of the worker's peak resident set and its children's
(the peers' interpreters; ``getrusage``: the worker holds irtbench, torch and JAX, the floor of
a small fit; host memory only, a GPU's is not measured); ``contention`` (:class:`irtbench.threads.Usage`: the share of the cores' time
other processes took during the fit) and ``load_average`` (1 minute, after the fit).

**Time to reach the same accuracy** (``shapes.md``, ``shapes.png``; :func:`render`): per shape,
the best ``rmse`` any method reached; a method *reaches it* when its ``rmse`` is within 5%
(:data:`WITHIN`) of that best; per package, the fastest method that reaches it, its seconds and
their ratio to irtbench's fastest (over the rounds, each method's median seconds and RMSE). The
figure: seconds (log) against ``rmse`` (log), one panel per shape, one colour per package, one
marker per method, the 5% band shaded::

    python benchmarks/torch_family_shapes.py                 # results/peers/shapes.{csv,md,png}
    python benchmarks/torch_family_shapes.py --render        # shapes.md and .png from the CSV
    python benchmarks/torch_family_shapes.py --sizes 300x20,200x50 --time-budget 60 \
        --out /tmp/shapes                                    # a quick check

Bad input (a size, a method, an option, an existing CSV without ``--resume`` or ``--force``,
``--render`` without a CSV) is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import multiprocessing
import os
import re
import resource
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import ticker

import irtbench
from irtbench import gaps, plots  # plots sets matplotlib's backend (Agg)
from irtbench.cli import UsageError, parse_options
from irtbench.estimators._peers import PeerEstimator
from irtbench.estimators._torch_family import TorchFamilyPeer, members
from irtbench.harness.limits import first_line
from irtbench.responses import parse_size, size_label
from irtbench.results import append_rows
from irtbench.threads import Usage, held_to

ROOT = Path(__file__).resolve().parents[1]
MODEL = "2pl"
#: the shapes of issue 32: an exam, a large exam, a long test, the LLM leaderboard
SIZES = ("1000x50", "10000x100", "2000x1000", "300x28659")
#: irtbench's 2PL methods a user would pick: the exact marginal fit, the reference estimator in
#: JAX and torch, and its variational Bayes (NUTS is left out: hours at these shapes)
IRTBENCH_METHODS = ("mml-em", "jax-adam", "torch-adam", "numpyro-vi")
#: seconds a warm-up may take at least (a peer's is its interpreter's start and imports)
MIN_WARM_UP = 120.0
#: a method reaches the best accuracy when its RMSE is at most (1 + WITHIN) times the best
WITHIN = 0.05
#: irtbench, whose fastest method the packages' are compared with
HOME = "irtbench"
CSV, MARKDOWN, FIGURE = "shapes.csv", "shapes.md", "shapes"
COLUMNS = ("shape", "n_students", "n_questions", "seed", "round", "method", "estimator",
           "package", "objective", "device", "status", "reason", "seconds", "n_iter",
           "rmse_discrimination", "rmse_difficulty", "rmse", "ll_gap", "gap_at",
           "package_converged", "converged", "n_runaway", "peak_rss_gb", "contention",
           "load_average", "startup_seconds", "version")


# -- the methods --------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """An estimator with options: ``label`` names it in the results (the estimator's name, or
    ``name[key=value,...]`` for a variant)."""

    label: str
    estimator: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def package(self) -> str:
        return package_of(self.estimator)

    @property
    def variant(self) -> bool:
        return bool(self.options)

    def build(self, device: str) -> irtbench.Estimator:
        """The estimator of the 2PL with these options on ``device``."""
        return irtbench.get_estimator(self.estimator)(model=MODEL, device=device,
                                                      **dict(self.options))


def package_of(name: str) -> str:
    """The package an estimator is: the torch family's distribution, another peer's backend,
    else irtbench."""
    cls = irtbench.get_estimator(name)
    if issubclass(cls, TorchFamilyPeer):
        return cls.package.distribution
    return cls.backend if issubclass(cls, PeerEstimator) else HOME


def default_methods() -> list[str]:
    """irtbench's :data:`IRTBENCH_METHODS`, then the torch family's 2PL estimators."""
    return [*IRTBENCH_METHODS, *members(MODEL)]


def parse_methods(text: str) -> list[Method]:
    """``"mml-em,torch-adam[epochs=5000,lr=0.05]"`` -> the methods; :class:`UsageError` for an
    unknown estimator, one that does not fit the 2PL, or options it refuses."""
    methods = []
    for label in re.findall(r"[^,\[\]]+(?:\[[^\]]*\])?", text):
        label = label.strip()
        name, _, rest = label.partition("[")
        pairs = [pair for pair in rest.rstrip("]").split(",") if pair.strip()]
        options = parse_options([pair.strip() for pair in pairs])
        try:
            cls = irtbench.get_estimator(name.strip())
            if MODEL not in cls.models:
                raise ValueError(f"estimator {cls.name!r} does not fit the 2PL")
            method = Method(label, cls.name, tuple(sorted(options.items())))
            method.build("cpu").config  # noqa: B018 - every option checked now, not in a worker
        except ValueError as error:
            raise UsageError(f"--methods {label!r}: {error}") from None
        methods.append(method)
    if not methods:
        raise UsageError(f"--methods {text!r} names no estimator")
    return methods


def installed(methods: Iterable[Method]) -> list[Method]:
    """The methods whose backend is installed; each other one is named on stderr with the
    command that installs it."""
    kept = []
    for method in methods:
        cls = irtbench.get_estimator(method.estimator)
        if cls.available():
            kept.append(method)
        else:
            print(f"{method.label}: left out ({', '.join(cls.missing_requirements())}); "
                  f"{cls.install_command()}", file=sys.stderr)
    return kept


def interleaved(methods: Sequence[Method], turn: int = 0) -> list[Method]:
    """Package by package in turn (the first method of each package, then the second of
    each, ...), rotated by ``turn`` places (round ``turn`` starts that much later)."""
    by_package: dict[str, list[Method]] = {}
    for method in methods:
        by_package.setdefault(method.package, []).append(method)
    order = [queue[k] for k in range(max(map(len, by_package.values()), default=0))
             for queue in by_package.values() if k < len(queue)]
    turn = turn % len(order) if order else 0
    return order[turn:] + order[:turn]


# -- one fit in a worker process ------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One fit: a method at a shape, on a device."""

    method: Method
    n_students: int
    n_questions: int
    seed: int
    device: str


@dataclass
class Outcome:
    """What a worker sends back of a fit that finished."""

    fit: irtbench.Fit
    peak_rss_bytes: float
    contention: float


def simulate(n_students: int, n_questions: int, seed: int) -> irtbench.Dataset:
    return irtbench.simulate(n_students, n_questions, model=MODEL, seed=seed)


def peak_rss_bytes() -> float:
    """The larger of this process's peak resident set and its waited children's (Linux
    reports kilobytes)."""
    return 1024.0 * max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def fit_in_worker(connection: Connection, job: Job) -> None:
    """In the worker: pinned to the allowed cores, simulate, warm up, say ``"fitting"``, fit,
    send the :class:`Outcome` (or ``("error", line)``)."""
    try:
        with held_to(None) as cores:
            data = simulate(job.n_students, job.n_questions, job.seed)
            estimator = job.method.build(job.device)
            estimator.warm_up(data.responses)
            connection.send(("fitting", None))
            with Usage(cores) as usage:
                fit = estimator.fit(data.responses)
        fit = dataclasses.replace(fit, options=dict(fit.options), trace=[])  # picklable
        connection.send(("done", Outcome(fit, peak_rss_bytes(), usage.contention)))
    except Exception as error:  # noqa: BLE001 - a failure is a row
        connection.send(("error", first_line(error)))
    finally:
        connection.close()


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers from a fork server that has imported irtbench once (no threads inherited), or
    spawned where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["irtbench", "irtbench.estimators"])
    return context


def run_job(job: Job, budget: float, context: multiprocessing.context.BaseContext
            ) -> tuple[str, str, Outcome | None]:
    """``(status, reason, outcome)`` of one fit in a worker of its own: ``"ok"``, ``"error"``
    (its line), or ``"timeout"`` where its fit ran past ``budget`` seconds or its warm-up past
    as long or :data:`MIN_WARM_UP` (the worker killed, and the peers' interpreters with it)."""
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=fit_in_worker, args=(sender, job), daemon=True)
    worker.start()
    sender.close()
    try:
        for stage, limit in (("warm-up", max(budget, MIN_WARM_UP)), ("fit", budget)):
            if not receiver.poll(limit):
                return "timeout", f"the {stage} ran past the time budget of {limit:g} s", None
            try:
                kind, payload = receiver.recv()
            except EOFError:
                worker.join(5)
                return "error", f"the worker died (exit code {worker.exitcode})", None
            if kind == "error":
                return "error", payload, None
            if kind == "done":
                return "ok", "", payload
        return "error", "the worker sent no result", None
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join()
        receiver.close()


# -- one row --------------------------------------------------------------------------------
def package_flag(diagnostics: dict) -> str:
    """The method's own convergence flag: the torch family's stopping rule (``stopping_rule``
    declared; ``stopped_by_rule`` absent where it has none), else irtbench's ``converged``;
    "no rule" for a method that runs a fixed number of steps."""
    flag = (diagnostics.get("stopped_by_rule") if "stopping_rule" in diagnostics
            else diagnostics.get("converged"))
    return "no rule" if flag is None else ("yes" if flag else "no")


def evaluated(outcome: Outcome, data: irtbench.Dataset, maximum: float | None) -> dict:
    """The columns of a finished fit: where it ran, its clock and flags, its recovery after the
    2PL's alignment and its gap (where either cannot be computed, the row's reason says why and
    the rest is kept)."""
    fit = outcome.fit
    prefix = getattr(getattr(irtbench.get_estimator(fit.estimator), "package", None),
                     "module", "")
    row = {"device": fit.device, "seconds": fit.seconds, "n_iter": fit.n_iter,
           "package_converged": package_flag(fit.diagnostics),
           "converged": fit.diagnostics.get("converged", ""),
           "n_runaway": fit.diagnostics.get("n_runaway", np.nan),
           "peak_rss_gb": outcome.peak_rss_bytes / 1e9, "contention": outcome.contention,
           "startup_seconds": fit.diagnostics.get(f"{prefix}_startup_seconds", np.nan),
           "version": fit.diagnostics.get(f"{prefix}_version", irtbench.__version__)}
    problems = []
    try:
        metrics = irtbench.recovery(fit, data)
        a, b = metrics["rmse_discrimination"], metrics["rmse_difficulty"]
        row.update(rmse_discrimination=a, rmse_difficulty=b, rmse=math.sqrt((a * a + b * b) / 2))
    except Exception as error:  # noqa: BLE001 - the clock stands without the recovery
        problems.append(f"recovery: {first_line(error)}")
    try:
        found = gaps.gap(fit, data.responses, maximum) if maximum is not None else None
        if found is not None:
            row.update(ll_gap=found.gap, gap_at=found.at)
    except Exception as error:  # noqa: BLE001 - the recovery stands without the gap
        problems.append(f"ll_gap: {first_line(error)}")
    return {**row, "reason": "; ".join(problems)}


# -- the run --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What a run does: the methods at each shape, its settings and its CSV."""

    sizes: tuple[tuple[int, int], ...]
    methods: tuple[Method, ...]
    seed: int
    rounds: int
    budget: float
    device: str
    run_all: bool
    csv: Path


def skip_reason(method: Method, shape: tuple[int, int], rows: list[dict],
                budget: float) -> str | None:
    """Why not to fit ``method`` at ``shape``: it timed out at a smaller shape, or its
    seconds at the largest smaller shape where it finished, times the ratio of responses,
    pass the budget; None to fit it."""
    done = pd.DataFrame(rows, columns=COLUMNS)
    if done.empty:
        return None
    responses = shape[0] * shape[1]
    mine = done[(done["method"] == method.label)
                & (done["n_students"] * done["n_questions"] < responses)]
    timed_out = mine[mine["status"] == "timeout"]
    if len(timed_out):
        return f"it timed out at {timed_out['shape'].iloc[0]}"
    finished = mine[mine["status"] == "ok"]
    if finished.empty:
        return None
    largest = finished.loc[(finished["n_students"] * finished["n_questions"]).idxmax()]
    projected = largest["seconds"] * responses / (largest["n_students"] * largest["n_questions"])
    if projected > budget:
        return (f"projected {projected:.0f} s from {largest['seconds']:.1f} s at "
                f"{largest['shape']}")
    return None


def base_row(job: Job, turn: int) -> dict:
    cls = irtbench.get_estimator(job.method.estimator)
    return {"shape": size_label(job.n_students, job.n_questions), "n_students": job.n_students,
            "n_questions": job.n_questions, "seed": job.seed, "round": turn,
            "method": job.method.label, "estimator": job.method.estimator,
            "package": job.method.package, "objective": cls.objective, "device": job.device,
            "reason": ""}


def read_rows(path: Path) -> pd.DataFrame:
    """The rows of a CSV written by a run (empty, with the columns, where there is none)."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.read_csv(path)
    for column in ("reason", "gap_at", "package_converged", "converged", "version"):
        frame[column] = frame[column].astype(object).fillna("").astype(str)
    return frame


def finished(rows: list[dict], job: Job, turn: int) -> bool:
    """Whether ``rows`` (a run being resumed) hold this fit's row."""
    label = size_label(job.n_students, job.n_questions)
    return any(row["shape"] == label and row["seed"] == job.seed and row["round"] == turn
               and row["method"] == job.method.label for row in rows)


def run_shape(plan: Plan, shape: tuple[int, int], rows: list[dict],
              context: multiprocessing.context.BaseContext) -> None:
    """Every method at one shape, interleaved, round by round; each row appended to the CSV
    as it finishes and to ``rows``."""
    data = simulate(*shape, plan.seed)
    label = size_label(*shape)

    @functools.cache
    def maximum() -> float | None:
        """The exact marginal optimum, once a fit finished (not for a run resumed whole)."""
        print(f"{label}: the exact marginal optimum (mml-em at a tight tolerance)", flush=True)
        return gaps.reference_maximum(data.responses, MODEL)

    for turn in range(plan.rounds):
        for method in interleaved(plan.methods, turn):
            job = Job(method, *shape, plan.seed, plan.device)
            if finished(rows, job, turn):
                continue
            row = base_row(job, turn)
            reason = None if plan.run_all else skip_reason(method, shape, rows, plan.budget)
            if reason is not None:
                row.update(status="skipped", reason=reason)
            else:
                status, why, outcome = run_job(job, plan.budget, context)
                row.update(status=status, reason=why, load_average=os.getloadavg()[0])
                if outcome is not None:
                    row.update(evaluated(outcome, data, maximum()))
            append_rows(plan.csv, COLUMNS, [row])
            rows.append(row)
            print(f"{label} {method.label}: {row['status']} {row.get('seconds', '')} "
                  f"rmse {row.get('rmse', '')} gap {row.get('ll_gap', '')} {row['reason']}",
                  flush=True)


def run(plan: Plan) -> pd.DataFrame:
    """Every shape in turn (rendering the table and figure after each); the rows."""
    rows = read_rows(plan.csv).to_dict("records")
    context = worker_context()
    for shape in plan.sizes:
        run_shape(plan, shape, rows, context)
        render(plan.csv)
    return pd.DataFrame(rows, columns=COLUMNS)


# -- the table and the figure ---------------------------------------------------------------
def per_method(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (shape, method), in the order they ran: over the rounds that finished, the
    median seconds, RMSEs and gap, the largest peak memory, the mean load; a method with none
    keeps its first row's status and reason."""
    rows = rows.assign(reason=rows["reason"].fillna("").astype(str))
    kept = []
    for (shape, method), part in rows.groupby(["shape", "method"], sort=False):
        ok = part[part["status"] == "ok"]
        first = part.iloc[0]
        summary = {"shape": shape, "package": first["package"], "method": method,
                   "estimator": first["estimator"], "rounds": len(ok),
                   "status": "ok" if len(ok) else first["status"],
                   "reason": "; ".join(dict.fromkeys(r for r in part["reason"] if r))}
        for column in ("seconds", "rmse_discrimination", "rmse_difficulty", "rmse", "ll_gap",
                       "n_iter"):
            summary[column] = float(ok[column].median()) if len(ok) else np.nan
        summary["peak_rss_gb"] = float(ok["peak_rss_gb"].max()) if len(ok) else np.nan
        summary["load_average"] = float(ok["load_average"].mean()) if len(ok) else np.nan
        summary["package_converged"] = (ok["package_converged"].astype(str).iloc[0] if len(ok)
                                        else "")
        kept.append(summary)
    return pd.DataFrame(kept)


def reaching(methods: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_method`'s table with ``best_rmse`` (the shape's least finite RMSE) and
    ``reaches`` (the method's RMSE within :data:`WITHIN` of it)."""
    finite = methods["rmse"].where(np.isfinite(methods["rmse"]))
    best = finite.groupby(methods["shape"], sort=False).transform("min")
    return methods.assign(best_rmse=best, reaches=finite <= (1 + WITHIN) * best)


def fastest(methods: pd.DataFrame) -> pd.DataFrame:
    """Per shape and package (irtbench first): the fastest method that reaches the best
    accuracy, its seconds and their ratio to irtbench's fastest; where none reaches it, the
    package's closest method (least RMSE) and its RMSE."""
    table = reaching(methods)
    packages = list(dict.fromkeys([HOME, *table["package"]]))
    out = []
    for shape, part in table.groupby("shape", sort=False):
        home = part[(part["package"] == HOME) & part["reaches"]]
        home_seconds = float(home["seconds"].min()) if len(home) else np.nan
        for package in packages:
            mine = part[part["package"] == package]
            if mine.empty:
                continue
            hits = mine[mine["reaches"]]
            row = {"shape": shape, "best_rmse": float(part["best_rmse"].iloc[0]),
                   "package": package, "method": "", "seconds": np.nan,
                   "x_irtbench": np.nan, "closest": "", "closest_rmse": np.nan}
            if len(hits):
                winner = hits.loc[hits["seconds"].idxmin()]
                row.update(method=winner["method"], seconds=float(winner["seconds"]),
                           x_irtbench=float(winner["seconds"]) / home_seconds)
            elif mine["rmse"].notna().any():
                closest = mine.loc[mine["rmse"].idxmin()]
                row.update(closest=closest["method"], closest_rmse=float(closest["rmse"]))
            out.append(row)
    return pd.DataFrame(out)


def named(package: str, method: str) -> str:
    """A method with its package, unless its name starts with it (``irtorch-mml``)."""
    return method if method.startswith(package) else f"{package}'s {method}"


def verdicts(winners: pd.DataFrame) -> list[str]:
    """One sentence per shape: whether irtbench's fastest method that reaches the best
    accuracy is ahead of each package's, and by how much."""
    lines = []
    for shape, part in winners.groupby("shape", sort=False):
        home = part[part["package"] == HOME].iloc[0] if (part["package"] == HOME).any() else None
        others = part[part["package"] != HOME]
        reached = others[others["method"] != ""]
        if home is None or home["method"] == "":
            beaten = "; ".join(f"{named(r.package, r.method)} does in {r.seconds:.3g} s"
                               for r in reached.itertuples()) or "nor does any package's"
            lines.append(f"- {shape}: no method of irtbench reaches the best accuracy "
                         f"({beaten}).")
            continue
        ahead = [f"{named(r.package, r.method)} takes {r.x_irtbench:.3g}x as long "
                 f"({r.seconds:.3g} s)" for r in reached.itertuples() if r.x_irtbench > 1]
        behind = [f"{named(r.package, r.method)} is {1 / r.x_irtbench:.3g}x faster "
                  f"({r.seconds:.3g} s)" for r in reached.itertuples() if r.x_irtbench <= 1]
        missed = [r.package for r in others.itertuples() if r.method == ""]
        words = [f"{named(HOME, home['method'])} reaches it in {home['seconds']:.3g} s"]
        words += ahead + [f"not ahead: {text}" for text in behind]
        if missed:
            words.append(f"no method of {' or '.join(missed)} reaches it")
        lines.append(f"- {shape}: " + "; ".join(words) + ".")
    return lines


def markdown_report(rows: pd.DataFrame) -> str:
    """``shapes.md``: how it was made, the time-to-accuracy table, the sentences, and every
    method at every shape."""
    methods = reaching(per_method(rows))
    winners = fastest(methods)
    machine = (f"device {', '.join(map(str, rows['device'].dropna().unique()))}; "
               f"seed {', '.join(map(str, rows['seed'].dropna().unique()))}; load average "
               f"{rows['load_average'].min():.1f}-{rows['load_average'].max():.1f}")
    lines = ["# irtbench beside irtorch and torch-measure: simulated 2PL data", "",
             ("Made by `python benchmarks/torch_family_shapes.py` (this page: `--render` of "
              f"`{CSV}`; {machine}). Seconds: the suite's clock (`Fit.seconds`, after a "
              "warm-up; the peers' include their interpreter's start and imports). RMSE: the "
              "root mean square of the RMSEs of the discriminations and the difficulties after "
              "the 2PL's alignment to the truth. A method *reaches* the best accuracy when its "
              f"RMSE is within {WITHIN:.0%} of the least any method reached at that shape; "
              "`x irtbench`: its seconds over those of irtbench's fastest method that reaches "
              "it."), "", "## Time to reach the same accuracy", "",
             plots.markdown_table(legible(winners).rename(columns={"x_irtbench": "x irtbench"})),
             "",
             *verdicts(winners), "", "## Every method", ""]
    shown = ["package", "method", "status", "seconds", "rmse_discrimination",
             "rmse_difficulty", "rmse", "reaches", "ll_gap", "package_converged", "n_iter",
             "peak_rss_gb", "load_average", "rounds", "reason"]
    ranks = {package: k for k, package in enumerate(dict.fromkeys([HOME, *methods["package"]]))}
    for shape, part in methods.groupby("shape", sort=False):
        part = part.sort_values("package", key=lambda column: column.map(ranks), kind="stable")
        lines += [f"### {shape}", "", plots.markdown_table(legible(part[shown])), ""]
    return "\n".join(lines)


def legible(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as whole numbers, seconds and gaps of 1000 or more without a mantissa, whether a
    method reaches the best accuracy as "yes" or nothing (the rest: 3 significant digits)."""
    def count(value: float) -> str:
        return "" if pd.isna(value) else f"{value:.0f}"

    def amount(value: float) -> object:
        return f"{value:.0f}" if pd.notna(value) and abs(value) >= 1000 else value

    shown = table.copy()
    for column in ("n_iter", "rounds"):
        if column in shown:
            shown[column] = shown[column].map(count)
    for column in ("seconds", "ll_gap"):
        if column in shown:
            shown[column] = shown[column].astype(object).map(amount)
    if "reaches" in shown:
        shown["reaches"] = shown["reaches"].map(lambda hit: "yes" if hit else "")
    if "reason" in shown:
        shown["reason"] = shown["reason"].str.replace("|", "/", regex=False)
    return shown


#: one colour per package (irtbench, irtorch, torch-measure, then any other)
PACKAGE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def plot(rows: pd.DataFrame, path: Path) -> list[Path]:
    """``shapes.png``: per shape, seconds (log) against RMSE (log) of every method that
    finished, one colour per package and one marker per method (hollow for a variant), the
    band within :data:`WITHIN` of the best shaded, the methods that did not finish named."""
    methods = reaching(per_method(rows))
    shapes = list(dict.fromkeys(methods["shape"]))
    colours = dict(zip(dict.fromkeys([HOME, *methods["package"]]), PACKAGE_COLOURS * 3))
    fig, axes = plots.new_figure(1, max(len(shapes), 1), figsize=(
        plots.PANEL_WIDTH * max(len(shapes), 1) + plots.LEGEND_WIDTH, 3.6))
    for ax, shape in zip(axes[0], shapes):
        part = methods[methods["shape"] == shape]
        finished = part[(part["status"] == "ok") & np.isfinite(part["rmse"])]
        for row in finished.itertuples():
            marker = plots.style(row.estimator)["marker"]
            colour = colours[row.package]
            ax.scatter(row.seconds, row.rmse, marker=marker, s=40, color=colour,
                       facecolors="none" if row.method != row.estimator else colour,
                       label=f"{row.package}: {row.method}")
        best = part["best_rmse"].iloc[0]
        if np.isfinite(best):
            ax.axhspan(best, best * (1 + WITHIN), color="0.85", zorder=0,
                       label=f"within {WITHIN:.0%} of the best")
        unfinished = ", ".join(f"{r.method} ({r.status})"
                               for r in part[part["status"] != "ok"].itertuples())
        ax.set(xscale="log", yscale="log", title=shape, xlabel="seconds (Fit.seconds)")
        if unfinished:
            ax.set_xlabel("seconds (Fit.seconds)\n" + textwrap.fill(
                f"not finished: {unfinished}", 48), fontsize=7)
        plain_log_labels(ax.yaxis)
        ax.xaxis.set_major_formatter(PlainLogLabels())
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # 20, 30, 40 overlapped
    axes[0][0].set_ylabel("RMSE of a and b (aligned to the truth)")
    entries: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    order = sorted(entries, key=lambda label: (label.startswith("within"), list(colours).index(
        label.split(":")[0]) if ":" in label else 0, label))
    fig.legend([entries[label] for label in order], order, loc="outside right upper",
               fontsize=7)
    return plots.save_figure(fig, path, ["png"])


class PlainLogLabels(ticker.LogFormatter):
    """A log axis's labels as ``0.2``, not ``2e-01``: the ticks matplotlib's rule labels (the
    minor ones too on an axis spanning less than a decade), to 3 significant digits."""

    def __call__(self, value: float, position: int | None = None) -> str:
        return f"{value:.3g}" if super().__call__(value, position) else ""


def plain_log_labels(axis: Any) -> None:
    axis.set_major_formatter(PlainLogLabels())
    axis.set_minor_formatter(PlainLogLabels(labelOnlyBase=False))


def render(csv: Path) -> list[Path]:
    """``shapes.md`` and ``shapes.png`` beside ``csv``, from its rows alone."""
    rows = read_rows(csv)
    if rows.empty:
        raise UsageError(f"{csv}: no rows to render (the benchmark writes them)")
    markdown = csv.with_name(MARKDOWN)
    markdown.write_text(markdown_report(rows) + "\n")
    return [markdown, *plot(rows, csv.with_name(FIGURE))]


# -- the command line -----------------------------------------------------------------------
def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="(%(default)s)")
    parser.add_argument("--methods", help="comma-separated estimators, NAME or "
                        "NAME[KEY=VALUE,...] (default: irtbench's "
                        f"{', '.join(IRTBENCH_METHODS)} and the torch family's 2PL methods)")
    parser.add_argument("--seed", type=int, default=1, help="of the simulated data (%(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (%(default)s)")
    parser.add_argument("--time-budget", type=float, default=300.0,
                        help="seconds after which a fit (or its warm-up) is killed (%(default)s)")
    parser.add_argument("--device", default="cpu", help="every fit's device (%(default)s)")
    parser.add_argument("--run-all", action="store_true",
                        help="fit a method even where a smaller shape projects it past the budget")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "peers",
                        help=f"folder of {CSV}, {MARKDOWN} and {FIGURE}.png (%(default)s)")
    parser.add_argument("--render", action="store_true",
                        help=f"write {MARKDOWN} and {FIGURE}.png from {CSV} alone, fitting nothing")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--resume", action="store_true", help=f"finish the run of an existing {CSV}")
    given.add_argument("--force", action="store_true", help=f"start again over an existing {CSV}")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    """The run the arguments ask for; :class:`UsageError` naming the first problem."""
    try:
        sizes = tuple(parse_size(text.strip()) for text in args.sizes.split(","))
    except ValueError as error:
        raise UsageError(f"--sizes: {error}") from None
    if args.rounds < 1 or args.time_budget <= 0:
        raise UsageError("--rounds must be at least 1 and --time-budget positive")
    methods = parse_methods(args.methods or ",".join(default_methods()))
    for method in methods:
        try:
            method.build(args.device).resolve_device()
        except ValueError as error:
            raise UsageError(f"--device: {error}") from None
    csv = args.out / CSV
    if csv.exists() and not (args.resume or args.force):
        raise UsageError(f"{csv} exists: --resume to finish its run, --force to start again")
    return Plan(sizes, tuple(installed(methods)), args.seed, args.rounds, args.time_budget,
                args.device, args.run_all, csv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        if args.render:
            print("wrote " + ", ".join(map(str, render(args.out / CSV))))
            return 0
        plan = make_plan(args)
    except UsageError as error:
        print(f"torch_family_shapes.py: {error}", file=sys.stderr)
        return 2
    if not plan.methods:
        print("torch_family_shapes.py: none of the methods is installed", file=sys.stderr)
        return 2
    plan.csv.parent.mkdir(parents=True, exist_ok=True)
    if args.force:
        plan.csv.unlink(missing_ok=True)
    rows = run(plan)
    print(f"wrote {plan.csv} ({len(rows)} rows), {plan.csv.with_name(MARKDOWN)} and "
          f"{plan.csv.with_name(FIGURE)}.png")
    return 0 if (rows["status"] == "ok").any() else 3


if __name__ == "__main__":
    raise SystemExit(main())

"""Regression checks of recovery accuracy against a baseline results folder.

Cells (estimator, size, missing fraction, seed) present and ``ok`` in both folders are compared
metric by metric. A metric is *worse* when it moves in its bad direction by more than the
tolerance:

* ``rmse_skill``, ``rmse_difficulty``, ``crb_ratio_skill``, ``crb_ratio_difficulty``: higher;
* ``coverage_skill``, ``coverage_difficulty``: further from the nominal 0.95;
* a cell ``ok`` in the baseline and not now is always a regression.

Times are not checked (that is pytest-benchmark's job) but warned about, in every mode: a cell
whose fit took more than ``SLOWER_WARNING`` (3) times the baseline's, and the cells that ran
contended (their ``contention``, the share of their cores' time other processes used, at least
:data:`irtbench.threads.CONTENDED`).

Tolerances, from the statistics of the runs:

* **same platform** (same device, CPU model and versions of python, numpy, torch, jax, numpyro):
  fixed seeds and deterministic fits reproduce the numbers up to floating-point reassociation,
  so a metric may differ by ``SAME_RTOL`` (0.2%) of its baseline value.
* **cross platform**: float32 reductions in another order (another CPU, a GPU, another library
  version) perturb every fit a little and chaotic samplers (NUTS) follow other trajectories, so
  the allowance is ``CROSS_Z`` (0.5) times the metric's seed-to-seed standard deviation in the
  baseline for that estimator and size (or ``CROSS_RTOL``, 5%, where the baseline has one seed).
  A real regression of an estimator moves its metrics by a good part of what changing the
  data does; platform noise moves them by far less.

Unusable input (no common cell, missing columns, different simulated data) is an error: the
simulated data of a cell are identified by its number of observed responses and its Cramér–Rao
bound, which depend only on the seed, the size, the simulation settings and the code that
simulates and bounds them. When they differ the error names the cell (estimator, model, size,
missing fraction, seed), the two values, the commits and commands that made the two folders,
and the two ways out: regenerate the baseline with its own command (it is stale when the run
used its settings), or run with the settings it used.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from irtbench.models import ITEM_PARAMETERS, get_model, model_suffix
from irtbench.results import KEY_COLUMNS, IncompatibleResults, read_environment, read_results
from irtbench.threads import CONTENDED

__all__ = ["CheckResult", "check", "regenerate_command", "SAME_RTOL", "CROSS_Z", "CROSS_RTOL",
           "CHECKED_METRICS"]

SAME_RTOL = 0.002
CROSS_Z = 0.5
CROSS_RTOL = 0.05
NOMINAL_COVERAGE = 0.95
THROUGHPUT_WARNING = 0.5  # warn when responses/s falls below half the baseline's
SLOWER_WARNING = 3.0  # in every mode, warn when a fit takes more than 3x the baseline's time

#: metric -> how "worse" is measured: "higher" or "away" (from the nominal coverage); for the
#: skills and every model's item parameters (NaN, so not compared, where a model has none)
CHECKED_METRICS = {
    f"{metric}_{part}": worse
    for part in ("skill", *ITEM_PARAMETERS)
    for metric, worse in (("rmse", "higher"), ("crb_ratio", "higher"), ("coverage", "away"))
}

_PLATFORM_KEYS = ("device_name", "cpu", "python", "numpy", "torch", "jax", "numpyro")
#: the columns that identify a cell's simulated data: what each is, what a difference in it
#: (and not in those before it) is called, and what it means
_DATA_FINGERPRINT = {
    "n_observed": (
        "the number of observed responses", "different simulated data",
        "the two folders simulated other data (another size, seed or --missing)"),
    "crb_difficulty": (
        "the Cramér–Rao bound of the difficulties", "a different Cramér–Rao bound",
        ("as many responses but another bound: other simulation settings, or another version "
         "of irtbench that simulates or bounds them otherwise or keeps other questions in the "
         "metrics (those whose estimates a fit can use)")),
}


@dataclass
class CheckResult:
    """Outcome of :func:`check`: ``regressions`` (one row per worse metric), ``mode``,
    the number of cells compared and throughput ``warnings``."""

    regressions: pd.DataFrame
    mode: str
    cells: int
    warnings: list[str]

    @property
    def passed(self) -> bool:
        return self.regressions.empty


def platform_mode(run: Path, baseline: Path) -> str:
    """``"same"`` when both folders come from the same device, CPU and versions, else ``"cross"``."""
    new, old = read_environment(run), read_environment(baseline)
    return "same" if all(new.get(k) == old.get(k) for k in _PLATFORM_KEYS) else "cross"


def _with_other_models_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the checked metrics of the item parameters that none of its models has
    as NaN columns where it lacks them (a folder written before a model was added: its
    parameters' columns did not exist), so that they are not compared."""
    present = {"skill", *(name for model in table.model.unique()
                          for name in get_model(str(model)).item_parameters)}
    absent = {f"{metric}_{part}" for part in ITEM_PARAMETERS if part not in present
              for metric in ("rmse", "crb_ratio", "coverage")}
    return table.assign(**{column: np.nan for column in absent if column not in table})


def regenerate_command(baseline: Path) -> str:
    """The command that remakes ``baseline``: the ``irtbench run`` its ``environment.json``
    recorded, written into ``baseline`` again (the default sweep's, ``irtbench run --device cpu
    --out BASELINE``, where none was recorded)."""
    words = shlex.split(str(read_environment(baseline).get("command") or ""))
    if "run" not in words:
        words = ["irtbench", "run", "--device", "cpu"]
    words = ["irtbench", *words[words.index("run"):]]
    for option in ("--out", "--resume", "--force"):  # a new folder, made whole
        while option in words:
            at = words.index(option)
            del words[at:at + (2 if option == "--out" else 1)]
    return shlex.join([*words, "--out", str(baseline)])


def _stale_advice(run: Path, baseline: Path) -> str:
    """What to do when a run's simulated data differ from the baseline's: which commits and
    commands made the two folders, and the two ways out."""
    new, old = read_environment(run), read_environment(baseline)

    def made(env: dict) -> str:
        commit = str(env.get("git_commit") or "unknown")[:10]
        return f"at commit {commit} by `{env.get('command') or 'an unrecorded command'}`"

    return (f"{baseline} was made {made(old)}, {run} {made(new)}: if the run used the "
            "baseline's settings, the baseline is stale: regenerate it with "
            f"`{regenerate_command(baseline)}` (into a new folder: move the old one away "
            "first); otherwise run with the settings it used")


def _common_cells(run: pd.DataFrame, base: pd.DataFrame, advice: str = "") -> pd.DataFrame:
    """The cells of ``run`` and ``base`` that the baseline fitted, side by side (suffixes
    ``_base`` and ``_new``); :class:`IncompatibleResults` when there is none, a column is
    missing, or a cell's simulated data differ (naming the first such cell, followed by
    ``advice``)."""
    needed = (set(CHECKED_METRICS) | set(_DATA_FINGERPRINT)
              | {"status", "responses_per_second", "seconds"})
    for name, table in (("run", run), ("baseline", base)):
        missing = sorted(needed - set(table.columns))
        if missing:
            raise IncompatibleResults(f"the {name} lacks the column(s) {', '.join(missing)}")
    merged = base.merge(run, on=list(KEY_COLUMNS), suffixes=("_base", "_new"))
    merged = merged[merged.status_base == "ok"]
    if merged.empty:
        raise IncompatibleResults("the run and the baseline have no cell in common "
                                  "(estimator, size, missing, seed) that the baseline fitted")
    ok = merged[merged.status_new == "ok"]
    for column, (meaning, name, cause) in _DATA_FINGERPRINT.items():
        differ = ~np.isclose(ok[f"{column}_base"], ok[f"{column}_new"], rtol=1e-9, atol=0)
        if differ.any():
            row = ok[differ].iloc[0]
            raise IncompatibleResults(
                f"{name} in {int(differ.sum())} of the {len(ok)} common cell(s), first "
                f"{row.estimator} {row.model} {row.n_students}x{row.n_questions}, missing "
                f"{row.missing:g}, seed {row.seed}: {column} ({meaning}) is "
                f"{row[f'{column}_base']:.6g} in the baseline and {row[f'{column}_new']:.6g} in "
                f"the run; {cause}. {advice}".rstrip(". "))
    return merged


def _tolerances(base: pd.DataFrame, merged: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Per common cell and metric, the allowed worsening."""
    tolerance = pd.DataFrame(index=merged.index)
    for metric in CHECKED_METRICS:
        reference = merged[f"{metric}_base"].abs()
        if metric.startswith("coverage"):
            reference = pd.Series(1.0, index=merged.index)
        same = SAME_RTOL * reference
        if mode == "same":
            tolerance[metric] = same
            continue
        group = ["estimator", "model", "n_students", "n_questions", "missing"]
        spread = base[base.status == "ok"].groupby(group)[metric].std().rename("spread")
        spread = merged[group].merge(spread, how="left", left_on=group, right_index=True)["spread"]
        cross = (CROSS_Z * spread).fillna(CROSS_RTOL * reference)
        tolerance[metric] = np.maximum(same, cross)
    return tolerance


def check(run: Path | str, baseline: Path | str, *, mode: str = "auto") -> CheckResult:
    """Compare the recovery metrics of ``run`` with those of ``baseline``, cell by cell.

    Args:
        run, baseline: results folders written by ``irtbench run``.
        mode: ``"same"``, ``"cross"`` or ``"auto"`` (same when the environments match).

    Raises:
        IncompatibleResults: no common cell, missing columns, or different simulated data.
    """
    run, baseline = Path(run), Path(baseline)
    if mode not in ("auto", "same", "cross"):
        raise ValueError(f"mode must be auto, same or cross, not {mode!r}")
    if mode == "auto":
        mode = platform_mode(run, baseline)
    base = _with_other_models_metrics(read_results(baseline))
    merged = _common_cells(_with_other_models_metrics(read_results(run)), base,
                           _stale_advice(run, baseline))
    tolerance = _tolerances(base, merged, mode)
    rows = []
    for index, cell in merged.iterrows():
        label = {k: cell[k] for k in KEY_COLUMNS}
        if cell.status_new != "ok":
            rows.append({**label, "metric": "status", "baseline": "ok", "run": cell.status_new,
                         "change": cell.get("reason_new", ""), "tolerance": ""})
            continue
        for metric, direction in CHECKED_METRICS.items():
            old, new = cell[f"{metric}_base"], cell[f"{metric}_new"]
            if np.isnan(old):
                continue
            if direction == "away":
                worse = abs(new - NOMINAL_COVERAGE) - abs(old - NOMINAL_COVERAGE)
            else:
                worse = new - old
            if np.isnan(new) or worse > tolerance.at[index, metric]:
                rows.append({**label, "metric": metric, "baseline": old, "run": new,
                             "change": worse, "tolerance": tolerance.at[index, metric]})
    return CheckResult(
        regressions=pd.DataFrame(rows, columns=[*KEY_COLUMNS, "metric", "baseline", "run",
                                                "change", "tolerance"]),
        mode=mode,
        cells=len(merged),
        warnings=_time_warnings(merged) + _throughput_warnings(merged, mode),
    )


def _time_warnings(merged: pd.DataFrame) -> list[str]:
    """In every mode: cells whose fit took more than ``SLOWER_WARNING`` times the baseline's,
    and cells that ran contended (other processes took at least ``CONTENDED`` of their cores'
    time: their times say more about the machine than about the estimator)."""
    ok = merged[merged.status_new == "ok"]
    if "contention" in ok:  # a baseline from before the thread policy has no such column
        ok = ok.rename(columns={"contention": "contention_new"})
    warnings = []
    if "contention_new" in ok:
        contended = ok[ok.contention_new >= CONTENDED]
        if len(contended):
            cells = ", ".join(f"{r.estimator} {r.n_students}x{r.n_questions} seed {r.seed}"
                              for r in contended.head(5).itertuples())
            more = f" and {len(contended) - 5} more" if len(contended) > 5 else ""
            warnings.append(
                f"{len(contended)} cell(s) ran contended (other processes used at least "
                f"{CONTENDED:.0%} of their cores' time): {cells}{more}; their times are not "
                "comparable")
    slow = ok[ok.seconds_new > SLOWER_WARNING * ok.seconds_base]
    for r in slow.itertuples():
        contention = getattr(r, "contention_new", float("nan"))
        load = "" if np.isnan(contention) else f", contention {contention:.0%}"
        warnings.append(f"{r.estimator} {r.n_students}x{r.n_questions}"
                        f"{model_suffix(r.model)} seed {r.seed}: "
                        f"{r.seconds_new:.3g} s against {r.seconds_base:.3g} s in the baseline "
                        f"({r.seconds_new / r.seconds_base:.1f}x{load})")
    return warnings


def _throughput_warnings(merged: pd.DataFrame, mode: str) -> list[str]:
    if mode != "same":
        return []
    ok = merged[merged.status_new == "ok"]
    ratio = (ok.groupby(["estimator", "model", "n_students", "n_questions"])
             [["responses_per_second_new", "responses_per_second_base"]].median())
    slow = ratio[ratio.responses_per_second_new
                 < THROUGHPUT_WARNING * ratio.responses_per_second_base]
    return [f"{name} {n}x{m}{model_suffix(model)}: "
            f"{row.responses_per_second_new:.3g} responses/s against "
            f"{row.responses_per_second_base:.3g} in the baseline (timing is checked by "
            "pytest-benchmark, not here)" for (name, model, n, m), row in slow.iterrows()]

"""The summary table of a results folder: one row per model x estimator x device x size x
missing fraction, over the model's item parameters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from irtbench.models import ITEM_PARAMETERS, MODELS, get_model
from irtbench.models.twopl import RUNAWAY_LIMIT
from irtbench.responses import size_label
from irtbench.results import (
    with_model,
)
from irtbench.threads import (
    CONTENDED,
)


def item_metric_columns(summary: pd.DataFrame) -> list[str]:
    """The columns of a :func:`summarize` table measured over the item parameters (RMSE,
    CRB ratio and coverage of every item parameter; the skills' left out): those that a
    runaway item, whose error has no bound, enters."""
    return [column for column in summary.columns
            if column.startswith(("rmse_", "crb_", "coverage_"))
            and column not in ("rmse_skill", "crb_skill")]


#: the mark of an item metric that runaway items enter (:func:`mark_runaways`)
RUNAWAY_MARK = "†"

#: what ``n_runaway`` and the mark mean, below every table that shows them
RUNAWAY_NOTE = (
    "n_runaway: items per fit (mean over seeds) whose estimates ran away: the likelihood "
    f"still rising along them, a slope or intercept past +/-{RUNAWAY_LIMIT:g} or an SE of the "
    f"slope past {RUNAWAY_LIMIT:g} (irtbench.models.twopl.runaway_items); the data do not "
    f"identify them and the fit is not converged. {RUNAWAY_MARK}: an item metric of fits "
    "with runaway items, which it includes: their errors have no bound and can dominate it, "
    "so it is not the recovery of the other items (the error histograms leave them out; "
    "item priors hold them: docs/models.md).")


def mark_runaways(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` for display: where any row's fits had runaway items, its item metrics
    (:func:`item_metric_columns`) as text to 3 significant digits, marked
    :data:`RUNAWAY_MARK` in those rows; ``summary`` itself where none had."""
    ran = summary.get("n_runaway", pd.Series(dtype=float)).fillna(0) > 0
    if not ran.any():
        return summary
    shown = summary.copy()
    for column in item_metric_columns(summary):
        shown[column] = ["" if pd.isna(value) else
                         f"{value:.3g}" + (f" {RUNAWAY_MARK}" if marked else "")
                         for value, marked in zip(summary[column], ran)]
    return shown


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per estimator x device x size x missing: median times, mean recovery, fits ok / run,
    and the mean number of extreme students and of runaway items per fit (``n_runaway``; NaN
    under a model without a runaway rule); :func:`item_metric_columns` names the columns that
    a runaway item enters."""
    table = table.assign(size=[size_label(n, m) for n, m in zip(table.n_students, table.n_questions)])
    table = with_model(table)
    # the item parameters besides the difficulty of the models in the table, each summarised
    extra = [name for name in ITEM_PARAMETERS[1:]
             if any(name in get_model(model).item_parameters for model in table.model.unique())]
    for column in ("compute_seconds", "threads", "contention", "n_runaway",
                   *(f"{metric}_{name}" for name in extra for metric in ("rmse", "crb_ratio"))):
        if column not in table:  # a folder from before the one clock / a model / the policy
            table = table.assign(**{column: math.nan})
    ok = table[table.status == "ok"]
    keys = ["model", "estimator", "device", "n_students", "n_questions", "size", "missing"]
    summary = ok.groupby(keys, sort=True).agg(
        seconds=("seconds", "median"),
        compute_s=("compute_seconds", "median"),
        compile_s=("compile_seconds", "median"),
        resp_per_s=("responses_per_second", "median"),
        rmse_diff=("rmse_difficulty", "mean"),
        rmse_skill=("rmse_skill", "mean"),
        crb_diff=("crb_ratio_difficulty", "mean"),
        crb_skill=("crb_ratio_skill", "mean"),
        **{f"{metric}_{name[:5]}": (f"{column}_{name}", "mean") for name in extra
           for metric, column in (("rmse", "rmse"), ("crb", "crb_ratio"))},
        coverage_diff=("coverage_difficulty", "mean"),
        n_extreme=("n_extreme", "mean"),
        n_runaway=("n_runaway", "mean"),
        threads=("threads", "median"),
        contention=("contention", "max"),
    )
    identity = [key for key in keys if key != "device"]
    counts = table.groupby(identity, sort=True).agg(
        fits=("status", lambda s: f"{(s == 'ok').sum()}/{len(s)}"),
        requested_device=("device", "first"),
    )
    summary = summary.reset_index().merge(counts.reset_index(), how="outer", on=identity)
    summary["device"] = summary.device.fillna(summary.requested_device)
    summary = summary.drop(columns="requested_device")
    summary = summary.sort_values(["model", "n_students", "n_questions", "missing", "estimator"])
    summary["contention"] = [  # the largest over the seeds; * marks a contended cell
        "" if np.isnan(c) else f"{c:.0%}{'*' if c >= CONTENDED else ''}"
        for c in summary.contention]
    if summary.model.nunique() == 1 and summary.model.iloc[0] == MODELS[0]:
        summary = summary.drop(columns="model")  # the Rasch model alone: nothing to tell apart
    return summary.drop(columns=["n_students", "n_questions"]).reset_index(drop=True)

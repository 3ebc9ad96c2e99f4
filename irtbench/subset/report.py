"""The files of ``irtbench subset`` (:mod:`irtbench.subset`): ``subset.csv`` (one row per
estimator x model x strategy x k x method x fold), ``summary.csv`` (means and SDs over folds),
the figure ``subset.png`` (the error against k) and ``report.md`` (the best combination at each
k, and how random selection compares), drawn from the tables alone with the sweep's fixed
colour per estimator (:func:`irtbench.plots.style`); each file written whole or not at all
(:func:`irtbench.compare.report.staged`), and with ``force`` no file of an earlier run left
beside them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from irtbench.compare.report import staged
from irtbench.plots import markdown_table, new_figure, save_figure, style
from irtbench.subset.strategies import STRATEGIES

if TYPE_CHECKING:
    from irtbench.subset.driver import SubsetResult

__all__ = ["OUTPUTS", "best_at_each_k", "check_folder", "draw_errors", "random_against_best",
           "report_text", "write_subset"]

#: every file ``irtbench subset`` writes (with ``force``, those of an earlier run not written
#: again are removed)
OUTPUTS = ("subset.csv", "summary.csv", "subset.png", "report.md")
#: the line of each estimate in the figure
LINESTYLES = {"mean": ":", "pirt": "-", "gpirt": "--"}
#: the marker of each model, in the order met
MARKERS = "osD^vP"
#: the figure's panels side by side at most
PANELS_PER_ROW = 3
#: what the estimates are called in the report
TITLES = {"mean": "weighted mean", "pirt": "p-IRT", "gpirt": "gp-IRT"}


def check_folder(folder: Path | str, *, force: bool = False) -> Path:
    """``folder`` if the files may be written there: ``ValueError`` naming the problem (a
    file, or a folder that holds anything, without ``force``), before any work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ValueError(f"--out {folder}: the folder exists and is not empty; choose another "
                         "--out or overwrite it with --force")
    return folder


def draw_errors(summary: pd.DataFrame, path: Path) -> list[Path]:
    """One panel per strategy: each estimator x model x estimate's mean absolute error against
    ``k`` (mean over folds, SD over folds as error bars), one colour per estimator, one
    marker per model, one line style per estimate."""
    done = summary[summary.mae.notna()]
    if done.empty:
        return []
    panels = [s for s in STRATEGIES if s in set(done.strategy)]
    models = list(dict.fromkeys(done.model))
    columns = min(len(panels), PANELS_PER_ROW)
    rows_of_panels = -(-len(panels) // columns)
    fig, axes = new_figure(rows_of_panels, columns, sharey=True,
                           figsize=(3.6 * columns + 2.4, 3.2 * rows_of_panels))
    for ax in axes.flat[len(panels):]:
        ax.remove()
    for ax, strategy in zip(axes.flat, panels):
        for (name, model, method), rows in done[done.strategy == strategy].groupby(
                ["estimator", "model", "method"], sort=False):
            rows = rows.sort_values("k")
            ax.errorbar(rows.k, 100 * rows.mae, yerr=100 * rows.mae_sd.fillna(0.0),
                        color=style(name)["color"], marker=MARKERS[models.index(model)
                                                               % len(MARKERS)],
                        linestyle=LINESTYLES[method], capsize=2, markersize=4,
                        label=f"{name} {model}, {TITLES[method]}")
        ax.set_xscale("log")
        ks = sorted(set(done.k))
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_title(strategy, fontsize=10)
        ax.set_xlabel("items shown, k")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean absolute error (points)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat[1:len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    return save_figure(fig, path, ("png",))


def best_at_each_k(summary: pd.DataFrame) -> pd.DataFrame:
    """For each ``k``, the measured row of least mean absolute error."""
    done = summary[summary.mae.notna()]
    return done.loc[done.groupby("k").mae.idxmin()].reset_index(drop=True)


def random_against_best(summary: pd.DataFrame) -> pd.DataFrame:
    """For each ``k``: the best combination's error and the best one's with random items,
    their difference, and whether it is within the fold-to-fold noise (smaller than the
    larger of the two SDs over folds)."""
    done = summary[summary.mae.notna()]
    rows = []
    for k, group in done.groupby("k"):
        best = group.loc[group.mae.idxmin()]
        randoms = group[group.strategy == "random"]
        if randoms.empty:
            continue
        random = randoms.loc[randoms.mae.idxmin()]
        gap = random.mae - best.mae
        noise = np.nanmax([best.mae_sd, random.mae_sd, 0.0])
        rows.append({"k": k, "best": label_of(best), "best_mae": best.mae,
                     "random": label_of(random), "random_mae": random.mae, "gap": gap,
                     "within_noise": bool(gap <= noise)})
    return pd.DataFrame(rows)


def label_of(row: pd.Series) -> str:
    return f"{row.estimator} {row.model}, {row.strategy}, {TITLES.get(row.method, row.method)}"


def points(value: float) -> str:
    """An accuracy error in points (hundredths), two decimals."""
    return "" if not np.isfinite(value) else f"{100 * value:.2f}"


def report_text(result: SubsetResult, figures: list[Path], *, source: str = "",
                seconds: float | None = None, settings: str = "") -> str:
    """The Markdown report: the best combination at each k and how random selection compares,
    the whole summary, what did not complete, the notes and the figure."""
    summary = result.summary
    lines = ["# irtbench subset" + (f": {source}" if source else ""), ""]
    if settings:
        lines += [settings, ""]
    if seconds is not None:
        lines += [f"Whole run: {seconds:.1f} s.", ""]
    lines += [(
        "Each fold's rows are new respondents; the items are calibrated on the other rows. "
        "Errors are mean absolute errors of the estimated accuracy against the respondent's "
        "mean over all its observed answers, in points (hundredths of accuracy): mean over "
        "folds ± SD over folds. `tau`: Kendall's tau-b of the new respondents' ranking. "
        "Estimates: `mean` (the strategy's weighted mean of the k answers), `pirt` "
        "(tinyBenchmarks' p-IRT: answers counted, the other items by their predicted "
        "probability), `gpirt` (their mix by tinyBenchmarks' weight). Seconds: calibration "
        "by the suite's one clock (`Fit.seconds`), selection and scoring per fold."), ""]
    best = best_at_each_k(summary)
    if not best.empty:
        lines += ["## Best combination at each k", ""]
        lines += [f"- k = {r.k}: {label_of(r)}: {points(r.mae)} ± {points(r.mae_sd)} points "
                  f"(tau {r.kendall_tau:.3f})" for r in best.itertuples()]
        lines.append("")
    against = random_against_best(summary)
    if not against.empty:
        lines += ["## Random selection against the best", ""]
        for r in against.itertuples():
            verdict = ("within the fold-to-fold noise" if r.within_noise
                       else "beyond the fold-to-fold noise")
            same = r.gap == 0
            lines.append(f"- k = {r.k}: " + (f"random items are the best ({r.random})" if same
                         else f"best random ({r.random}) {points(r.random_mae)} against "
                         f"{points(r.best_mae)} points: {points(r.gap)} more, {verdict}"))
        lines.append("")
    shown = summary.assign(mae=100 * summary.mae, mae_sd=100 * summary.mae_sd)
    lines += ["## All combinations", "",
              "`mae` and `mae_sd` in points; `mixing_weight`: gp-IRT's weight of the mean.", "",
              markdown_table(shown), ""]
    problems = summary[summary.status != "ok"]
    if len(problems):
        lines += ["## Not completed", ""]
        lines += [f"- {r.status}: {r.estimator} {r.model} {r.strategy} k={r.k} {r.method}: "
                  f"{r.reason}" for r in problems.itertuples()]
        lines.append("")
    if result.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in result.notes], ""]
    for path in figures:
        lines += ["## Error against the items shown", "", f"![error against k]({path.name})",
                  ""]
    return "\n".join(lines)


def write_subset(result: SubsetResult, folder: Path | str, *, source: str = "",
                 seconds: float | None = None, settings: str = "",
                 force: bool = False) -> list[Path]:
    """``subset.csv``, ``summary.csv``, ``subset.png`` and ``report.md`` in ``folder`` (each
    written whole or not at all; a folder that holds anything needs ``force``, and then the
    files of :data:`OUTPUTS` not written again are removed)."""
    folder = check_folder(folder, force=force)
    with staged(folder) as stage:
        result.folds.to_csv(stage / "subset.csv", index=False)
        result.summary.to_csv(stage / "summary.csv", index=False)
        figures = draw_errors(result.summary, stage / "subset")
        (stage / "report.md").write_text(report_text(result, figures, source=source,
                                                     seconds=seconds, settings=settings))
        names = sorted(p.name for p in stage.iterdir())
    for stale in set(OUTPUTS) - set(names):
        (folder / stale).unlink(missing_ok=True)
    return [folder / name for name in names]

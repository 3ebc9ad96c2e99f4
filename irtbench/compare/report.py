"""The files of ``irtbench compare`` (:mod:`irtbench.compare`): the tables, the figures and
``report.md``, drawn from the tables alone, with the sweep's fixed colour per estimator
(:func:`irtbench.plots.style`); each file written whole or not at all (:func:`staged`)."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from irtbench.compare.heldout import BASELINES
from irtbench.estimators import estimators, get_estimator
from irtbench.metrics import EPS
from irtbench.models import ITEM_PARAMETERS, get_model
from irtbench.plots import markdown_table, new_figure, save_figure, style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from irtbench.compare.driver import Comparison

__all__ = ["FILES", "draw_figures", "report_text", "write_comparison"]

#: the held-out measures drawn, with whether lower is better
_MEASURES = (("heldout_logloss", "held-out log-loss (nats per response)", True),
             ("brier", "Brier score", True), ("auc", "AUC", False))
#: the font of the numbers in agreement.png's cells at most, and at least (points): a smaller
#: one would be unreadable, and then the cells carry no numbers (the colour bar reads them)
CELL_FONT, SMALLEST_CELL_FONT = 7.0, 4.5
#: the share of a cell's width and height a number may take
CELL_MARGIN = 0.85


def draw_heldout(summary: pd.DataFrame, path: Path) -> list[Path]:
    """One panel per measure: each estimator x model's mean over folds with its SD as an error
    bar, one colour per estimator; the baselines as dashed lines."""
    fitted = summary[~summary.estimator.isin(BASELINES) & summary.heldout_logloss.notna()]
    if fitted.empty:
        return []
    labels = [f"{r.estimator} {r.model}" for r in fitted.itertuples()]
    fig, axes = new_figure(1, len(_MEASURES), figsize=(4.2 * len(_MEASURES),
                                                       1.2 + 0.32 * len(labels)), sharey=True)
    for ax, (column, title, lower) in zip(axes[0], _MEASURES):
        for y, row in enumerate(fitted.itertuples()):
            look = style(row.estimator)
            ax.errorbar(getattr(row, column), y, xerr=np.nan_to_num(getattr(row, f"{column}_sd")),
                        fmt=str(look["marker"]), color=look["color"], capsize=3)
        for name, dash in zip(BASELINES, ("--", ":")):
            base = summary[summary.estimator == name]
            if len(base) and np.isfinite(base[column].iloc[0]):
                ax.axvline(base[column].iloc[0], color="grey", linestyle=dash, label=name)
        ax.set_title(title + (" (lower is better)" if lower else " (higher is better)"),
                     fontsize=9)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    return save_figure(fig, path, ("png",))


def agreement_panel_inches(n_estimators: int) -> float:
    """The width of one panel of ``agreement.png``: 4 in up to five estimators, then half an
    inch more per estimator, at most 9 in."""
    return min(max(4.0, 1.5 + 0.5 * n_estimators), 9.0)


def write_in_cells(ax: Axes, matrix: np.ndarray) -> list[Text]:
    """Each cell's value written in it (two significant digits), white on the dark half of the
    colour scale; at :data:`CELL_FONT` until :func:`fit_cell_numbers` sizes them."""
    top = np.nanmax(matrix)
    return [ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=CELL_FONT,
                    color="white" if value < top / 2 else "black")
            for (i, j), value in np.ndenumerate(matrix)]


def fit_cell_numbers(fig: Figure, panels: list[tuple[Axes, int, list[Text]]]
                     ) -> None:
    """Shrink each panel's numbers so that the widest fits its cell (:data:`CELL_MARGIN` of
    the cell's width and height, measured once the figure is laid out); remove them where that
    takes a font under :data:`SMALLEST_CELL_FONT`."""
    fig.draw_without_rendering()  # the constrained layout places the panels
    renderer = fig.canvas.get_renderer()
    for ax, n, texts in panels:
        box = ax.get_window_extent(renderer)
        cell = min(box.width, box.height) / n
        extents = [text.get_window_extent(renderer) for text in texts]
        widest = max(extent.width for extent in extents)
        tallest = max(extent.height for extent in extents)
        size = CELL_FONT * min(1.0, CELL_MARGIN * cell / widest, CELL_MARGIN * cell / tallest)
        for text in texts:
            if size >= SMALLEST_CELL_FONT:
                text.set_fontsize(size)
            else:
                text.remove()


def draw_agreement(agreement: pd.DataFrame, path: Path) -> list[Path]:
    """One panel per model x item parameter: the RMSE between every pair of estimators, each
    fit in the model's common frame (named under the panel's title; symmetric, so one number
    per pair), as a symmetric matrix with the values written in as far as they fit
    (:func:`fit_cell_numbers`)."""
    items = agreement[agreement.parameter != "skill"]
    panels = list(items.groupby(["model", "parameter"], sort=False))
    if not panels:
        return []
    widths = [agreement_panel_inches(len(set(rows.estimator) | set(rows.other)))
              for _, rows in panels]
    fig, axes = new_figure(1, len(panels), figsize=(sum(widths), max(widths) - 0.2),
                           width_ratios=widths)
    written = []
    for ax, ((model, parameter), rows) in zip(axes[0], panels):
        names = list(dict.fromkeys([*rows.estimator, *rows.other]))
        matrix = np.zeros((len(names), len(names)))
        for r in rows.itertuples():
            i, j = names.index(r.estimator), names.index(r.other)
            matrix[i, j] = matrix[j, i] = r.rmse
        image = ax.imshow(matrix, cmap="viridis")
        written.append((ax, len(names), write_in_cells(ax, matrix)))
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{model}: RMSE of {parameter}\n"
                     + "\n".join(textwrap.wrap(f"({get_model(model).common_frame})", 48)),
                     fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.7)
    fit_cell_numbers(fig, written)
    return save_figure(fig, path, ("png",))


def draw_figures(comparison: Comparison, folder: Path) -> list[Path]:
    """``heldout.png`` and ``agreement.png`` in ``folder`` (a figure with nothing to draw is
    not written)."""
    return [*draw_heldout(comparison.summary, folder / "heldout"),
            *draw_agreement(comparison.agreement, folder / "agreement")]


#: the columns of compare.csv the report's main table shows
_SHOWN = ("estimator", "model", "status", "heldout_logloss", "heldout_logloss_sd", "imv",
          "imv_to_best", "brier", "auc", "n_infinite_predictions", "aic", "bic", "seconds",
          "converged", "n_runaway", "ll_gap")


def report_text(comparison: Comparison, figures: list[Path], *, source: str = "",
                seconds: float | None = None, settings: str = "", eps: float = EPS) -> str:
    """The Markdown report: the summary, the tests, the agreement of the difficulties, what did
    not complete, the estimators left out unless named (their ``left_out_of_compare``), and
    the figures (``eps``: the clip of the probabilities)."""
    summary = comparison.summary
    shown = summary[[c for c in _SHOWN if c in summary]]
    lines = ["# irtbench compare" + (f": {source}" if source else ""), ""]
    if comparison.verdict:
        lines += [f"**{comparison.verdict}**", ""]
    if settings:
        lines += [settings, ""]
    if seconds is not None:
        lines += [f"Whole comparison: {seconds:.1f} s.", ""]
    lines += [
        "Held-out scores: means over folds (SD over folds beside the log-loss); predicted "
        f"probabilities clipped to [{eps:g}, 1 - {eps:g}]; `n_infinite_predictions` counts "
        "held-out predictions that used an infinite estimate. `seconds`: the full-data fit by "
        "the suite's one clock. AIC/BIC for marginal-likelihood fits only. `ll_gap`: the "
        "full-data fit's marginal log-likelihood below the exact marginal maximum (mml-em at a "
        "tight tolerance; at N(0, 1) skills, or the best normal ones for joint fits and the "
        "Rasch model: irtbench.gaps). Baselines: "
        "`constant` (the training proportion correct) and `item-means` (each item's). `imv`: "
        "the InterModel Vigorish over `item-means` (the relative gain in the weight of the "
        "coin as predictable as each fit's held-out predictions, fold by fold, averaged); "
        "`imv_to_best`: the best fit's IMV over this one. The best fit is within the "
        "fold-to-fold noise of the next when their mean paired per-fold difference in "
        "log-loss is below its SD over folds.",
        "",
        markdown_table(shown),
        "",
    ]
    if not comparison.tests.empty:
        lines += ["## Likelihood-ratio tests of nested models", "",
                  markdown_table(comparison.tests), ""]
    difficulties = comparison.agreement[comparison.agreement.parameter.isin(ITEM_PARAMETERS)]
    if not difficulties.empty:
        frames = [f"- {get_model(m).title}: {get_model(m).common_frame}"
                  for m in dict.fromkeys(difficulties.model)]
        lines += ["## Agreement between estimators", "",
                  "Each pair of fits compared in one frame, each fit moved there by its own "
                  "estimates (no least-squares map of one onto the other, so the numbers do not "
                  "depend on which fit is first):", "", *frames, "",
                  markdown_table(difficulties[["model", "estimator", "other", "parameter",
                                               "corr", "rmse", "n_items", "n_left_out"]]), ""]
    left_out = [f"- {name}: {get_estimator(name).left_out_of_compare}"
                for name in estimators() if get_estimator(name).left_out_of_compare
                and name not in set(summary.estimator)]
    if left_out:
        lines += ["Left out unless named:", "", *left_out, ""]
    problems = summary[summary.status != "ok"]
    if len(problems):
        lines += ["## Not completed", ""]
        lines += [f"- {r.status}: {r.estimator} {r.model}: {r.reason}"
                  for r in problems.itertuples()]
        lines.append("")
    titles = {"heldout": "Held-out prediction", "agreement": "Agreement of item parameters"}
    for path in figures:
        title = titles.get(path.stem, path.stem)
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    return "\n".join(lines)


@contextmanager
def staged(folder: Path) -> Iterator[Path]:
    """A temporary folder beside ``folder``'s files; on success each file in it is renamed into
    ``folder`` (one atomic rename per file), so that no file there is ever half written."""
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".compare-", dir=folder))
    try:
        yield stage
        for path in sorted(stage.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


#: every file a comparison may write (the figures only where they have something to draw)
FILES = ("compare.csv", "agreement.csv", "folds.csv", "tests.csv", "heldout.png",
         "agreement.png", "report.md")


def write_comparison(comparison: Comparison, folder: Path | str, *, source: str = "",
                     seconds: float | None = None, settings: str = "") -> list[Path]:
    """``compare.csv``, ``agreement.csv``, ``folds.csv``, ``tests.csv``, the figures and
    ``report.md`` in ``folder`` (each written whole or not at all); a file of :data:`FILES`
    an earlier comparison left there and this one does not write (a figure with nothing to
    draw now) is removed, so that no file of another run is read as this one's. Other files
    are left alone."""
    folder = Path(folder)
    with staged(folder) as stage:
        comparison.summary.to_csv(stage / "compare.csv", index=False)
        comparison.agreement.to_csv(stage / "agreement.csv", index=False)
        comparison.folds.to_csv(stage / "folds.csv", index=False)
        comparison.tests.to_csv(stage / "tests.csv", index=False)
        figures = draw_figures(comparison, stage)
        (stage / "report.md").write_text(report_text(
            comparison, figures, source=source, seconds=seconds, settings=settings, eps=EPS))
        names = sorted(p.name for p in stage.iterdir())
    for name in set(FILES) - set(names):
        (folder / name).unlink(missing_ok=True)
    return [folder / name for name in names]

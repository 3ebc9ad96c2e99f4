"""Figures and the report are drawn from a results folder alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

import irtbench
from irtbench import plots
from irtbench.cli import main

BASELINE = Path(__file__).resolve().parents[2] / "results" / "baseline"


def test_plot_redraws_every_figure_and_the_report_from_files(tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(BASELINE, folder, ignore=shutil.ignore_patterns("*.png", "*.svg", "report.md"))
    assert main(["plot", str(folder), "--svg"]) == 0
    for name in plots.FIGURES:
        for suffix in (".png", ".svg"):
            path = folder / f"{name}{suffix}"
            assert path.is_file() and path.stat().st_size > 10_000, path
    report = (folder / "report.md").read_text()
    assert "| estimator |" in report and "torch-adam" in report
    assert all(f"({name}.png)" in report for name in plots.FIGURES)


def test_plot_refuses_a_folder_without_results(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert "no such results folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty")]) == 2


def test_each_estimator_keeps_the_colour_it_declares_and_no_two_share_one():
    """A colour comes from the estimator's declared ``colour`` (not its place in the registry,
    which a new estimator would shift), and every registered estimator's is its own."""
    names = irtbench.estimators()
    looks = {name: (plots.style(name)["color"], plots.style(name)["marker"]) for name in names}
    assert len(set(looks.values())) == len(names)
    for name in names:
        index = irtbench.get_estimator(name).colour
        assert plots.style(name)["color"] == plots._COLORS[index % len(plots._COLORS)]


def test_the_throughput_figure_draws_every_estimator_and_each_bound(tmp_path):
    from irtbench.plots import plot_throughput

    rows = pd.DataFrame({"estimator": ["torch-adam", "torch-adam", "jax-adam"],
                         "device": ["cuda", "cuda", "cpu"], "responses": [1e6, 1e8, 1e6],
                         "responses_per_second": [1e10, 1e11, 1e9],
                         "bound_rate": [4e12, 4e12, 2e10]})
    import matplotlib.pyplot as plt

    drawn = {}
    real_finish = plt.Figure.savefig

    def savefig(fig, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ax = fig.axes[0]
        drawn["lines"] = [line.get_label() for line in ax.get_lines()]
        return real_finish(fig, *args, **kwargs)

    plt.Figure.savefig = savefig
    try:
        written = plot_throughput(rows, tmp_path / "throughput")
    finally:
        plt.Figure.savefig = real_finish
    assert written[0].exists() and written[0].stat().st_size > 10_000
    assert "torch-adam (GPU)" in drawn["lines"] and "jax-adam (CPU)" in drawn["lines"]
    assert sum(label.startswith("_") for label in drawn["lines"]) == 2  # the two bound lines


def _drawn_figures(tmp_path, monkeypatch, change=None) -> dict[str, object]:
    """Every figure ``irtbench plot`` draws from a copy of the baseline (first changed by
    ``change(folder)``, if given), by file name."""
    folder = tmp_path / "copy"
    shutil.copytree(BASELINE, folder, ignore=shutil.ignore_patterns("*.png", "*.svg", "report.md"))
    if change is not None:
        change(folder)
    figures = {}
    finish = plots.save_figure

    def keep(fig, path, formats):
        renderer = fig.canvas.get_renderer()  # Agg: laid out as saved
        fig.draw(renderer)
        fig.title_boxes = [(ax.get_title(), ax.title.get_window_extent(renderer),
                            ax.get_window_extent(renderer)) for ax in fig.axes]
        figures[path.name] = fig
        return finish(fig, path, ())

    monkeypatch.setattr(plots, "save_figure", keep)
    plots.plot_all(folder)
    return figures


def test_panel_titles_do_not_collide(tmp_path, monkeypatch):
    """coverage-2pl's three long panel titles ran into each other (issue 25): every panel's
    title now fits over its panel in every figure."""
    for name, fig in _drawn_figures(tmp_path, monkeypatch).items():
        for text, title, panel in fig.title_boxes:
            assert title.x0 >= panel.x0 - 2 and title.x1 <= panel.x1 + 2, (name, text)


def test_identical_error_histograms_are_drawn_once_and_named_together(tmp_path, monkeypatch):
    """torch-adam's and jax-adam's errors are the same (the same objective), so one histogram
    hid the other: no two drawn histograms are identical, and the legend names every
    estimator of the size drawn."""
    figures = _drawn_figures(tmp_path, monkeypatch)
    for name in ("errors", "errors-2pl"):
        fig = figures[name]
        for ax in fig.axes:
            steps = [artist.get_data()[0] for artist in ax.patches]
            for i, one in enumerate(steps):
                assert not any(np.array_equal(one, other) for other in steps[i + 1:]), name
        legend = " ".join(text.get_text() for text in fig.legends[0].get_texts())
        assert "jax-adam = torch-adam" in legend, legend
    legend = " ".join(text.get_text() for text in figures["errors"].legends[0].get_texts())
    for estimator in ("cml", "jml-newton", "mml-em", "numpyro-map", "numpyro-nuts",
                      "numpyro-vi"):
        assert estimator in legend


def _legend_labels(fig) -> list[str]:
    return [text.get_text() for text in fig.legends[0].get_texts()]


def _drawn_labels(fig) -> set[str]:
    """The labels of every line and histogram drawn in the figure's panels."""
    return {artist.get_label() for ax in fig.axes for artist in (*ax.get_lines(), *ax.patches)
            if not artist.get_label().startswith("_")}


#: the widest figure a sweep draws, in inches at 130 dpi (speed's two panels: 1820 px)
WIDEST = 14.0


def test_figures_are_of_a_sane_width_and_the_bound_is_one_legend_entry(tmp_path, monkeypatch):
    """time_to_accuracy.png was 2600 px wide (three panels of 6 in) with two identical dotted
    lines in its legend, "Cramér–Rao bound, difficulty (0.090)" and "..., skill (0.090)": now
    no figure is wider than 1820 px, the bound is one legend entry, and each panel's value is
    in its title."""
    figures = _drawn_figures(tmp_path, monkeypatch)
    for name, fig in figures.items():
        assert fig.get_size_inches()[0] <= WIDEST, name
    fig = figures["time_to_accuracy"]
    labels = _legend_labels(fig)
    assert labels.count("Cramér–Rao bound") == 1 and len(labels) == len(set(labels))
    assert not any("0.090" in label for label in labels)
    titles = [text for text, *_ in fig.title_boxes]
    assert "difficulties, 1000x1000 (bound 0.090)" in titles


def test_identical_curves_are_drawn_once(tmp_path, monkeypatch):
    """Two estimators with the same curves (every seed's seconds and errors) are one line
    per seed, labelled ``a = b``, as identical histograms are."""
    def twin(folder):
        curves = pd.read_csv(folder / "curves.csv")
        rest = curves[curves.estimator != "jax-adam"]
        copy = rest[rest.estimator == "torch-adam"].assign(estimator="jax-adam")
        pd.concat([rest, copy]).to_csv(folder / "curves.csv", index=False)

    fig = _drawn_figures(tmp_path, monkeypatch, twin)["time_to_accuracy"]
    labels = _legend_labels(fig)
    assert "jax-adam = torch-adam" in labels
    assert "jax-adam" not in labels and "torch-adam" not in labels
    assert set(labels) == _drawn_labels(fig)


def _with_a_runaway(folder: Path) -> None:
    """The baseline's 2PL at 1000 x 1000 as if question 0 had run away in the torch-adam and
    jax-adam fits of every seed: counted in results.csv, flagged in errors.csv with an error
    of 100."""
    table = pd.read_csv(folder / "results.csv")
    adam = (table.model == "2pl") & table.estimator.isin(["torch-adam", "jax-adam"])
    table.loc[adam, "n_runaway"] = 1
    table.loc[adam & (table.n_students == 1000) & (table.n_questions == 1000),
              "rmse_discrimination"] = 3.2
    table.to_csv(folder / "results.csv", index=False)
    errors = pd.read_csv(folder / "errors.csv").assign(runaway=False)
    ran = ((errors.model == "2pl") & errors.estimator.isin(["torch-adam", "jax-adam"])
           & (errors.kind != "skill") & (errors["index"] == 0))
    errors.loc[ran, "runaway"] = True
    errors.loc[ran & (errors.kind == "discrimination"), "error"] = 100.0
    errors.to_csv(folder / "errors.csv", index=False)


def test_runaway_items_do_not_set_the_error_axes_and_are_counted(tmp_path, monkeypatch):
    """errors-2pl.png squashed its discrimination panel to +/-100 for a runaway item, and its
    legend listed "jax-adam = torch-adam" and each of them again (identical in one panel, not
    in the other): the runaways are left out, counted in each panel's title, and the legend
    has one entry per line drawn."""
    fig = _drawn_figures(tmp_path, monkeypatch, _with_a_runaway)["errors-2pl"]
    panels = {text.split("\n")[0]: ax for ax, (text, *_) in zip(fig.axes, fig.title_boxes)}
    assert max(np.abs(panels["discriminations"].get_xlim())) < 1
    titles = [text for text, *_ in fig.title_boxes]
    assert titles.count("discriminations\n(6 estimate(s) of runaway items left out)") == 1
    assert "difficulties\n(6 estimate(s) of runaway items left out)" in titles
    assert "skills" in titles
    labels = _legend_labels(fig)
    assert "jax-adam = torch-adam" in labels and len(labels) == len(set(labels))
    assert set(labels) == _drawn_labels(fig)


def test_the_report_shows_runaways_and_marks_the_metrics_they_enter(tmp_path):
    """run --quick's report showed a 2PL discrimination RMSE of 15.1 (CRB ratio 64.6) with no
    word of the runaway behind it: the table has n_runaway, the item metrics of the rows
    with runaways are marked, and a note says what both mean. The skills' metrics and the
    rows without runaways are plain."""
    from irtbench.harness import RUNAWAY_NOTE
    from irtbench.harness.summary import RUNAWAY_MARK

    folder = tmp_path / "copy"
    shutil.copytree(BASELINE, folder, ignore=shutil.ignore_patterns("*.png", "*.svg"))
    _with_a_runaway(folder)
    report = plots.write_report(folder).read_text().splitlines()
    header = next(line for line in report if line.startswith("| model |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert "n_runaway" in columns
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in report
            if line.startswith("| 2pl |")]
    assert any(row[1] == "mml-em" and row[columns.index("n_runaway")] == "0" for row in rows)
    for row in rows:
        cells = dict(zip(columns, row))
        ran = float(cells["n_runaway"]) > 0  # the baseline's mml-em had some at 100 x 100
        assert cells["n_runaway"] == "1" or cells["estimator"] == "mml-em"
        for column in ("rmse_diff", "crb_diff", "rmse_discr", "crb_discr", "coverage_diff"):
            assert cells[column].endswith(RUNAWAY_MARK) == ran, (cells["estimator"], column)
        assert not cells["rmse_skill"].endswith(RUNAWAY_MARK)
    assert any(row[columns.index("rmse_discr")] == f"3.2 {RUNAWAY_MARK}" for row in rows)
    assert RUNAWAY_NOTE in report
    rasch = [line for line in report if line.startswith("| rasch |")]
    assert rasch and not any(RUNAWAY_MARK in line for line in rasch)

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
def _drawn_figures(tmp_path, monkeypatch) -> dict[str, object]:
    """Every figure ``irtbench plot`` draws from a copy of the baseline, by file name."""
    folder = tmp_path / "copy"
    shutil.copytree(BASELINE, folder, ignore=shutil.ignore_patterns("*.png", "*.svg", "report.md"))
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

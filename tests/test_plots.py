"""Figures and the report are drawn from a results folder alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from irtbench import plots
from irtbench.cli import main

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baseline"


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


def test_each_estimator_keeps_its_colour():
    assert plots.style("torch-adam") == plots.style("torch-adam")
    assert plots.style("torch-adam")["color"] != plots.style("jax-adam")["color"]


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

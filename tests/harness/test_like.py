"""``irtbench run --like`` (:mod:`irtbench.like`): data drawn like a user's, and the sweep over
those draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench import harness
from irtbench.cli import main
from irtbench.csvio import load_responses
from irtbench.like import DIFFICULTY_LIMIT, design_like, simulate_like, usable_truth

LSAT7 = Path(__file__).parents[1] / "data" / "lsat7.csv"


def test_a_draw_keeps_the_shape_the_missing_cells_and_the_fitted_items():
    data = irtbench.simulate(300, 8, seed=4, model="2pl", missing=0.3)
    design = design_like(data.responses, "2pl")
    assert design.shape == (300, 8) and design.missing == pytest.approx(0.3, abs=0.03)
    draw = simulate_like(design, seed=1)
    assert draw.model == "2pl" and draw.responses.shape == (300, 8)
    np.testing.assert_array_equal(np.isnan(draw.responses), np.isnan(data.responses))
    assert np.corrcoef(design.items["difficulty"], data.difficulty)[0, 1] > 0.9
    np.testing.assert_array_equal(draw.discrimination, design.items["discrimination"])
    assert draw.skill.std() == pytest.approx(1.0, abs=0.15)
    again = simulate_like(design, seed=1)
    np.testing.assert_array_equal(again.responses, draw.responses)


def test_estimates_that_cannot_be_truth_are_clipped_and_counted():
    items = {"difficulty": np.array([0.5, -np.inf, 12.0, 1.0]),
             "discrimination": np.array([1.2, np.nan, 9.0, -0.3])}
    truth, changed = usable_truth("2pl", items)
    assert list(truth["difficulty"]) == [0.5, -DIFFICULTY_LIMIT, DIFFICULTY_LIMIT, 1.0]
    assert np.all(truth["discrimination"] > 0) and changed == 3


def test_the_sweep_runs_on_draws_like_the_data(tmp_path):
    responses = load_responses(LSAT7).responses
    like = {"rasch": design_like(responses, "rasch")}
    table = harness.sweep(estimator_names=["mml-em", "jml-newton"], seeds=1, like=like,
                          isolate=False, progress=False, out=tmp_path / "run")
    assert list(table.status) == ["ok", "ok"]
    assert set(zip(table.n_students, table.n_questions)) == {(1000, 5)}
    assert table.rmse_difficulty.lt(0.5).all()


def test_like_leaves_out_respondents_with_no_answer_with_a_note(tmp_path, capsys):
    """run --like refused a file with rows of no answer (issue 31): the draws are like the
    rest, and one note names what was left out."""
    answers = pd.read_csv(LSAT7)
    answers.iloc[[104, 998], :] = np.nan
    path = tmp_path / "gaps.csv"
    answers.to_csv(path, index=False, float_format="%.0f")
    assert main(["run", "--like", str(path), "--model", "rasch", "--estimators", "jml-newton",
                 "--seeds", "1", "--in-process", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert (f"note: {path}: 2 respondent(s) with no observed answer ('104', '998') left out"
            in err)
    assert f"like {path}: 998 x 5, 0.0% missing" in err
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert list(results.status) == ["ok"] and list(results.n_students) == [998]


def test_like_refuses_sizes(tmp_path, capsys):
    assert main(["run", "--like", str(LSAT7), "--sizes", "10x5", "--out",
                 str(tmp_path / "r")]) == 2
    assert "--like takes the file's shape" in capsys.readouterr().err
    assert main(["run", "--like", str(tmp_path / "none.csv"), "--out", str(tmp_path / "r")]) == 2

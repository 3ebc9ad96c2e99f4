"""Simulation, validation and loading of response data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import binomial_band

import irtbench
from irtbench.models import probabilities
from irtbench.responses import parse_size, validate_responses


# -- simulate ---------------------------------------------------------------------------
def test_simulate_shapes_and_dtypes_with_students_and_questions_different():
    data = irtbench.simulate(n_students=70, n_questions=30, seed=0)
    assert data.responses.shape == (70, 30)  # the notebook built (n_students, n_students)
    assert data.responses.dtype == np.float32
    assert data.skill.shape == (70,) and data.skill.dtype == np.float64
    assert data.difficulty.shape == (30,) and data.difficulty.dtype == np.float64
    assert set(np.unique(data.responses)) <= {0.0, 1.0}


def test_simulate_is_deterministic_per_seed():
    a = irtbench.simulate(50, 20, seed=7, missing=0.2)
    b = irtbench.simulate(50, 20, seed=7, missing=0.2)
    c = irtbench.simulate(50, 20, seed=8, missing=0.2)
    np.testing.assert_array_equal(a.responses, b.responses)  # NaN == NaN here
    np.testing.assert_array_equal(a.skill, b.skill)
    assert not np.array_equal(a.skill, c.skill)


def test_simulate_default_distribution_is_the_notebooks_uniform():
    data = irtbench.simulate(20000, 200, seed=1)
    for values in (data.skill, data.difficulty):
        assert values.min() >= -3 and values.max() <= 3
    # Uniform(-3, 3) has variance 3: the sample variance of 20000 draws is within 1%.
    assert abs(data.skill.var() - 3.0) < 0.05


def test_simulate_normal_option():
    data = irtbench.simulate(20000, 20, seed=2, skill_distribution="normal", skill_scale=1.5)
    assert abs(data.skill.std() - 1.5) < 0.03
    assert np.abs(data.skill).max() > 3.0  # not the uniform


def test_responses_follow_the_rasch_probabilities():
    data = irtbench.simulate(2000, 50, seed=3)
    p = probabilities(data.skill, data.difficulty)
    # Each cell is Bernoulli(p): the mean of y - p has sd sqrt(sum p(1-p)) / N.
    sd = np.sqrt((p * (1 - p)).sum()) / p.size
    assert abs((data.responses - p).mean()) < 3.3 * sd
    # and per question, the proportion correct tracks the mean probability
    np.testing.assert_allclose(data.responses.mean(0), p.mean(0), atol=0.05)


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_missing_fraction_within_sampling_error(fraction):
    data = irtbench.simulate(400, 100, seed=4, missing=fraction)
    observed_missing = np.isnan(data.responses).mean()
    assert abs(observed_missing - fraction) < binomial_band(data.responses.size, fraction)


def test_heavy_missingness_still_leaves_every_row_and_column_observed():
    data = irtbench.simulate(300, 5, seed=5, missing=0.95)
    validate_responses(data.responses)  # would raise on an empty row or column


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_students": 0, "n_questions": 5}, "n_students"),
        ({"n_students": 5, "n_questions": 2.5}, "n_questions"),
        ({"n_students": 5, "n_questions": 5, "missing": 1.0}, "missing"),
        ({"n_students": 5, "n_questions": 5, "skill_distribution": "beta"}, "distribution"),
    ],
)
def test_simulate_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        irtbench.simulate(**kwargs, seed=0)


# -- validate_responses ------------------------------------------------------------------
def test_validate_accepts_bools_ints_none_and_dataframes():
    out = validate_responses([[True, False], [1, None]])
    assert out.dtype == np.float32
    assert np.isnan(out[1, 1]) and out[0, 0] == 1.0
    frame = pd.DataFrame({"q1": [1, 0], "q2": [0, 1]})
    np.testing.assert_array_equal(validate_responses(frame), [[1, 0], [0, 1]])


@pytest.mark.parametrize(
    "responses, message",
    [
        ([[0, 1], [2, 0]], r"found 2 at row 1, column 0"),
        ([[0, 0.5]], r"found 0.5 at row 0, column 1"),
        ([[0, 1], [np.inf, 0]], r"found inf at row 1, column 0"),
        ([[0, -1]], r"found -1 at row 0, column 1"),
        ([[0, "x"]], r"numeric"),
        ([0, 1, 1], r"2-D .* got 1-D"),
        (np.zeros((2, 2, 2)), r"2-D .* got 3-D"),
        (np.zeros((0, 4)), r"empty"),
        (np.zeros((4, 0)), r"empty"),
        ([[0, 1], [np.nan, np.nan], [1, 0]], r"student \(row\) 1 has no observed response"),
        ([[0, np.nan], [1, np.nan]], r"question \(column\) 1 has no observed response"),
    ],
)
def test_validate_rejects_bad_input_naming_the_place(responses, message):
    with pytest.raises(ValueError, match=message):
        validate_responses(responses)


def test_fit_rejects_bad_input_before_touching_torch():
    with pytest.raises(ValueError, match="found 3 at row 0, column 0"):
        irtbench.fit([[3, 0], [1, 0]], estimator="torch-adam", device="cpu")


# -- load_responses ---------------------------------------------------------------------
def test_load_wide_csv_with_blanks_and_labels(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("id,q1,q2,q3\nann,1,0,\nbob,NA,1,1\ncid,0,,1\n")
    table = irtbench.load_responses(path)
    assert table.students == ["ann", "bob", "cid"]
    assert table.questions == ["q1", "q2", "q3"]
    np.testing.assert_array_equal(
        table.responses, np.array([[1, 0, np.nan], [np.nan, 1, 1], [0, np.nan, 1]], np.float32)
    )


def test_load_wide_csv_without_label_column(verbagg_path):
    table = irtbench.load_responses(verbagg_path)
    assert table.responses.shape == (316, 24)
    assert table.students[:2] == ["0", "1"]
    assert table.questions[0] == "S1WantCurse"
    assert abs(np.mean(table.responses) - 0.476) < 0.001  # the data README's 47.6% correct


def test_load_long_csv(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("Student,Question,Response\ns1,a,1\ns1,b,0\ns2,b,1\ns3,a,0\n")
    table = irtbench.load_responses(path)
    assert table.students == ["s1", "s2", "s3"] and table.questions == ["a", "b"]
    np.testing.assert_array_equal(
        table.responses, np.array([[1, 0], [np.nan, 1], [0, np.nan]], np.float32)
    )


def test_long_and_wide_of_the_same_data_agree(tmp_path):
    data = irtbench.simulate(30, 8, seed=9, missing=0.3)
    rows, cols = np.nonzero(~np.isnan(data.responses))
    long = pd.DataFrame({"student": rows, "question": cols, "response": data.responses[rows, cols]})
    long.to_csv(tmp_path / "long.csv", index=False)
    table = irtbench.load_responses(tmp_path / "long.csv")
    np.testing.assert_array_equal(table.responses, data.responses)


@pytest.mark.parametrize(
    "text, message",
    [
        ("q1,q2\n1,0\n0,yes\n", r"line 3, column 'q2': 'yes' is not 0, 1 or blank"),
        ("q1,q2\n1,0\n,\n", r"line 3 \(student '1'\) has no observed response"),
        ("student,question,response\na,x,1\na,x,0\n", r"more than one response"),
        ("student,question,response\na,x,1\nb,x,maybe\n", r"line 3, column 'response': 'maybe'"),
        ("", r"not a readable CSV"),
        ('q1,q2\n1,0\n0,1,1,"\n', r"not a readable CSV"),
    ],
)
def test_load_reports_bad_files_in_one_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        irtbench.load_responses(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_load_missing_file():
    with pytest.raises(FileNotFoundError, match="no such file: nowhere.csv"):
        irtbench.load_responses("nowhere.csv")


def test_parse_size():
    assert parse_size("1000x100") == (1000, 100)
    assert parse_size("1e5X1e3") == (100000, 1000)
    with pytest.raises(ValueError, match="STUDENTSxQUESTIONS"):
        parse_size("1000")

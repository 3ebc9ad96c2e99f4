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
        ("q1,q2\n,\n,NA\n", r"no observed response: every cell is blank"),
        ("id,item,resp\na,x,\nb,x,\n", r"no observed response: every value of column 'resp'"),
        ("model,item,score\nm,x,1.0\nm,y,0.5\n", r"line 3, column 'score': '0.5' is not 0, 1"),
        ("Model,Item,Score\nm,x,2\n", r"line 2, column 'Score': '2' is not 0, 1 or blank"),
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


# -- long files by the names of the warehouses and harnesses, Parquet, unobserved rows ------
#: one small data set (rows of ``(respondent, item, answer)``) that every layout below writes
ANSWERS = [("ann", "q1", 1), ("ann", "q2", 0), ("bob", "q1", 0), ("bob", "q3", 1),
           ("cid", "q2", 1), ("cid", "q3", 0)]
#: its matrix: students ann, bob, cid x questions q1, q2, q3
MATRIX = np.array([[1, 0, np.nan], [0, np.nan, 1], [np.nan, 1, 0]], np.float32)


def long_frame(respondent: str, item: str, answer: str, scale=int) -> pd.DataFrame:
    return pd.DataFrame([(s, q, scale(r)) for s, q, r in ANSWERS],
                        columns=[respondent, item, answer])


@pytest.mark.parametrize("names", [
    ("student", "question", "response"),   # irtbench's own
    ("id", "item", "resp"),                # the item-response warehouses'
    ("model", "item", "correct"),          # evaluation harnesses'
    ("model", "item", "score"),
    ("Model", "ITEM", "Score"),            # any case
    (" person ", "Problem", "RESP"),        # spaces around a name
    ("person_id", "item_id", "response"),  # an id's name
    ("user", "question_id", "correct"),
])
def test_long_files_by_every_accepted_name_in_any_order(tmp_path, names):
    path = tmp_path / "long.csv"
    frame = long_frame(*names)
    for columns in (list(names), list(names)[::-1]):
        frame[columns].to_csv(path, index=False)
        table = irtbench.load_responses(path)
        assert table.students == ["ann", "bob", "cid"]
        assert table.questions == ["q1", "q2", "q3"]
        np.testing.assert_array_equal(table.responses, MATRIX)
        assert table.label_column == names[0] and not table.unobserved and table.notes == ()


def test_a_score_column_of_floats_is_read_as_answers(tmp_path):
    path = tmp_path / "harness.csv"
    long_frame("model", "item", "score", scale=float).to_csv(path, index=False)
    assert "1.0" in path.read_text()
    np.testing.assert_array_equal(irtbench.load_responses(path).responses, MATRIX)


def test_a_long_files_other_columns_are_ignored_with_a_note(tmp_path):
    """The warehouse's files carry response times, dates, raters: not part of the matrix."""
    path = tmp_path / "irw.csv"
    frame = long_frame("id", "item", "resp").assign(rt=np.arange(6) + 0.5, wave=1)
    frame.to_csv(path, index=False)
    table = irtbench.load_responses(path)
    np.testing.assert_array_equal(table.responses, MATRIX)
    assert table.notes == (("the columns 'rt', 'wave' ignored (a long file's respondent, item "
                            "and answer are 'id', 'item' and 'resp')"),)
    frame.assign(wave=[1, 1, 1, 1, 1, 2]).pipe(lambda f: pd.concat([f, f.tail(1)])).to_csv(
        path, index=False)
    with pytest.raises(ValueError, match=r"line 8: student 'cid' has more than one response to "
                       r"question 'q3' \(the columns 'rt', 'wave' are ignored"):
        irtbench.load_responses(path)


ACCEPTED = ("a long file has one column for each role, named in any case: respondent: "
            "student, person, respondent, id, model, subject, examinee, user; item: question, "
            "item, problem; answer: response, resp, correct, score; a respondent's or an "
            "item's name also with _id (person_id, item_id)")


@pytest.mark.parametrize("header, problem", [
    ("person,item,value", ("line 1: a long file's header, but no column for the answer; the "
                           "column(s) 'value' could not be placed; ")),
    ("who,item,correct", ("line 1: a long file's header, but no column for the respondent; "
                          "the column(s) 'who' could not be placed; ")),
    ("id,model,item,correct", ("line 1: a long file's header, but 2 columns could be the "
                               "respondent ('id', 'model'); ")),
    ("examinee_code,qid,val", ("line 2, column 'qid': 'q1' is not 0, 1 or blank, read as a "
                               "wide file; if it is a long one, the column(s) "
                               "'examinee_code', 'qid', 'val' could not be placed; ")),
])
def test_long_files_with_other_names_get_the_accepted_names_in_one_line(tmp_path, header,
                                                                          problem):
    path = tmp_path / "names.csv"
    width = header.count(",") + 1
    path.write_text(header + "\n" + ",".join(["a", "q1", "1", "0"][:width]) + "\n")
    with pytest.raises(ValueError) as info:
        irtbench.load_responses(path)
    assert str(info.value) == f"{path}: {problem}{ACCEPTED}"


def test_a_wide_file_with_one_bad_cell_gets_no_long_files_names(tmp_path):
    """Two columns of labels suggest a long file; a wide one has one at most."""
    path = tmp_path / "wide.csv"
    path.write_text("id,q1,q2\na,1,0\nb,0,maybe\nc,1,1\n")
    with pytest.raises(ValueError) as info:
        irtbench.load_responses(path)
    assert str(info.value) == f"{path}: line 3, column 'q2': 'maybe' is not 0, 1 or blank"


def test_students_and_questions_with_no_observed_answer_are_left_out_with_a_note(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("id,q1,q2,q3,q4\nann,1,0,,\nbob,,,,NA\ncid,0,1,,1\ndan,,,,\n")
    table = irtbench.load_responses(path)
    assert table.students == ["ann", "cid"] and table.questions == ["q1", "q2", "q4"]
    np.testing.assert_array_equal(table.responses, [[1, 0, np.nan], [0, 1, 1]])
    assert table.unobserved == (((1, "bob"), (3, "dan")), ((2, "q3"),))
    assert table.notes == (("2 respondent(s) with no observed answer ('bob', 'dan') and 1 "
                            "question(s) with no observed answer ('q3') left out (they carry "
                            "no information about the others)"),)
    with pytest.raises(ValueError, match="student \\(row\\) 1 has no observed response"):
        validate_responses(pd.read_csv(path).drop(columns="id"))  # the API refuses them


def test_a_long_files_respondents_with_only_blank_answers_are_left_out(tmp_path):
    path = tmp_path / "long.csv"
    rows = [f"{s},{q},{r}" for s, q, r in ANSWERS] + [f"s{k:02d},q1," for k in range(7)]
    path.write_text("model,item,correct\n" + "\n".join(rows) + "\n")
    table = irtbench.load_responses(path)
    np.testing.assert_array_equal(table.responses, MATRIX)
    assert [label for _, label in table.unobserved.students] == [f"s{k:02d}" for k in range(7)]
    assert [place for place, _ in table.unobserved.students] == list(range(3, 10))
    assert "7 respondent(s) with no observed answer ('s00', 's01', 's02', 's03', 's04' ... " \
           "(7 in all)) left out" in table.notes[0]


# -- Parquet -------------------------------------------------------------------------------
@pytest.fixture
def pyarrow():
    return pytest.importorskip("pyarrow", reason="pyarrow is not installed "
                               "(pip install 'irtbench[parquet]')")


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".PARQUET"])
def test_parquet_long_and_wide_read_as_csv_does(tmp_path, pyarrow, suffix):
    long = tmp_path / f"long{suffix}"
    long_frame("model", "item", "correct").to_parquet(long)
    wide = tmp_path / f"wide{suffix}"
    pd.DataFrame(MATRIX, columns=["q1", "q2", "q3"]).assign(
        id=["ann", "bob", "cid"])[["id", "q1", "q2", "q3"]].to_parquet(wide)
    for path in (long, wide):
        table = irtbench.load_responses(path)
        assert table.students == ["ann", "bob", "cid"] and table.questions == ["q1", "q2", "q3"]
        np.testing.assert_array_equal(table.responses, MATRIX)


def test_parquet_types_booleans_nulls_and_an_index_of_labels(tmp_path, pyarrow):
    """A column of booleans is right and wrong answers; a null is missing; a frame written
    with its labels as the index keeps them (as the first column)."""
    long = tmp_path / "bools.parquet"
    frame = long_frame("model", "item", "correct").astype({"correct": "boolean"})
    frame = pd.concat([frame, pd.DataFrame({"model": ["dan"], "item": ["q1"],
                                            "correct": pd.array([None], dtype="boolean")})])
    frame.to_parquet(long)  # its index, 0 ... 5, 0, is stored: positions, not labels
    table = irtbench.load_responses(long)
    np.testing.assert_array_equal(table.responses, MATRIX)
    assert table.unobserved.students == ((3, "dan"),)
    frame.set_index(["model", "item"]).to_parquet(long)  # a named index: its columns
    np.testing.assert_array_equal(irtbench.load_responses(long).responses, MATRIX)
    wide = tmp_path / "indexed.parquet"
    pd.DataFrame(MATRIX, columns=["q1", "q2", "q3"],
                 index=pd.Index(["ann", "bob", "cid"])).to_parquet(wide)
    table = irtbench.load_responses(wide)
    assert table.students == ["ann", "bob", "cid"] and table.label_column == "id"
    np.testing.assert_array_equal(table.responses, MATRIX)


def test_parquet_errors_name_the_file_the_row_and_the_column(tmp_path, pyarrow):
    path = tmp_path / "half.parquet"
    long_frame("model", "item", "score", scale=float).assign(
        score=[1.0, 0.0, 0.5, 1.0, 0.0, 1.0]).to_parquet(path)
    with pytest.raises(ValueError) as info:
        irtbench.load_responses(path)
    assert str(info.value) == f"{path}: row 2, column 'score': '0.5' is not 0, 1 or blank"
    broken = tmp_path / "broken.pq"
    broken.write_text("id,q1\na,1\n")
    with pytest.raises(ValueError, match=f"^{broken} is not a readable Parquet file: "):
        irtbench.load_responses(broken)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import sys

    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(irtbench.csvio.ExtraNotInstalled) as info:
        irtbench.load_responses(path)
    assert str(info.value) == (f"{path}: reading Parquet needs pyarrow, which is not installed; "
                               "install it with: pip install 'irtbench[parquet]'")


def test_load_missing_file():
    with pytest.raises(FileNotFoundError, match="no such file: nowhere.csv"):
        irtbench.load_responses("nowhere.csv")


def test_parse_size():
    assert parse_size("1000x100") == (1000, 100)
    assert parse_size("1e5X1e3") == (100000, 1000)
    with pytest.raises(ValueError, match="STUDENTSxQUESTIONS"):
        parse_size("1000")

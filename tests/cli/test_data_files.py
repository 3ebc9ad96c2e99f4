"""Data as users have them, through the commands: long files under the names of the
item-response warehouses and evaluation harnesses, Parquet files, and students or questions with
no observed answer (left out with a note, written by ``fit`` and ``score`` as not estimated).
Every file is made here, in ``tmp_path``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench.cli import main
from irtbench.estimates import read_estimates, read_items
from irtbench.models import get_model
from irtbench.scoring import SkillPrior, score

#: the students and questions of :func:`gaps` with no observed answer, at their places
EMPTY_STUDENTS, EMPTY_QUESTION = (3, 50, 120), 4


def gaps(folder: Path, model: str = "2pl", **options) -> Path:
    """A wide CSV of 200 students x 8 questions simulated from ``model``, labelled ``s0`` ...,
    whose students :data:`EMPTY_STUDENTS` and question ``Q4`` have no answer."""
    data = irtbench.simulate(200, 8, seed=3, model=model, **options)
    answers = pd.DataFrame(data.responses, columns=[f"Q{j}" for j in range(8)])
    answers.iloc[list(EMPTY_STUDENTS), :] = np.nan
    answers.iloc[:, EMPTY_QUESTION] = np.nan
    answers.insert(0, "id", [f"s{i}" for i in range(200)])
    path = folder / "gaps.csv"
    answers.to_csv(path, index=False, float_format="%.0f")
    return path


def one_line_exit_2(capsys, argv: list[str], message: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err
    return err[0]


def note_of(capsys_err: str, path: Path) -> str:
    notes = [line for line in capsys_err.splitlines() if line.startswith(f"note: {path}: ")]
    assert len(notes) == 1, capsys_err
    return notes[0]


# -- students and questions with no observed answer ----------------------------------------
def test_fit_writes_the_unobserved_as_not_estimated_in_their_places(tmp_path, capsys):
    """One row per student and question of the input, in its order; those with no answer
    empty and flagged, the others those of a fit of the rest alone."""
    path, out = gaps(tmp_path), tmp_path / "e.csv"
    assert main(["fit", str(path), "--estimator", "mml-em", "--model", "2pl",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert note_of(captured.err, path).endswith(
        "3 respondent(s) with no observed answer ('s3', 's50', 's120') and 1 question(s) with "
        "no observed answer ('Q4') left out (they carry no information about the others)")
    assert ("not estimated (no observed answer): 3 student(s), 1 question(s); written with "
            "empty estimates, flagged in the file's unobserved column") in captured.out
    assert "197 students x 7 questions" in captured.out
    written = pd.read_csv(out)
    assert written.columns[-1] == "unobserved" and written.unobserved.dtype == bool
    students, questions = written[written.kind == "student"], written[written.kind == "question"]
    assert list(students.label) == [f"s{i}" for i in range(200)]
    assert list(questions.label) == [f"Q{j}" for j in range(8)]
    assert list(np.flatnonzero(students.unobserved)) == list(EMPTY_STUDENTS)
    assert list(np.flatnonzero(questions.unobserved)) == [EMPTY_QUESTION]
    empty = written[written.unobserved]
    assert empty[["estimate", "se", "discrimination", "discrimination_se"]].isna().all().all()
    assert not empty.extreme.any() and not empty.runaway.fillna(False).astype(bool).any()

    table = irtbench.load_responses(path)
    fit = irtbench.fit(table.responses, estimator="mml-em", model="2pl")
    observed = written[~written.unobserved]
    np.testing.assert_allclose(observed.estimate[observed.kind == "student"], fit.skill)
    np.testing.assert_allclose(observed.estimate[observed.kind == "question"], fit.difficulty)

    skill, items = read_estimates(out)
    assert np.isnan(skill[list(EMPTY_STUDENTS)]).all() and np.isnan(skill).sum() == 3
    assert set(items) == {"difficulty", "discrimination"}
    assert np.isnan(items["discrimination"]).tolist() == [j == EMPTY_QUESTION for j in range(8)]
    calibrated = read_items(out)
    assert calibrated.model == "2pl" and calibrated.labels == [f"Q{j}" for j in range(8)]
    assert calibrated.unobserved.tolist() == [j == EMPTY_QUESTION for j in range(8)]


def test_a_fit_of_complete_data_has_no_unobserved_column(verbagg_path, tmp_path, capsys):
    out = tmp_path / "e.csv"
    assert main(["fit", str(verbagg_path), "--estimator", "jml-newton", "--out", str(out)]) == 0
    assert "note:" not in capsys.readouterr().err
    assert "unobserved" not in pd.read_csv(out) and not read_items(out).unobserved.any()


def test_an_m2pl_fit_writes_its_unobserved_skills_empty(tmp_path, capsys):
    path, out = gaps(tmp_path, "m2pl", dims=2), tmp_path / "m2pl.csv"
    assert main(["fit", str(path), "--estimator", "torch-adam", "--model", "m2pl",
                 "-o", "dims=2", "-o", "epochs=200", "--out", str(out)]) == 0
    written = pd.read_csv(out)
    empty = written[written.unobserved]
    assert len(empty) == 4
    assert empty[["skill_1", "skill_2", "loading_1", "loading_2", "intercept"]].isna().all().all()
    skill, items = read_estimates(out)
    assert skill.shape == (200, 2) and np.isnan(skill).any(axis=1).sum() == 3
    assert items["loadings"].shape == (8, 2)
    capsys.readouterr()
    scores = tmp_path / "scores.csv"
    assert main(["score", str(out), str(path), "--out", str(scores)]) == 0
    assert np.isfinite(pd.read_csv(scores).query("not unobserved").skill_1).all()


def test_score_leaves_out_the_items_a_fit_did_not_estimate_and_writes_every_respondent(
        tmp_path, capsys):
    """ITEMS of a fit without Q4's answers; new respondents who did answer Q4, one of whom
    answered nothing: scored on the other items as if Q4 were not there, with the count."""
    items = tmp_path / "items.csv"
    assert main(["fit", str(gaps(tmp_path)), "--estimator", "mml-em", "--model", "2pl",
                 "--out", str(items)]) == 0
    new = irtbench.simulate(30, 8, seed=8, model="2pl").responses
    new[7] = np.nan
    answers = pd.DataFrame(new, columns=[f"Q{j}" for j in range(8)])
    answers.insert(0, "id", [f"n{i}" for i in range(30)])
    data, out = tmp_path / "new.csv", tmp_path / "scores.csv"
    answers.to_csv(data, index=False, float_format="%.0f")
    capsys.readouterr()
    assert main(["score", str(items), str(data), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert (f"1 item(s) not estimated in {items} (no observed answer in the data of its fit) "
            "left out: 'Q4'") in captured.out
    assert "non-finite" not in captured.out and "wrote 30 scores" in captured.out
    assert "1 respondent(s) with no observed answer ('n7')" in note_of(captured.err, data)
    scores = pd.read_csv(out)
    assert list(scores.label) == [f"n{i}" for i in range(30)]
    assert scores.unobserved.tolist() == [i == 7 for i in range(30)]
    assert np.isnan(scores.skill[7]) and np.isnan(scores.se[7]) and scores.n_answered[7] == 0
    assert (scores.n_answered.drop(7) == 7).all() and (scores.method == "eap").all()

    fitted = read_items(items)
    kept = [j for j in range(8) if j != EMPTY_QUESTION]
    expected = score(get_model("2pl"), {k: v[kept] for k, v in fitted.items.items()},
                     np.delete(new, 7, axis=0)[:, kept], prior=SkillPrior.of(items))
    np.testing.assert_allclose(scores.skill.drop(7), expected.skill, rtol=1e-12)


# -- long files and Parquet through the commands --------------------------------------------
def test_fit_reads_a_harness_file_and_refuses_unknown_names_in_one_line(tmp_path, capsys):
    answers = pd.read_csv(gaps(tmp_path)).melt(id_vars="id", var_name="item",
                                               value_name="correct").dropna()
    harness = tmp_path / "harness.csv"
    answers.rename(columns={"id": "Model"}).to_csv(harness, index=False)
    out = tmp_path / "e.csv"
    assert main(["fit", str(harness), "--estimator", "jml-newton", "--out", str(out)]) == 0
    assert "student labels: column 'Model'" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 197 + 7  # the rows dropped by melt are not in the file

    renamed = tmp_path / "renamed.csv"
    answers.rename(columns={"id": "person", "correct": "value"}).to_csv(renamed, index=False)
    error = one_line_exit_2(capsys, ["fit", str(renamed), "--out", str(tmp_path / "x.csv")],
                            "no column for the answer; the column(s) 'value' could not be placed")
    assert "answer: response, resp, correct, score" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "gaps.csv", "harness.csv",
                                                          "renamed.csv"]


def test_fit_reads_parquet_as_it_reads_csv(tmp_path, capsys):
    pytest.importorskip("pyarrow", reason="pyarrow is not installed "
                        "(pip install 'irtbench[parquet]')")
    path = gaps(tmp_path)
    frame = pd.read_csv(path)
    frame.to_parquet(tmp_path / "gaps.parquet", index=False)
    frame.melt(id_vars="id", var_name="item", value_name="resp").to_parquet(
        tmp_path / "long.pq")
    written = {}
    for name in ("gaps.csv", "gaps.parquet", "long.pq"):
        out = tmp_path / f"{name}.estimates.csv"
        assert main(["fit", str(tmp_path / name), "--estimator", "jml-newton",
                     "--out", str(out)]) == 0
        written[name] = pd.read_csv(out)
    pd.testing.assert_frame_equal(written["gaps.parquet"], written["gaps.csv"])
    long = written["long.pq"]  # a long file's labels in their sorted order
    for kind in ("student", "question"):
        by_label = written["gaps.csv"].query("kind == @kind").set_index("label")
        again = long.query("kind == @kind").set_index("label").loc[by_label.index]
        pd.testing.assert_frame_equal(again, by_label)


def test_parquet_without_pyarrow_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    one_line_exit_2(capsys, ["fit", str(path), "--out", str(tmp_path / "e.csv")],
                    f"irtbench fit: error: {path}: reading Parquet needs pyarrow, which is not "
                    "installed; install it with: pip install 'irtbench[parquet]'")
    assert [p.name for p in tmp_path.iterdir()] == ["data.parquet"]

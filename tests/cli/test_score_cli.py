"""``irtbench score``: new respondents scored under the items of an ``irtbench fit`` file, end to
end (the files, the exit codes, the one-line errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench.cli import main
from irtbench.models import get_model
from irtbench.scoring import SkillPrior, score

DATA = Path(__file__).parents[1] / "data"
LSAT7 = DATA / "lsat7.csv"


@pytest.fixture(scope="module")
def lsat7_items(tmp_path_factory) -> Path:
    """mml-em's 2PL of LSAT7, as ``irtbench fit`` writes it."""
    out = tmp_path_factory.mktemp("fit") / "lsat7-2pl.csv"
    assert main(["fit", str(LSAT7), "--estimator", "mml-em", "--model", "2pl",
                 "--out", str(out)]) == 0
    return out


def error_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.startswith("irtbench score: error:") and "\n" not in error, error
    return error


def test_scoring_the_fitted_file_under_the_fits_prior_gives_its_own_eaps(
        lsat7_items, tmp_path, capsys):
    """mml-em's skills are EAPs under N(0, 1): scoring the same answers under its items with
    --prior 0,1 gives them back (to its quadrature's accuracy); the file has one row per
    respondent with the documented columns."""
    out = tmp_path / "scores.csv"
    assert main(["score", str(lsat7_items), str(LSAT7), "--out", str(out),
                 "--prior", "0,1"]) == 0
    assert "wrote 1000 scores" in capsys.readouterr().out
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["label", "skill", "se", "extreme", "n_answered", "method"]
    fitted = pd.read_csv(lsat7_items)
    students = fitted[fitted.kind == "student"]
    np.testing.assert_allclose(scores.skill, students.estimate, atol=1e-5)
    np.testing.assert_allclose(scores.se, students.se, atol=1e-5)
    assert (scores.extreme.to_numpy() == students.extreme.to_numpy()).all()
    assert (scores.n_answered == 5).all() and (scores.method == "eap").all()


def test_the_default_prior_is_the_files_skills_and_ml_gives_extremes_infinity(
        lsat7_items, tmp_path, capsys):
    out = tmp_path / "ml.csv"
    assert main(["score", str(lsat7_items), str(LSAT7), "--out", str(out),
                 "--method", "ml"]) == 0
    assert "prior:" not in capsys.readouterr().out
    scores = pd.read_csv(out)
    extreme = scores.extreme.to_numpy()
    assert np.isinf(scores.skill[extreme]).all() and np.isinf(scores.se[extreme]).all()
    assert np.isfinite(scores.skill[~extreme]).all()
    assert main(["score", str(lsat7_items), str(LSAT7), "--out", str(tmp_path / "eap.csv")]) == 0
    printed = capsys.readouterr().out
    fitted = pd.read_csv(lsat7_items)
    skills = fitted.estimate[fitted.kind == "student"]
    assert f"N({skills.mean():.3f}, {skills.std(ddof=0):.3f}^2)" in printed


def test_data_of_some_calibrated_items_is_scored_on_them(lsat7_items, tmp_path, capsys):
    """A respondent file of three of the five items, in another order and long: scored on
    those (the other two named as not used), as the Python API scores them."""
    answers = pd.read_csv(LSAT7)
    chosen = ["Q4", "Q1", "Q5"]
    long = answers[chosen].head(40).reset_index().melt(id_vars="index", var_name="question",
                                                         value_name="response")
    data = tmp_path / "new.csv"
    long.rename(columns={"index": "student"}).to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    assert main(["score", str(lsat7_items), str(data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 calibrated item(s) not in" in printed and "'Q2', 'Q3'" in printed
    table = irtbench.load_responses(data)
    fitted = pd.read_csv(lsat7_items)
    questions = fitted[fitted.kind == "question"].set_index("label")
    items = {"difficulty": questions.loc[table.questions, "estimate"].to_numpy(),
             "discrimination": questions.loc[table.questions, "discrimination"].to_numpy()}
    expected = score(get_model("2pl"), items, table.responses,
                     prior=SkillPrior.of(lsat7_items))
    scores = pd.read_csv(out)
    np.testing.assert_allclose(scores.skill, expected.skill, rtol=1e-12)
    assert (scores.n_answered == 3).all()


def test_an_existing_out_is_kept_without_force(lsat7_items, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    out.write_text("keep me")
    assert main(["score", str(lsat7_items), str(LSAT7), "--out", str(out)]) == 2
    assert "exists" in error_line(capsys) and out.read_text() == "keep me"
    assert main(["score", str(lsat7_items), str(LSAT7), "--out", str(out), "--force"]) == 0
    assert len(pd.read_csv(out)) == 1000


@pytest.mark.parametrize("case, words", [
    ("unknown question", "1 question(s) not in"),
    ("no such items file", "no such file"),
    ("not an estimates file", "not an estimates file"),
    ("bad prior", "--prior"),
])
def test_bad_input_is_one_line_and_exit_2(case, words, lsat7_items, tmp_path, capsys):
    items, data, more = str(lsat7_items), str(LSAT7), []
    if case == "unknown question":
        answers = pd.read_csv(LSAT7).rename(columns={"Q3": "Q9"})
        answers.to_csv(tmp_path / "renamed.csv", index=False)
        data = str(tmp_path / "renamed.csv")
    elif case == "no such items file":
        items = str(tmp_path / "none.csv")
    elif case == "not an estimates file":
        items = str(LSAT7)
    else:
        more = ["--prior", "0,-1"]
    assert main(["score", items, data, "--out", str(tmp_path / "o.csv"), *more]) == 2
    error = error_line(capsys)
    assert words in error
    if case == "unknown question":
        assert "'Q9'" in error
    assert not (tmp_path / "o.csv").exists()


def test_an_m2pl_file_is_scored_by_map_only(tmp_path, capsys):
    """An M2PL fit's file (its model read from its loading columns): MAP under its skills'
    mean and covariance, skill_1 ... skill_D with their SEs; --method eap refused."""
    data = irtbench.simulate(120, 10, model="m2pl", dims=2, seed=1)
    answers = tmp_path / "answers.csv"
    pd.DataFrame(data.responses, columns=[f"Q{j}" for j in range(10)]).to_csv(
        answers, index=False, float_format="%.0f")
    items = tmp_path / "m2pl.csv"
    assert main(["fit", str(answers), "--estimator", "torch-adam", "--model", "m2pl",
                 "-o", "dims=2", "-o", "epochs=200", "--out", str(items)]) == 0
    capsys.readouterr()
    assert main(["score", str(items), str(answers), "--out", str(tmp_path / "e.csv"),
                 "--method", "eap"]) == 2
    assert "MAP only" in error_line(capsys)
    out = tmp_path / "scores.csv"
    assert main(["score", str(items), str(answers), "--out", str(out)]) == 0
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["label", "skill_1", "skill_1_se", "skill_2", "skill_2_se",
                                    "extreme", "n_answered", "method"]
    assert (scores.method == "map").all() and np.isfinite(scores.skill_1_se).all()

"""The field's packages as estimators (``irtbench[peers]``): Python mirt's EM and girth's
marginal and conditional ML, mapped onto the suite's models and checked against its own
estimators on the same data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench.cli import main
from irtbench.estimators._peers import PackageFailure

pytest.importorskip("mirt", reason="Python mirt is not installed (pip install 'irtbench[peers]')")
pytest.importorskip("girth", reason="girth is not installed (pip install 'irtbench[peers]')")

LSAT7 = Path(__file__).parents[1] / "data" / "lsat7.csv"


def lsat7() -> np.ndarray:
    return np.asarray(irtbench.load_responses(LSAT7).responses)


def test_mirt_em_2pl_equals_mml_em_on_lsat7():
    """Both maximise the same marginal likelihood; they differ in quadrature (mirt's n_quadpts
    nodes against 61 on [-6, 6]). With 121 nodes and a tight tolerance mirt's integral is within
    1e-4 of the converged one (measured at 10000x100, README), so the estimates agree to 2e-3."""
    ours = irtbench.fit(lsat7(), "mml-em", device="cpu", model="2pl")
    theirs = irtbench.fit(lsat7(), "mirt-em", model="2pl", nodes=121, tol=1e-7)
    assert theirs.model == "2pl" and theirs.diagnostics["converged"]
    np.testing.assert_allclose(theirs.discrimination, ours.discrimination, atol=2e-3)
    np.testing.assert_allclose(theirs.difficulty, ours.difficulty, atol=2e-3)
    np.testing.assert_allclose(theirs.discrimination_se, ours.discrimination_se, rtol=0.05)
    np.testing.assert_allclose(theirs.skill, ours.skill, atol=5e-3)


@pytest.mark.parametrize("name", ["mirt-em", "girth-mml"])
def test_common_slope_fits_map_onto_the_rasch_model_with_estimated_sd(name):
    """A common discrimination a under N(0, 1) skills is the Rasch model with skill SD a:
    the peers' mapped difficulties and SD match mml-em's (centred, to 0.01: another quadrature)."""
    data = irtbench.simulate(2000, 20, seed=3, skill_distribution="normal", skill_scale=1.5)
    ours = irtbench.fit(data.responses, "mml-em", device="cpu")
    theirs = irtbench.fit(data.responses, name, **({"nodes": 61} if name == "mirt-em" else {}))
    assert theirs.discrimination is None
    assert theirs.diagnostics["sigma"] == pytest.approx(ours.diagnostics["sigma"], abs=0.01)
    np.testing.assert_allclose(theirs.difficulty - theirs.difficulty.mean(),
                               ours.difficulty - ours.difficulty.mean(), atol=0.01)


def test_girth_cml_equals_cml():
    data = irtbench.simulate(1000, 15, seed=4)
    ours = irtbench.fit(data.responses, "cml")
    theirs = irtbench.fit(data.responses, "girth-cml")
    np.testing.assert_allclose(theirs.difficulty - theirs.difficulty.mean(),
                               ours.difficulty - ours.difficulty.mean(), atol=1e-3)
    finite = np.isfinite(ours.skill)
    np.testing.assert_array_equal(np.isfinite(theirs.skill), finite)
    np.testing.assert_allclose(theirs.skill[finite] - theirs.difficulty.mean(),
                               ours.skill[finite] - ours.difficulty.mean(), atol=1e-2)


@pytest.mark.parametrize("name", ["mirt-em", "girth-mml"])
def test_peers_leave_out_questions_everybody_got_right_and_take_missing_responses(name):
    data = irtbench.simulate(500, 8, seed=6, model="2pl", missing=0.1)
    responses = data.responses.copy()
    responses[:, 2] = np.where(np.isnan(responses[:, 2]), np.nan, 1.0)
    fit = irtbench.fit(responses, name, model="2pl")
    assert fit.difficulty[2] == -np.inf and np.isnan(fit.discrimination[2])
    assert np.all(np.isfinite(np.delete(fit.difficulty, 2)))
    assert fit.skill.shape == (500,) and np.all(np.isfinite(fit.skill))


def test_peers_refuse_what_they_cannot_fit_and_record_their_versions():
    with pytest.raises(ValueError, match="estimator 'girth-cml' fits the rasch model"):
        irtbench.fit([[0, 1], [1, 0], [1, 1]], "girth-cml", model="2pl")
    with pytest.raises(ValueError, match=r"the device cuda was asked for, but mirt-em \(CPU "
                       r"only\) sees no"):
        irtbench.fit([[0, 1], [1, 0], [1, 1]], "mirt-em", device="cuda")


@pytest.mark.parametrize("name", ["mirt-em", "girth-mml", "girth-cml"])
def test_peers_take_the_common_options(name):
    """Every estimator takes ``device`` and ``model``: a peer runs on the CPU, as asked."""
    data = irtbench.simulate(200, 10, seed=1)
    for device in ("cpu", "auto"):
        fit = irtbench.fit(data.responses, estimator=name, device=device, model="rasch")
        assert fit.device == "cpu" and fit.options["device"] == "cpu"  # resolved once
    from irtbench.results import environment

    env = environment()
    assert env["mirt"] and env["girth"]


def lsat7_with_holes() -> np.ndarray:
    """LSAT7 with 5% of its cells held out (as a fold of held-out cells leaves it)."""
    responses = lsat7().astype(float)
    responses[np.random.default_rng(0).random(responses.shape) < 0.05] = np.nan
    return responses


def test_girth_cml_refuses_missing_responses_in_one_line(tmp_path, capsys):
    """girth's rasch_conditional sums its missing code (-99999) into the raw scores: on LSAT7
    with cells held out it raised IndexError from inside girth (a traceback). Now a ValueError
    naming the problem and the estimators that take missing responses; one line, exit 2."""
    with pytest.raises(ValueError, match=r"'girth-cml' needs complete responses, and \d+ of "
                                         r"5000 are missing: .*use cml"):
        irtbench.fit(lsat7_with_holes(), "girth-cml")
    path = tmp_path / "holes.csv"
    pd.DataFrame(lsat7_with_holes(), columns=[f"Q{j}" for j in range(1, 6)]).to_csv(path,
                                                                                    index=False)
    assert main(["fit", str(path), "--estimator", "girth-cml", "--out",
                 str(tmp_path / "e.csv")]) == 2
    err = capsys.readouterr().err
    assert "needs complete responses" in err and err.count("\n") == 1
    assert "Traceback" not in err and not (tmp_path / "e.csv").exists()


def test_girth_peers_fit_lsat7_whole(tmp_path, capsys):
    """The real 1000x5 test, complete, with its 320 extreme students: both girth peers fit it
    from the command line (girth-mml's 2PL is mml-em's, to 1e-3)."""
    for name, model in [("girth-cml", "rasch"), ("girth-mml", "rasch"), ("girth-mml", "2pl")]:
        out = tmp_path / f"{name}-{model}.csv"
        assert main(["fit", str(LSAT7), "--estimator", name, "--model", model,
                     "--out", str(out)]) == 0
    theirs = irtbench.fit(lsat7(), "girth-mml", model="2pl")
    ours = irtbench.fit(lsat7(), "mml-em", model="2pl")
    np.testing.assert_allclose(theirs.difficulty, ours.difficulty, atol=1e-3)


def test_girth_mml_refuses_fewer_than_8_nodes():
    """girth asserts quadrature_n > 7 (an AssertionError, a traceback): the option says so."""
    with pytest.raises(ValueError, match="nodes=5 must be an integer from 8 up or None"):
        irtbench.fit(lsat7(), "girth-mml", nodes=5)


def test_an_error_inside_a_package_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    """Whatever else a package raises from inside its fit (here girth's IndexError, forced) is
    reported as a ValueError naming the estimator, the package and its message."""
    import girth

    def broken(*args, **kwargs):
        raise IndexError("index -199996 is out of bounds for axis 0 with size 6")

    monkeypatch.setattr(girth, "onepl_mml", broken)
    with pytest.raises(PackageFailure, match=r"'girth-mml': girth failed inside its fit on "
                                             r"these 1000x5 responses \(IndexError: index"):
        irtbench.fit(lsat7(), "girth-mml")
    assert main(["fit", str(LSAT7), "--estimator", "girth-mml", "--out",
                 str(tmp_path / "e.csv")]) == 2
    err = capsys.readouterr().err
    assert "girth failed inside its fit" in err and err.count("\n") == 1

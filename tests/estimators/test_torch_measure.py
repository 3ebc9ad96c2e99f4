"""The torch-measure peers (``torch-measure-mle``, ``-jml``, ``-em``, ``-svi``): torch-measure
0.1.0 run by the interpreter of its own environment (``make torch-measure-venv``). Its models'
parameters are checked against its own probability function after the mapping; the tests that
need torch-measure are skipped, with the command that builds it, where its interpreter is
absent."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs

import irtbench
from irtbench.estimators import _torch_family as family
from irtbench.models import get_model

needs_torch_measure = needs("torch-measure-mle", "torch-measure's interpreter")

THETA = np.linspace(-3.0, 3.0, 7)
B = np.array([-1.5, 0.0, 0.7, 2.1])
A = np.array([0.4, 1.0, 1.7, 2.5])
C = np.array([0.05, 0.2, 0.3, 0.1])
LOADINGS = np.array([[0.9, 0.2], [-0.5, 1.1], [1.4, -0.3], [0.0, 0.7]])
INTERCEPT = np.array([1.0, -0.4, 0.3, -2.0])
GRID = np.stack(np.meshgrid(THETA[::2], THETA[::2]), axis=-1).reshape(-1, 2)

#: one case per suite model: the package's parameters (its public units) and the skills
CASES = {
    "rasch": ({"set_difficulty": B}, THETA),
    "2pl": ({"set_difficulty": B, "set_discrimination": A}, THETA),
    "3pl": ({"set_difficulty": B, "set_discrimination": A, "set_guessing": C}, THETA),
    "m2pl": ({"set_loadings": LOADINGS, "set_intercept": INTERCEPT}, GRID),
}


def test_torch_measure_items_are_the_suites_and_its_factor_model_is_the_m2pl():
    """Its Rasch, 2PL and 3PL are written as the suite's (one to one); its LogisticFM's
    ``difficulty`` property is minus the intercept Z."""
    raw = {"difficulty": B, "discrimination": A, "guessing": C}
    items = family.torch_measure_items("3pl", raw)
    assert set(items) == {"difficulty", "discrimination", "guessing"}
    np.testing.assert_allclose(items["difficulty"], B)
    m2pl = family.torch_measure_items("m2pl", {"difficulty": -INTERCEPT, "loadings": LOADINGS})
    np.testing.assert_allclose(m2pl["intercept"], INTERCEPT)
    np.testing.assert_allclose(m2pl["difficulty"],
                               -INTERCEPT / np.linalg.norm(LOADINGS, axis=1))


def test_each_method_fits_the_models_the_package_gives_it():
    """EM and SVI fix the skills at N(0, 1) (declined for the Rasch model) and have no factor
    model; MLE and JML fit all four of the package's."""
    for name in ("torch-measure-em", "torch-measure-svi"):
        cls = irtbench.get_estimator(name)
        assert cls.models == ("2pl", "3pl")
        with pytest.raises(ValueError, match=f"estimator '{name}' fits the 2pl and 3pl model"):
            cls(model="rasch").resolved_options()
    for name in ("torch-measure-mle", "torch-measure-jml"):
        assert irtbench.get_estimator(name).models == ("rasch", "2pl", "3pl", "m2pl")


@needs_torch_measure
def test_torch_measure_probabilities_equal_the_suites_after_the_mapping():
    """For parameters set in torch-measure's Rasch, TwoPL, ThreePL and 2-factor LogisticFM, its
    predict_dense equals the suite's Model.probabilities of the mapped items, and its public
    accessors read back what was set (float32: 1e-6)."""
    models = list(CASES)
    cases = [{"model_class": family.TORCH_MEASURE_CLASSES[m], "theta": CASES[m][1],
              "dims": 2 if m == "m2pl" else 0, **CASES[m][0]} for m in models]
    outs = family.package_probabilities(family.TORCH_MEASURE, cases)
    for model, case, out in zip(models, cases, outs):
        items = family.torch_measure_items(model, out)
        if model == "m2pl":
            np.testing.assert_allclose(out["loadings"], LOADINGS, atol=1e-6)
            np.testing.assert_allclose(items["intercept"], INTERCEPT, atol=1e-6)
        else:
            for name, value in CASES[model][0].items():
                np.testing.assert_allclose(items[name[4:]], value, rtol=1e-6, atol=1e-6,
                                           err_msg=f"{model} {name}")
        expected = get_model(model).probabilities(case["theta"], items)
        np.testing.assert_allclose(out["probabilities"], expected, atol=2e-6, err_msg=model)


@pytest.fixture(scope="module")
def two_pl() -> tuple[irtbench.Dataset, np.ndarray, irtbench.Fit]:
    """A simulated 2PL exam with missing cells and a question everybody got wrong, fitted by
    torch-measure's default method."""
    data = irtbench.simulate(500, 15, seed=5, model="2pl", missing=0.1)
    responses = data.responses.copy()
    responses[:, 7] = np.where(np.isnan(responses[:, 7]), np.nan, 0.0)
    return data, responses, irtbench.fit(responses, "torch-measure-mle", model="2pl")


@needs_torch_measure
def test_torch_measure_mle_recovers_the_2pl_with_fisher_ses(two_pl):
    """Joint ML: its items track the truth (difficulties' correlation > 0.9 with 500 students,
    whose difficulty SEs are 0.1-0.3 against a spread of 1); the package's Fisher SEs, inf for
    students with no finite skill; the question everybody got wrong left out at +inf."""
    data, responses, fit = two_pl
    kept = np.delete(np.arange(15), 7)
    assert fit.difficulty[7] == np.inf and np.isnan(fit.discrimination[7])
    assert np.corrcoef(fit.difficulty[kept], data.difficulty[kept])[0, 1] > 0.9
    assert np.all(fit.discrimination[kept] > 0)
    students = irtbench.models.find_extremes(responses).students
    assert students.any() and np.isinf(fit.skill_se[students]).all()
    assert np.all(np.isfinite(fit.skill_se[~students]) & (fit.skill_se[~students] > 0))
    assert np.all(np.isfinite(fit.difficulty_se[kept]) & (fit.difficulty_se[kept] > 0))
    assert fit.discrimination_se.shape == (15,) and np.isnan(fit.discrimination_se[7])


@needs_torch_measure
def test_torch_measure_mle_reports_its_flag_and_clock(two_pl):
    data, responses, fit = two_pl
    d = fit.diagnostics
    assert isinstance(d["stopped_by_rule"], bool) and fit.n_iter <= 1000
    assert d["stopped_by_rule"] == (fit.n_iter < 1000)
    assert d["converged"] == (d["stopped_by_rule"] and d["n_runaway"] == 0)
    assert fit.losses.shape == (fit.n_iter,) and fit.losses[-1] < fit.losses[0]
    assert d["torch_measure_version"] == "0.1.0"
    parts = [d[f"torch_measure_{part}_seconds"] for part in ("startup", "fit", "score")]
    assert min(parts) > 0 and sum(parts) <= d["torch_measure_process_seconds"] <= fit.seconds


@needs_torch_measure
def test_torch_measure_jml_penalty_shrinks_the_scale_as_a_prior_would():
    """Its L2 penalty over the parameter count is a N(0, P / (2 lambda |O|)) prior, precision
    0.55 for 300 x 30, against a skill information of about 4: the difficulties' spread shrinks
    by about a tenth (module docstring: 0.87 measured) where joint ML stretches it by about
    J/(J-1) (jml-newton: 1.02). The band 0.80-0.95 holds a slope's sampling SD (0.02) many
    times over."""
    data = irtbench.simulate(300, 30, seed=0)
    truth = data.difficulty - data.difficulty.mean()

    def spread(fit: irtbench.Fit) -> float:
        return float(np.polyfit(truth, fit.difficulty - fit.difficulty.mean(), 1)[0])

    assert 0.80 < spread(irtbench.fit(data.responses, "torch-measure-jml")) < 0.95
    assert spread(irtbench.fit(data.responses, "jml-newton")) > 1.0

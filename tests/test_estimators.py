"""One table of every registered estimator drives the generic checks of the common interface."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import crb_ratio_limit

import irtbench

#: Options that keep each estimator fast enough for the default test run (CPU, small budgets).
#: Every registered estimator must appear here: a new estimator gets the generic checks for free.
FAST_OPTIONS: dict[str, dict] = {
    "torch-adam": {"device": "cpu"},
}

N_STUDENTS, N_QUESTIONS = 400, 40


def fit_or_skip(name: str, responses, **extra) -> irtbench.Fit:
    cls = irtbench.get_estimator(name)
    if not cls.available():
        pytest.skip(f"{name}: backend not installed (pip install 'irtbench[{cls.extra}]')")
    return irtbench.fit(responses, estimator=name, **FAST_OPTIONS[name], **extra)


@pytest.fixture(scope="module")
def data():
    return irtbench.simulate(N_STUDENTS, N_QUESTIONS, seed=11)


def test_the_table_covers_every_registered_estimator():
    assert set(FAST_OPTIONS) == set(irtbench.estimators())


@pytest.mark.parametrize("name", sorted(FAST_OPTIONS))
def test_shapes_dtypes_and_bookkeeping(name, data):
    fit = fit_or_skip(name, data.responses, seed=0)
    assert fit.skill.shape == (N_STUDENTS,) and fit.difficulty.shape == (N_QUESTIONS,)
    assert fit.skill.dtype == np.float64 and fit.difficulty.dtype == np.float64
    for se, n in ((fit.skill_se, N_STUDENTS), (fit.difficulty_se, N_QUESTIONS)):
        assert se is None or (se.shape == (n,) and np.all(se > 0))
    assert fit.estimator == name and fit.n_iter >= 1 and fit.seconds > 0
    assert fit.compile_seconds >= 0 and np.isfinite(fit.final_loss)
    assert set(irtbench.get_estimator(name).defaults) <= set(fit.options)


@pytest.mark.parametrize("name", sorted(FAST_OPTIONS))
def test_deterministic_for_a_seed(name, data):
    a = fit_or_skip(name, data.responses, seed=3)
    b = fit_or_skip(name, data.responses, seed=3)
    np.testing.assert_array_equal(a.skill, b.skill)
    np.testing.assert_array_equal(a.difficulty, b.difficulty)


@pytest.mark.parametrize("name", sorted(FAST_OPTIONS))
def test_recovery_within_the_cramer_rao_tolerance(name, data):
    """Rule: the aligned difficulty RMSE / CRB stays below sqrt(chi2_J(0.999) / J), the level an
    efficient estimator exceeds once in a thousand simulations (1.32 for J = 40)."""
    fit = fit_or_skip(name, data.responses, seed=0)
    metrics = irtbench.recovery(fit, data)
    assert metrics["crb_ratio_difficulty"] < crb_ratio_limit(N_QUESTIONS)
    assert metrics["corr_skill"] > 0.9


@pytest.mark.parametrize("name", sorted(FAST_OPTIONS))
@pytest.mark.parametrize(
    "responses, message",
    [
        ([[0, 1], [1, 5]], "found 5 at row 1, column 1"),
        ([[0, 1], [np.nan, np.nan]], r"student \(row\) 1 has no observed response"),
        ([1, 0, 1], "2-D"),
    ],
)
def test_bad_input_gets_the_documented_error(name, responses, message):
    with pytest.raises(ValueError, match=message):
        fit_or_skip(name, responses)

"""One table of every registered estimator drives the generic checks of the common interface."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import NAMES, binomial_band, crb_ratio_limit, fast_options, require

import irtbench
from irtbench.estimators.base import COMMON_OPTIONS
from irtbench.metrics import align
from irtbench.models import extremes

#: a few hundred parameters (300 skills + 30 difficulties), small enough for NUTS in CI
N_STUDENTS, N_QUESTIONS = 300, 30
DATA = irtbench.simulate(N_STUDENTS, N_QUESTIONS, seed=0)


def options(name: str, seed: int = 0) -> dict:
    """fast_options plus the seed, for the estimators that take one (the classical ones are
    deterministic and have none)."""
    seeded = {"seed": seed} if "seed" in irtbench.get_estimator(name).defaults else {}
    return {**fast_options(name), **seeded}


@functools.lru_cache(maxsize=None)
def fitted(name: str, seed: int = 0) -> irtbench.Fit:
    """One fit per estimator and seed of DATA, shared by the tests of this module."""
    return irtbench.fit(DATA.responses, estimator=name, **options(name, seed))


def test_every_estimator_module_is_discovered_and_registered():
    """Each public module of irtbench/estimators (but base and options) registers one estimator:
    adding the file is enough."""
    import importlib
    import pkgutil

    package = importlib.import_module("irtbench.estimators")  # the package, not the function

    modules = {m.name for m in pkgutil.iter_modules(package.__path__)
               if not m.name.startswith("_") and not m.ispkg} - package.NOT_ESTIMATORS
    registered = {irtbench.get_estimator(n).__module__.rsplit(".", 1)[1] for n in NAMES}
    assert registered == modules
    assert irtbench.estimators() == sorted(NAMES)
    colours = [irtbench.get_estimator(n).colour for n in NAMES]
    assert len(set(colours)) == len(colours)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_bookkeeping(name):
    require(name)
    fit = fitted(name)
    assert fit.skill.shape == (N_STUDENTS,) and fit.difficulty.shape == (N_QUESTIONS,)
    assert fit.skill.dtype == np.float64 and fit.difficulty.dtype == np.float64
    for se, n in ((fit.skill_se, N_STUDENTS), (fit.difficulty_se, N_QUESTIONS)):
        assert se is None or (se.shape == (n,) and se.dtype == np.float64 and np.all(se > 0))
    reported = irtbench.get_estimator(name).reports_iterations
    assert fit.estimator == name and fit.n_iter >= int(reported) and fit.seconds > 0
    assert fit.compile_seconds >= 0 and np.isfinite(fit.final_loss) == reported
    assert fit.device == "cpu"
    assert set(irtbench.get_estimator(name).defaults) | set(COMMON_OPTIONS) == set(fit.options)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name):
    require(name)
    again = irtbench.fit(DATA.responses, estimator=name, **options(name))
    np.testing.assert_array_equal(again.skill, fitted(name).skill)
    np.testing.assert_array_equal(again.difficulty, fitted(name).difficulty)


@pytest.mark.parametrize("name", NAMES)
def test_recovery_within_the_cramer_rao_tolerance(name):
    """Rule: the aligned difficulty RMSE / CRB stays below sqrt(chi2_J(0.999) / J), the level an
    efficient estimator exceeds once in a thousand simulations (1.41 for J = 30)."""
    require(name)
    if "rasch" not in irtbench.get_estimator(name).models:
        pytest.skip(f"{name} fits the {', '.join(irtbench.get_estimator(name).models)}, not the "
                    "Rasch model: these Rasch data are not held to its bound (its recovery is "
                    "tested in its own module)")
    metrics = irtbench.recovery(fitted(name), DATA)
    assert metrics["crb_ratio_difficulty"] < crb_ratio_limit(N_QUESTIONS)
    assert metrics["crb_ratio_skill"] < crb_ratio_limit(N_STUDENTS - metrics["n_extreme"])
    assert metrics["corr_skill"] > 0.9


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if irtbench.get_estimator(n).calibrated_intervals])
def test_interval_coverage_is_consistent_with_95_percent(name):
    """Pooled over the ~330 non-extreme skills and difficulties, the share of true values inside
    estimate +/- 1.96 SE must lie within the 0.998 binomial band around 0.95 (+/- 0.037)."""
    require(name)
    if not irtbench.get_estimator(name).gives_standard_errors:
        pytest.skip(f"{name} declares gives_standard_errors = False")
    fit = fitted(name)
    if fit.skill_se is None:
        pytest.fail(f"{name} gives no standard errors")
    students, questions = (~mask for mask in extremes(DATA.responses))
    skill, difficulty = align(fit.skill, fit.difficulty, questions)
    true_skill, true_difficulty = align(DATA.skill, DATA.difficulty, questions)
    inside = np.concatenate([
        np.abs(skill - true_skill)[students] <= 1.96 * fit.skill_se[students],
        np.abs(difficulty - true_difficulty)[questions] <= 1.96 * fit.difficulty_se[questions],
    ])
    assert abs(inside.mean() - 0.95) < binomial_band(inside.size, 0.95)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "responses, message",
    [
        ([[0, 1], [1, 5]], "found 5 at row 1, column 1"),
        ([[0, 1], [np.nan, np.nan]], r"student \(row\) 1 has no observed response"),
        ([1, 0, 1], "2-D"),
    ],
)
def test_bad_input_gets_the_documented_error(name, responses, message):
    require(name)
    with pytest.raises(ValueError, match=message):
        irtbench.fit(responses, estimator=name, **fast_options(name))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_lists_the_valid_ones(name):
    require(name)
    valid = ", ".join(sorted({*irtbench.get_estimator(name).defaults, *COMMON_OPTIONS}))
    with pytest.raises(ValueError, match=f"valid options: {valid}"):
        irtbench.fit(DATA.responses, estimator=name, colour="blue")


@pytest.mark.parametrize("name", NAMES)
def test_cuda_without_a_gpu_is_a_clear_error(name):
    require(name)
    if "gpu" in irtbench.get_estimator(name).devices() or "cuda" in irtbench.get_estimator(name).devices():
        pytest.skip("a GPU is visible: tested by the GPU script instead")
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        irtbench.fit(DATA.responses, estimator=name, device="cuda")

"""The classical estimators (jml-newton, cml, mml-em): exact checks on tiny problems, the
field's own tools (stored R fixtures), and the convergence columns of the harness."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import irtbench
from irtbench.estimators.classical.design import build_design
from irtbench.estimators.cml import conditional_probabilities, conditional_terms, log_esf
from irtbench.estimators.jml_newton import newton_jml, reference_optimum
from irtbench.estimators.mml_em import e_step, gauss_hermite
from irtbench.estimators.torch_adam import reference_loss
from irtbench.kernels.device_responses import DeviceResponses
from irtbench.harness import sweep
from irtbench.metrics import reference_gradient
from irtbench.models import extremes, find_extremes

DATA = Path(__file__).parents[1] / "data"
F64 = torch.float64


def load(name: str) -> tuple[np.ndarray, pd.DataFrame]:
    """A fixture's responses and R's estimates for them (see tests/data/README.md)."""
    responses = pd.read_csv(DATA / f"{name}.csv").to_numpy(dtype=np.float32)
    return responses, pd.read_csv(DATA / f"r_{name}.csv")


def centred(values: np.ndarray) -> np.ndarray:
    return values - values.mean()


# -- the reference objective and its exact optimum -------------------------------------------
def test_reference_gradient_matches_autograd_of_the_reference_loss():
    data = irtbench.simulate(120, 15, seed=3, missing=0.2)
    rng = np.random.default_rng(0)
    skill, difficulty = rng.normal(size=120), rng.normal(size=15)
    grad_skill, grad_difficulty = reference_gradient(data.responses, skill, difficulty, alpha=0.3)
    s = torch.tensor(skill, requires_grad=True)
    b = torch.tensor(difficulty, requires_grad=True)
    observed = ~np.isnan(data.responses)
    y = torch.tensor(np.where(observed, data.responses, 0.0), dtype=F64)
    dense = DeviceResponses(int(observed.sum()), y=y, weight=torch.tensor(observed, dtype=F64))
    reference_loss(s, b, dense, 0.3).backward()
    np.testing.assert_allclose(grad_skill, s.grad.numpy(), atol=1e-15)
    np.testing.assert_allclose(grad_difficulty, b.grad.numpy(), atol=1e-15)


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_jml_newton_is_a_stationary_point_of_the_reference_objective(missing):
    """The gradient of torch-adam's objective vanishes at jml-newton's estimate (extreme
    students at +/-inf contribute nothing), whatever alpha: the penalty is zero there."""
    data = irtbench.simulate(400, 25, seed=1, missing=missing)
    fit = reference_optimum(data.responses)
    assert fit.diagnostics["converged"] and abs(fit.difficulty.mean()) < 1e-12
    for alpha in (1e-2, 1.0):
        grads = reference_gradient(data.responses, fit.skill, fit.difficulty, alpha)
        assert max(np.abs(g).max() for g in grads) < 1e-12


def test_jml_newton_extremes_are_infinite_with_their_direction_and_reported():
    y = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0],
                  [1, 0, 0, 1], [0, 1, 1, 1]], dtype=float)
    fit = irtbench.fit(y, "jml-newton", device="cpu")
    assert fit.skill[0] == np.inf and fit.skill[1] == -np.inf
    assert np.isfinite(fit.skill[2:]).all() and np.isfinite(fit.difficulty).all()
    assert np.isinf(fit.skill_se[:2]).all() and np.isfinite(fit.skill_se[2:]).all()
    y[:, 0] = 1  # everybody right: question 0 has difficulty -inf
    fit = irtbench.fit(y, "jml-newton", device="cpu")
    extreme_students, extreme_questions = extremes(y)
    assert fit.difficulty[0] == -np.inf and extreme_questions.tolist() == [True, False, False, False]
    assert np.isinf(fit.skill[extreme_students]).all()
    assert np.isfinite(fit.skill[~extreme_students]).all()


def test_score_groups_give_the_same_estimates_as_one_group_per_student():
    data = irtbench.simulate(300, 20, seed=2)
    found = find_extremes(data.responses)
    grouped = build_design(data.responses, found, torch.device("cpu"))
    single = build_design(data.responses, found, torch.device("cpu"), by_score=False)
    assert grouped.n_groups <= 21 < single.n_groups and grouped.observed is None
    n = float(data.responses.size)
    a = newton_jml(grouped, tol=1e-10, max_iter=200, n_observed=n)
    b = newton_jml(single, tol=1e-10, max_iter=200, n_observed=n)
    np.testing.assert_allclose(grouped.expand(a[0]), single.expand(b[0]), atol=1e-9)
    np.testing.assert_allclose(a[1].numpy(), b[1].numpy(), atol=1e-9)
    assert a[3][-1] == pytest.approx(b[3][-1], rel=1e-12)  # same loss


def test_jml_newton_reports_non_convergence_and_applies_the_correction():
    data = irtbench.simulate(500, 20, seed=0)
    capped = irtbench.fit(data.responses, "jml-newton", device="cpu", max_iter=2)
    assert capped.n_iter == 2 and capped.diagnostics["converged"] is False
    plain = irtbench.fit(data.responses, "jml-newton", device="cpu")
    corrected = irtbench.fit(data.responses, "jml-newton", device="cpu", correction=True)
    np.testing.assert_allclose(corrected.difficulty, plain.difficulty * 19 / 20, atol=1e-12)
    assert not irtbench.get_estimator("jml-newton")(correction=True).minimises_reference_objective()
    metrics = [irtbench.recovery(f, data)["scale_difficulty"] for f in (plain, corrected)]
    assert abs(metrics[1] - 1) < abs(metrics[0] - 1)  # JML's outward spread is reduced


# -- cml: the symmetric functions -----------------------------------------------------------
def brute_force(difficulty: np.ndarray, score_counts: np.ndarray):
    """log gamma_r, pi_rj and sum_r n_r Cov(y | r) by enumerating all 2^J patterns."""
    patterns = np.array(list(itertools.product([0, 1], repeat=len(difficulty))))
    weight = np.exp(-(patterns @ difficulty))
    log_gamma, pi = [], []
    information = np.zeros((len(difficulty),) * 2)
    for r in range(len(difficulty) + 1):
        rows = patterns.sum(axis=1) == r
        q = weight[rows] / weight[rows].sum()
        mean = q @ patterns[rows]
        log_gamma.append(np.log(weight[rows].sum()))
        pi.append(mean)
        information += score_counts[r] * ((patterns[rows] * q[:, None]).T @ patterns[rows]
                                          - np.outer(mean, mean))
    return np.array(log_gamma), np.array(pi), information


@pytest.mark.parametrize("difficulty", [
    np.array([-2.5, -1.0, -0.2, 0.4, 1.1, 2.9, 0.0, 3.5]),
    np.array([0.5, 0.5, 0.5, -1.0, 0.2, 1.0, -1.0]),  # tied difficulties
])
def test_symmetric_functions_probabilities_and_information_match_enumeration(difficulty):
    counts = np.arange(1.0, len(difficulty) + 2)
    log_gamma, pi, information = brute_force(difficulty, counts)
    np.testing.assert_allclose(log_esf(difficulty), log_gamma, rtol=1e-13)
    np.testing.assert_allclose(conditional_probabilities(difficulty, log_gamma), pi, atol=1e-13)
    pattern = [_pattern(len(difficulty), counts)]
    terms = conditional_terms(torch.tensor(difficulty), pattern, torch.zeros(len(difficulty), dtype=F64))
    np.testing.assert_allclose(terms.information.numpy(), information, atol=1e-12)


def _pattern(n: int, counts: np.ndarray):
    from irtbench.estimators.cml import _Pattern

    return _Pattern(torch.arange(n), torch.tensor(counts, dtype=F64))


def test_symmetric_functions_stay_finite_and_exact_at_1000_questions():
    """gamma_500 of 1000 questions is about 1e300 times e^(sum of -b): no overflow in log space.
    Independent check: pi_rj = eps_j gamma^(j)_{r-1} / gamma_r with gamma^(j) the symmetric
    functions of the other 999 questions, summed separately."""
    difficulty = np.random.default_rng(0).uniform(-3, 3, 1000)
    log_gamma = log_esf(difficulty)
    pi = conditional_probabilities(difficulty, log_gamma)
    assert np.isfinite(log_gamma).all() and log_gamma.max() > 690  # beyond float64's e^709 range soon
    np.testing.assert_allclose(pi.sum(axis=1), np.arange(1001), atol=1e-8)
    for j in (0, 17, 500, 999):
        without = log_esf(np.delete(difficulty, j))
        expected = np.exp(-difficulty[j] + without - log_gamma[1:])
        np.testing.assert_allclose(pi[1:, j], expected, rtol=1e-9, atol=1e-300)


def test_cml_solves_the_conditional_likelihood_equations_by_enumeration():
    """At the estimate, the brute-force conditional expected item totals equal the observed
    ones (the CML equations), on a 6-question problem."""
    data = irtbench.simulate(400, 6, seed=4)
    fit = irtbench.fit(data.responses, "cml", device="cpu", tol=1e-10)
    keep = np.isfinite(fit.skill)
    y = data.responses[keep]
    counts = np.bincount(y.sum(axis=1).astype(int), minlength=7).astype(float)
    _, pi, _ = brute_force(fit.difficulty, counts)
    np.testing.assert_allclose(counts @ pi, y.sum(axis=0), atol=1e-8)


@pytest.mark.parametrize("name", ["verbagg", "sim_500x20"])
def test_cml_matches_erm_and_psychotools(name):
    responses, r = load(name)
    fit = irtbench.fit(responses, "cml", device="cpu")
    assert np.abs(centred(fit.difficulty) - r.erm_cml).max() < 1e-3
    assert np.abs(centred(fit.difficulty) - r.psychotools_cml).max() < 1e-3


def test_cml_with_booklets_and_its_refusal_of_random_missingness():
    data = irtbench.simulate(2000, 30, seed=5)
    booklets = data.responses.copy()
    booklets[:1000, :10] = np.nan  # booklet A: questions 10-29; booklet B: all questions
    fit = irtbench.fit(booklets, "cml", device="cpu")
    metrics = irtbench.recovery(fit, irtbench.Dataset(booklets, data.skill, data.difficulty))
    assert fit.diagnostics["converged"] and metrics["crb_ratio_difficulty"] < 1.5
    scattered = irtbench.simulate(300, 20, seed=0, missing=0.2).responses
    with pytest.raises(ValueError, match="distinct patterns of missing answers"):
        irtbench.fit(scattered, "cml", device="cpu")


def test_cml_wle_skills_are_finite_for_everyone_and_ml_are_not():
    data = irtbench.simulate(300, 10, seed=0)
    students, _ = extremes(data.responses)
    assert students.any()
    ml = irtbench.fit(data.responses, "cml", device="cpu")
    wle = irtbench.fit(data.responses, "cml", device="cpu", person="wle")
    assert np.isinf(ml.skill[students]).all() and np.isfinite(wle.skill).all()
    np.testing.assert_array_equal(ml.difficulty, wle.difficulty)
    # WLE pulls ML estimates towards the middle of the test
    inner = ~students
    assert (np.abs(wle.skill[inner]) <= np.abs(ml.skill[inner]) + 1e-12).mean() > 0.9


# -- mml-em ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["verbagg", "sim_500x20"])
def test_mml_em_matches_lme4(name):
    responses, r = load(name)
    fit = irtbench.fit(responses, "mml-em", device="cpu")
    assert np.abs(centred(fit.difficulty) - r.lme4_mml).max() < 2e-2
    assert fit.diagnostics["sigma"] == pytest.approx(r.lme4_sigma[0], abs=2e-2)
    assert np.isfinite(fit.skill).all()  # EAP: extreme students too


def test_mml_em_difficulty_se_is_the_curvature_of_the_marginal_likelihood():
    """1/SE^2 equals minus the second difference of the marginal log-likelihood in b_j (the
    other parameters and the quadrature held fixed)."""
    data = irtbench.simulate(300, 8, seed=6, skill_distribution="normal", skill_scale=1.2)
    fit = irtbench.fit(data.responses, "mml-em", device="cpu", tol=1e-9)
    design = build_design(data.responses, find_extremes(data.responses, judge_students=False),
                          torch.device("cpu"))
    z, log_w = gauss_hermite(41, design.scores)
    sigma = torch.tensor(fit.diagnostics["sigma"], dtype=F64)
    b = torch.tensor(fit.difficulty)
    zero, one = torch.zeros(design.n_groups, dtype=F64), torch.ones(design.n_groups, dtype=F64)

    def marginal(difficulty):  # the non-adaptive rule at 41 nodes: accurate for 8 questions
        return e_step(design, z, log_w, zero, one * sigma, sigma, difficulty).log_likelihood

    h = 1e-3
    for j in (0, 3, 7):
        step = torch.zeros_like(b)
        step[j] = h
        curvature = -(marginal(b + step) - 2 * marginal(b) + marginal(b - step)) / h**2
        assert fit.difficulty_se[j] == pytest.approx(curvature**-0.5, rel=2e-3)


def test_mml_em_recovers_a_normal_population_sd():
    data = irtbench.simulate(3000, 30, seed=0, skill_distribution="normal", skill_scale=1.5)
    fit = irtbench.fit(data.responses, "mml-em", device="cpu")
    # SD of the estimate of sigma is about sigma / sqrt(2n) (0.02) plus the spread of 3000 draws
    assert fit.diagnostics["converged"]
    assert fit.diagnostics["sigma"] == pytest.approx(np.std(data.skill), abs=0.06)


# -- the harness's convergence columns --------------------------------------------------------
def test_harness_records_gradient_norm_and_gap_to_the_exact_optimum(tmp_path):
    table = sweep([(150, 12)], ["torch-adam", "jml-newton", "cml"], seeds=1,
                           device="cpu", out=tmp_path, progress=False, models=("rasch",))
    rows = table.set_index("estimator")
    assert rows.loc["jml-newton", "gap_max"] < 1e-5
    assert rows.loc["jml-newton", "grad_norm"] < 1e-6
    assert rows.loc["torch-adam", "gap_max"] > 1e-3  # 1000 epochs stop short (the point)
    assert rows.loc["torch-adam", "grad_norm"] > 1e-6
    assert np.isnan(rows.loc["cml", "gap_max"]) and rows.loc["cml", "grad_norm"] < 1e-6
    curves = pd.read_csv(tmp_path / "curves.csv")
    adam = curves[curves.estimator == "torch-adam"].dropna(subset=["gap_rms"])
    assert len(adam) > 10 and adam.gap_rms.iloc[-1] < adam.gap_rms.iloc[0]

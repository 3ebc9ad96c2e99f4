"""The Rasch model in numpy, scale alignment, the Cramér–Rao bound and the recovery metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import irtbench
from irtbench.estimators import Fit
from irtbench.metrics import align, cramer_rao_bound
from irtbench.models import extremes, information, log_likelihood, probabilities, sigmoid


def make_fit(skill, difficulty, skill_se=None, difficulty_se=None) -> Fit:
    return Fit(
        skill=np.asarray(skill, float), difficulty=np.asarray(difficulty, float),
        skill_se=skill_se, difficulty_se=difficulty_se, losses=np.zeros(1), seconds=0.0, compute_seconds=0.0,
        compile_seconds=0.0, device="cpu", estimator="test", options={}, n_iter=0,
    )


def test_sigmoid_is_stable_and_symmetric():
    x = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    p = sigmoid(x)
    assert np.all(np.isfinite(p)) and p[2] == 0.5
    np.testing.assert_allclose(p + sigmoid(-x), 1.0)
    np.testing.assert_allclose(sigmoid(np.array([1.0])), 1 / (1 + np.exp(-1.0)))


def test_log_likelihood_matches_bernoulli_sum_and_skips_missing():
    rng = np.random.default_rng(0)
    skill, difficulty = rng.normal(size=4), rng.normal(size=3)
    y = np.array([[1, 0, np.nan], [0, 0, 1], [1, 1, 1], [np.nan, 0, 1]])
    p = probabilities(skill, difficulty)
    expected = np.nansum(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert log_likelihood(y, skill, difficulty) == pytest.approx(expected, rel=1e-12)


def brute_force_fisher(skill, difficulty):
    """E[score score^T] by enumerating every response pattern of a tiny complete matrix."""
    n, m = len(skill), len(difficulty)
    p = probabilities(skill, difficulty)
    fisher = np.zeros((n + m, n + m))
    for bits in itertools.product((0.0, 1.0), repeat=n * m):
        y = np.array(bits).reshape(n, m)
        prob = np.prod(np.where(y == 1, p, 1 - p))
        residual = y - p  # d loglik / d logit
        score = np.concatenate([residual.sum(1), -residual.sum(0)])
        fisher += prob * np.outer(score, score)
    return fisher


def test_information_and_crb_match_brute_force_on_a_tiny_problem():
    skill, difficulty = np.array([-0.7, 0.4, 1.3]), np.array([-1.0, 0.2, 0.9])
    fisher = brute_force_fisher(skill, difficulty)
    responses = np.zeros((3, 3))  # complete; only the pattern of observations matters
    info_skill, info_difficulty = information(responses, skill, difficulty)
    np.testing.assert_allclose(np.diag(fisher), np.concatenate([info_skill, info_difficulty]))
    # each parameter with the others known: the bound is the inverse of its 1x1 information
    responses = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 1]], float)  # no extremes
    crb_skill, crb_difficulty = cramer_rao_bound(responses, skill, difficulty)
    inverse_diagonal = 1 / np.diag(fisher)
    assert crb_skill == pytest.approx(np.sqrt(inverse_diagonal[:3].mean()))
    assert crb_difficulty == pytest.approx(np.sqrt(inverse_diagonal[3:].mean()))
    # with every parameter unknown (origin fixed by sum b = 0) the bound can only be larger
    basis = np.zeros((6, 5))  # parameters = basis @ free, difficulties summing to zero
    basis[:3, :3] = np.eye(3)
    basis[3:5, 3:5] = np.eye(2)
    basis[5, 3:5] = -1
    joint = basis @ np.linalg.inv(basis.T @ fisher @ basis) @ basis.T
    assert np.all(np.diag(joint)[:3] >= inverse_diagonal[:3] - 1e-12)


def test_information_skips_missing_responses():
    skill, difficulty = np.array([0.0, 1.0]), np.array([0.0, -1.0, 2.0])
    complete = np.zeros((2, 3))
    partial = complete.copy()
    partial[0, 1] = np.nan
    full_s, full_d = information(complete, skill, difficulty)
    part_s, part_d = information(partial, skill, difficulty)
    p01 = sigmoid(np.array([1.0]))[0]  # skill 0 - difficulty -1
    assert part_s[0] == pytest.approx(full_s[0] - p01 * (1 - p01))
    assert part_s[1] == pytest.approx(full_s[1]) and part_d[1] == pytest.approx(full_d[1] - p01 * (1 - p01))


def test_extremes_counts_all_right_and_all_wrong_over_observed():
    y = np.array([[1, 1, np.nan], [0, np.nan, 0], [1, 0, 0], [0, 1, 1]], float)
    students, questions = extremes(y)
    assert students.tolist() == [True, True, False, False]
    assert questions.tolist() == [False, False, False]


def test_extremes_are_removed_repeatedly():
    """Students 0 (all right) and 1 (all wrong) go first; among the others question 2 is then
    answered right by everybody, so it has no finite estimate either, and once it is gone
    student 3's remaining answers are all wrong."""
    students, questions = extremes(np.array([[1, 1, 1], [0, 0, 0], [1, 0, 1], [0, 0, 1],
                                             [0, 1, 1]], float))
    assert students.tolist() == [True, True, False, True, False]
    assert questions.tolist() == [False, False, True]


def test_align_centres_difficulties_and_shifts_skills_alike():
    skill, difficulty = align(np.array([1.0, 2.0]), np.array([3.0, 5.0]))
    np.testing.assert_allclose(difficulty, [-1.0, 1.0])
    np.testing.assert_allclose(skill, [-3.0, -2.0])


def test_recovery_is_invariant_to_a_common_shift():
    data = irtbench.simulate(200, 20, seed=0)
    rng = np.random.default_rng(1)
    skill = data.skill + rng.normal(0, 0.3, 200)
    difficulty = data.difficulty + rng.normal(0, 0.2, 20)
    base = irtbench.recovery(make_fit(skill, difficulty), data)
    shifted = irtbench.recovery(make_fit(skill + 4.2, difficulty + 4.2), data)
    for name in ("rmse_skill", "rmse_difficulty", "bias_skill", "corr_skill", "crb_ratio_skill"):
        assert shifted[name] == pytest.approx(base[name], abs=1e-12), name
    # without alignment the shift would dominate the error
    assert base["rmse_difficulty"] < 0.4


def test_recovery_values_on_a_hand_made_case():
    data = irtbench.simulate(500, 40, seed=3)
    error = np.full(40, 0.1)
    error[::2] = -0.1  # alternate +/-0.1 around the truth: mean zero, RMSE 0.1
    metrics = irtbench.recovery(make_fit(data.skill, data.difficulty + error), data)
    assert metrics["rmse_difficulty"] == pytest.approx(0.1)
    assert metrics["bias_difficulty"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["crb_ratio_difficulty"] == pytest.approx(0.1 / metrics["crb_difficulty"])
    assert metrics["coverage_skill"] != metrics["coverage_skill"]  # NaN: no SEs in this fit


def test_extreme_students_are_counted_and_kept_out_of_the_skill_metrics():
    data = irtbench.simulate(300, 10, seed=4)
    extreme, _ = extremes(data.responses)
    assert extreme.sum() > 5  # 10 questions over +/-3 logits: many all-right / all-wrong rows
    skill = data.skill.copy()
    skill[extreme] = np.sign(skill[extreme]) * 1e6  # what an unbounded ML fit drifts to
    metrics = irtbench.recovery(make_fit(skill, data.difficulty), data)
    assert metrics["n_extreme"] == int(extreme.sum())
    assert metrics["rmse_skill"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["rmse_skill_all"] > 1e5


def test_coverage_counts_truth_inside_the_interval():
    data = irtbench.simulate(400, 20, seed=5)
    se = np.full(20, 0.1)
    offsets = np.where(np.arange(20) < 15, 0.1, 0.3)  # 15 inside 1.96*0.1, 5 outside
    offsets = offsets * np.where(np.arange(20) % 2, 1, -1)
    offsets -= offsets.mean()  # keep the alignment from moving anything
    fit = make_fit(data.skill, data.difficulty + offsets, np.full(400, 1.0), se)
    metrics = irtbench.recovery(fit, data)
    expected = np.mean(np.abs(offsets) <= 1.96 * 0.1)
    assert metrics["coverage_difficulty"] == pytest.approx(expected)
    assert metrics["coverage_skill"] == 1.0

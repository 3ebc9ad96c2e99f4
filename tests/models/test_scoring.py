"""Scoring respondents under items held fixed (:mod:`irtbench.scoring`): each method of every
model against an independent computation (scipy's optimiser on the written-out
log-likelihood or log-posterior for ML and MAP, a fine brute-force grid for EAP), the SEs
against the observed information, extremes, items left out, the data's forms, the prior of a
fit, and the coverage of simulated skills by EAP +/- 1.96 SD."""

from __future__ import annotations

import numpy as np
import pytest

import irtbench
from irtbench.models import MODELS, get_model
from irtbench.scoring import Scores, SkillPrior, score, usable_items
from tests.conftest import binomial_band

scipy_optimize = pytest.importorskip("scipy.optimize", reason="scipy is in the test extra")
scipy_special = pytest.importorskip("scipy.special", reason="scipy is in the test extra")

SCALAR_MODELS = [m for m in MODELS if m != "m2pl"]
#: the skills' prior of the MAP and EAP checks (not the standard one, so that it shows)
PRIOR = SkillPrior(0.3, 1.2)
#: the layouts that take each of score's paths: complete rows (the linear-logit models' table),
#: rows with a few answers missing (every column read), rows of a few answers (gathered)
LAYOUTS = ("complete", "missing", "few")


def written_out_probabilities(theta: np.ndarray, items: dict) -> tuple[np.ndarray, ...]:
    """P(right) and P(wrong) of each skill x item, written out here: c + (u - c) s and
    (1 - u) + (u - c)(1 - s), s = sigmoid(a (theta - b)), with a = 1, c = 0 and u = 1 where
    the model has no such parameter (each computed as a sum, exact in the tails)."""
    b = items["difficulty"]
    a = items.get("discrimination", np.ones_like(b))
    c = items.get("guessing", np.zeros_like(b))
    u = items.get("ceiling", np.ones_like(b))
    x = a * (np.asarray(theta)[:, None] - b)
    return c + (u - c) * scipy_special.expit(x), (1 - u) + (u - c) * scipy_special.expit(-x)


def log_likelihood(model: str, theta: np.ndarray, items: dict, y: np.ndarray) -> np.ndarray:
    """One row's log-likelihood at each of ``theta`` over its observed answers (NaN skipped)."""
    seen = ~np.isnan(y)
    p, q = written_out_probabilities(theta, {k: v[seen] for k, v in items.items()})
    return (y[seen] * np.log(p) + (1 - y[seen]) * np.log(q)).sum(axis=1)


def log_prior(theta: np.ndarray, prior: SkillPrior) -> np.ndarray:
    return -0.5 * ((np.asarray(theta) - prior.mean) / prior.sd_or_cov) ** 2


def data_of(model: str, layout: str, seed: int = 3) -> irtbench.Dataset:
    """Responses of 40 respondents to 24 items (items from a simulation of the model), laid
    out for one of score's paths."""
    data = irtbench.simulate(40, 24, seed=seed, model=model)
    rng = np.random.default_rng(seed)
    responses = data.responses.copy()
    if layout == "missing":
        responses[rng.random(responses.shape) < 0.2] = np.nan
    elif layout == "few":
        keep = np.argsort(rng.random(responses.shape), axis=1)[:, :5]
        few = np.full_like(responses, np.nan)
        np.put_along_axis(few, keep, np.take_along_axis(responses, keep, axis=1), axis=1)
        responses = few
    return irtbench.Dataset(responses, data.skill, data.difficulty, model=model,
                            extra_items=data.extra_items)


def bounded_optimum(negative: callable, centre: float, half_width: float) -> float:
    """scipy's bounded scalar minimiser of ``negative`` within centre +/- half_width."""
    result = scipy_optimize.minimize_scalar(
        negative, bounds=(centre - half_width, centre + half_width), method="bounded",
        options={"xatol": 1e-11})
    return float(result.x)


def scipy_maximum(model: str, items: dict, y: np.ndarray, prior: SkillPrior | None) -> float:
    """The maximum of the written-out log-likelihood (or log-posterior) by scipy: bracketed on
    a grid over [-50, 50] first, then the bounded minimiser."""

    def negative(theta: float) -> float:
        value = log_likelihood(model, np.array([theta]), items, y)[0]
        return -(value + (log_prior(theta, prior) if prior is not None else 0.0))

    grid = np.linspace(-50, 50, 2001)
    values = log_likelihood(model, grid, items, y) + (log_prior(grid, prior)
                                                      if prior is not None else 0.0)
    best = grid[np.argmax(values)]
    return bounded_optimum(negative, best, grid[1] - grid[0])


def observed_information(model: str, items: dict, y: np.ndarray, theta: float) -> float:
    """-l''(theta) of the written-out log-likelihood by a central difference."""
    h = 1e-3
    values = log_likelihood(model, np.array([theta - h, theta, theta + h]), items, y)
    return -(values[0] - 2 * values[1] + values[2]) / h**2


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model", SCALAR_MODELS)
def test_ml_is_scipys_maximum_of_the_likelihood_and_its_se_the_observed_information(
        model, layout):
    data = data_of(model, layout)
    result = score(get_model(model), data.items, data.responses, method="ml")
    assert isinstance(result, Scores) and result.n_left_out == 0
    for i, y in enumerate(data.responses.astype(np.float64)):
        if result.extreme[i]:
            continue
        expected = scipy_maximum(model, data.items, y, None)
        if abs(expected) > 30:  # the likelihood rises towards the limit (a 3PL or 4PL row)
            assert np.isinf(result.skill[i]) and np.sign(result.skill[i]) == np.sign(expected)
            assert result.skill_se[i] == np.inf
            continue
        se = result.skill_se[i]
        assert result.skill[i] == pytest.approx(expected, abs=1e-5 * se), i
        information = observed_information(model, data.items, y, result.skill[i])
        assert se == pytest.approx(1 / np.sqrt(information), rel=1e-4), i


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model", SCALAR_MODELS)
def test_map_is_scipys_mode_of_the_posterior_with_se_from_information_and_prior(
        model, layout):
    data = data_of(model, layout)
    result = score(get_model(model), data.items, data.responses, method="map", prior=PRIOR)
    for i, y in enumerate(data.responses.astype(np.float64)):
        expected = scipy_maximum(model, data.items, y, PRIOR)
        se = result.skill_se[i]
        assert result.skill[i] == pytest.approx(expected, abs=1e-5 * se), i
        information = observed_information(model, data.items, y, result.skill[i])
        assert se == pytest.approx(1 / np.sqrt(information + PRIOR.sd_or_cov**-2), rel=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model", SCALAR_MODELS)
def test_eap_is_the_posterior_mean_and_sd_on_a_fine_grid(model, layout):
    data = data_of(model, layout)
    result = score(get_model(model), data.items, data.responses, prior=PRIOR)
    grid = np.linspace(PRIOR.mean - 14 * PRIOR.sd_or_cov, PRIOR.mean + 14 * PRIOR.sd_or_cov,
                       12001)
    for i, y in enumerate(data.responses.astype(np.float64)):
        log_post = log_likelihood(model, grid, data.items, y) + log_prior(grid, PRIOR)
        weight = np.exp(log_post - log_post.max())
        mean = (weight * grid).sum() / weight.sum()
        sd = np.sqrt((weight * (grid - mean) ** 2).sum() / weight.sum())
        assert result.skill[i] == pytest.approx(mean, abs=1e-6 * sd), i
        assert result.skill_se[i] == pytest.approx(sd, rel=1e-6), i


def test_eap_of_a_long_test_resolves_its_narrow_posterior():
    """2000 2PL items: posterior SDs near 0.03, far below the coarse grid's spacing: each
    row's own grid integrates it (against a brute-force grid around the row's mode)."""
    data = irtbench.simulate(4, 2000, seed=5, model="2pl")
    result = score(get_model("2pl"), data.items, data.responses)
    assert result.skill_se.max() < 0.06
    for i, y in enumerate(data.responses.astype(np.float64)):
        grid = result.skill[i] + np.linspace(-0.6, 0.6, 4001)
        log_post = log_likelihood("2pl", grid, data.items, y) - 0.5 * grid**2
        weight = np.exp(log_post - log_post.max())
        mean = (weight * grid).sum() / weight.sum()
        sd = np.sqrt((weight * (grid - mean) ** 2).sum() / weight.sum())
        assert result.skill[i] == pytest.approx(mean, abs=1e-4 * sd)
        assert result.skill_se[i] == pytest.approx(sd, rel=1e-4)


def test_extremes_and_rows_without_answers():
    """All right: ML +inf, all wrong: -inf, both SE inf and flagged, as irtbench fit writes
    extreme students; MAP and EAP finite (the prior) and flagged too; a row with no answer gets
    the prior (MAP, EAP) or NaN (ML), unflagged."""
    items = {"difficulty": np.linspace(-1, 1, 5), "discrimination": np.full(5, 1.3)}
    responses = np.array([[1, 1, 1, 1, 1], [0, 0, 0, np.nan, 0], [1, 0, 1, 0, np.nan],
                          [np.nan] * 5])
    model = get_model("2pl")
    ml = score(model, items, responses, method="ml")
    assert ml.skill[0] == np.inf and ml.skill[1] == -np.inf and np.isnan(ml.skill[3])
    assert list(ml.skill_se[[0, 1, 3]]) == [np.inf] * 3 and np.isfinite(ml.skill_se[2])
    assert list(ml.extreme) == [True, True, False, False]
    assert list(ml.n_answered) == [5, 4, 4, 0]
    for method in ("map", "eap"):
        result = score(model, items, responses, method=method, prior=PRIOR)
        assert np.isfinite(result.skill).all() and list(result.extreme) == list(ml.extreme)
        assert result.skill[0] > PRIOR.mean > result.skill[1]
        assert (result.skill[3], result.skill_se[3]) == (PRIOR.mean, PRIOR.sd_or_cov)


def test_items_with_non_finite_estimates_are_left_out_and_counted():
    data = data_of("2pl", "complete")
    items = {name: values.copy() for name, values in data.items.items()}
    items["difficulty"][[2, 7]] = [-np.inf, np.inf]
    items["discrimination"][11] = np.nan
    result = score(get_model("2pl"), items, data.responses)
    keep = usable_items(get_model("2pl"), items)
    assert result.n_left_out == 3 and keep.sum() == 21
    alone = score(get_model("2pl"), {k: v[keep] for k, v in items.items()},
                  data.responses[:, keep])
    np.testing.assert_array_equal(result.skill, alone.skill)
    np.testing.assert_array_equal(result.n_answered, alone.n_answered)


@pytest.mark.parametrize("model", ["rasch", "3pl"])
def test_compact_codes_and_sparse_triples_score_as_the_float_matrix(model):
    data = data_of(model, "missing")
    result = score(get_model(model), data.items, data.responses)
    for form in (irtbench.responses.to_compact(data.responses),
                 irtbench.responses.to_sparse(data.responses)):
        again = score(get_model(model), data.items, form)
        np.testing.assert_allclose(again.skill, result.skill, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(again.extreme, result.extreme)


@pytest.mark.parametrize("bad, words", [
    (lambda r: np.where(np.isnan(r), 2.0, r), "row 0, column"),
    (lambda r: r[:, :-1], "one column per item (24)"),
])
def test_bad_responses_are_one_line_errors(bad, words):
    data = data_of("rasch", "missing")
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")) as error:
        score(get_model("rasch"), data.items, bad(data.responses))
    assert "\n" not in str(error.value)


def test_methods_are_checked_and_the_m2pl_scores_by_map_only():
    data = irtbench.simulate(5, 8, seed=0, model="m2pl", dims=2)
    with pytest.raises(ValueError, match="must be one of eap, map, ml"):
        score(get_model("rasch"), {"difficulty": np.zeros(8)}, data.responses, method="wle")
    for method in ("eap", "ml"):
        with pytest.raises(ValueError, match="MAP only") as error:
            score(get_model("m2pl"), data.items, data.responses, method=method)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_m2pl_map_is_scipys_mode_and_its_se_the_inverse_hessian(layout):
    """D = 2 under N(mu, Sigma): the written-out log-posterior maximised by BFGS; the SEs the
    square roots of the diagonal of the inverse of its numerical Hessian."""
    data = irtbench.simulate(25, 24, seed=2, model="m2pl", dims=2)
    rng = np.random.default_rng(2)
    responses = data.responses.copy()
    if layout == "missing":
        responses[rng.random(responses.shape) < 0.2] = np.nan
    elif layout == "few":
        responses[np.argsort(rng.random(responses.shape), axis=1) >= 5] = np.nan
    prior = SkillPrior(np.array([0.2, -0.1]), np.array([[1.0, 0.3], [0.3, 0.8]]))
    result = score(get_model("m2pl"), data.items, responses, method="map", prior=prior)
    a, d = data.items["loadings"], data.items["intercept"]
    precision = np.linalg.inv(prior.sd_or_cov)
    for i, y in enumerate(responses.astype(np.float64)):
        seen = ~np.isnan(y)

        def negative(theta: np.ndarray, a=a[seen], d=d[seen], y=y[seen]) -> float:
            x = a @ theta + d
            centred = theta - prior.mean
            return -(np.sum(y * x - np.logaddexp(0, x)) - 0.5 * centred @ precision @ centred)

        found = scipy_optimize.minimize(negative, prior.mean, method="BFGS",
                                        options={"gtol": 1e-10})
        np.testing.assert_allclose(result.skill[i], found.x, atol=1e-5 * result.skill_se[i].min())
        h = 1e-4
        hessian = np.array([[(negative(found.x + h * (e + f)) - negative(found.x + h * (e - f))
                              - negative(found.x - h * (e - f)) + negative(found.x - h * (e + f)))
                             / (4 * h * h) for f in np.eye(2)] for e in np.eye(2)])
        np.testing.assert_allclose(result.skill_se[i], np.sqrt(np.diag(np.linalg.inv(hessian))),
                                   rtol=1e-4)


def test_eap_intervals_cover_simulated_skills():
    """Skills drawn from the prior scored by EAP under that prior and the true items: +/- 1.96
    posterior SDs cover the true skill in 95% of rows, within a binomial band."""
    data = irtbench.simulate(4000, 20, seed=11, model="2pl")
    result = score(get_model("2pl"), data.items, data.responses, prior=SkillPrior(0.0, 1.0))
    covered = np.abs(result.skill - data.skill) <= 1.96 * result.skill_se
    assert abs(covered.mean() - 0.95) < binomial_band(len(covered), 0.95)


def test_the_prior_of_a_fit_and_of_its_estimates_file(tmp_path):
    """A fit's skill distribution: the mean of its skills with the SD it estimated (mml-em's
    Rasch sigma), else its skills' SD; the estimates file gives its skills' mean and SD; the
    M2PL's, the skills' mean vector and covariance."""
    from irtbench.csvio import load_responses
    from irtbench.estimates import estimates_table

    table = load_responses("tests/data/lsat7.csv")
    rasch = irtbench.fit(table.responses, "mml-em", model="rasch")
    assert SkillPrior.of(rasch) == (pytest.approx(rasch.skill.mean()),
                                    rasch.diagnostics["sigma"])
    twopl = irtbench.fit(table.responses, "mml-em", model="2pl")
    assert SkillPrior.of(twopl) == (pytest.approx(twopl.skill.mean()),
                                    pytest.approx(twopl.skill.std()))
    path = tmp_path / "estimates.csv"
    estimates_table(table, twopl).to_csv(path, index=False)
    assert SkillPrior.of(path) == (pytest.approx(twopl.skill.mean()),
                                   pytest.approx(twopl.skill.std()))
    skill = np.random.default_rng(0).normal(size=(50, 3))
    mean, cov = SkillPrior.of_skills(skill)
    np.testing.assert_allclose(cov, np.cov(skill, rowvar=False, ddof=0))
    np.testing.assert_allclose(mean, skill.mean(axis=0))

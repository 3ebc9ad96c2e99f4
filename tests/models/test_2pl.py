"""The 2PL model: simulation, the marginal Fisher information and its Cramér–Rao bounds, the
affine alignment, and marginal ML by EM (``mml-em``, ``model="2pl"``) against an independent
computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import irtbench
from irtbench.models import sigmoid
from irtbench.models.twopl import (
    affine_alignment,
    flat_items,
    item_bounds,
    marginal_information,
    quadrature,
)

scipy_optimize = pytest.importorskip("scipy.optimize", reason="scipy is in the test extra")
scipy_special = pytest.importorskip("scipy.special", reason="scipy is in the test extra")

DATA = Path(__file__).parents[1] / "data"

#: how far mml-em's (a, d) may be from the mode it converged to: EM stops when an iteration
#: moves no parameter more than tol = 1e-6, and is then about step / (1 - rate) from its fixed
#: point, the rate being the largest fraction of missing information (below 0.99 for these
#: tests' items): 1e-4
EM_ATOL = 1e-4


def lsat7() -> np.ndarray:
    return np.asarray(irtbench.load_responses(DATA / "lsat7.csv").responses)


def spisa() -> np.ndarray:
    return np.asarray(irtbench.load_responses(DATA / "spisa.csv").responses)


def gauss_hermite(nodes: int = 61) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights summing to 1: E g(theta), theta ~ N(0, 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    return z, w / w.sum()


def marginal_log_likelihood(y: np.ndarray, a: np.ndarray, d: np.ndarray, z: np.ndarray,
                            w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The quadrature (nodes ``z``, weights ``w``) marginal log-likelihood of 0/1 rows ``y``
    under the 2PL in slope-intercept form, written out in numpy, and its gradient in (a, d)
    (Fisher's identity)."""
    logits = a[:, None] * z[None, :] + d[:, None]  # (J, Q)
    log_joint = (y @ scipy_special.log_expit(logits) + (1 - y) @ scipy_special.log_expit(-logits)
                 + np.log(w))
    p = scipy_special.expit(logits)
    top = log_joint.max(axis=1, keepdims=True)
    posterior = np.exp(log_joint - top)
    total = posterior.sum(axis=1, keepdims=True)
    posterior /= total
    mass = posterior.sum(axis=0)
    return (float(np.sum(top + np.log(total))), y.T @ (posterior @ z) - p @ (mass * z),
            y.sum(axis=0) - p @ mass)


def marginal_mode_by_scipy(responses: np.ndarray, z: np.ndarray, w: np.ndarray,
                           log_a_sd: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    r"""An independent fit of the 2PL by scipy's BFGS: :func:`marginal_log_likelihood` plus,
    with ``log_a_sd``, the log of BILOG-MG's slope prior, the lognormal density of a,
    :math:`-\log a - (\log a)^2/(2s^2)` (then over (log a, d): a > 0); without it over
    (a, d), the slope free in sign. Returns (a, d, the maximised objective)."""
    y = responses.astype(np.float64)
    n_questions = y.shape[1]

    def negative_objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        u, d = params[:n_questions], params[n_questions:]
        a = np.exp(u) if log_a_sd else u
        value, g_a, g_d = marginal_log_likelihood(y, a, d, z, w)
        if log_a_sd:
            value += float(np.sum(-u - u**2 / (2 * log_a_sd**2)))
            g_a = a * (g_a - 1.0 / a - u / (log_a_sd**2 * a))  # d/d(log a)
        return -value, -np.concatenate([g_a, g_d])

    means = y.mean(axis=0)
    start = np.concatenate([np.zeros(n_questions) if log_a_sd else np.ones(n_questions),
                            np.log(means / (1 - means))])
    result = scipy_optimize.minimize(negative_objective, start, jac=True, method="BFGS",
                                     options={"gtol": 1e-7, "maxiter": 20000})
    assert np.abs(result.jac).max() < 1e-5  # at the optimum, whatever BFGS's message says
    u, d = result.x[:n_questions], result.x[n_questions:]
    return (np.exp(u) if log_a_sd else u), d, -float(result.fun)


def marginal_ml_by_scipy(responses: np.ndarray, nodes: int = 61) -> tuple[np.ndarray, ...]:
    """:func:`marginal_mode_by_scipy` without a prior on mml-em's quadrature (``nodes`` on
    [-6, 6]). Returns (a, b, log-likelihood)."""
    a, d, log_likelihood = marginal_mode_by_scipy(responses, *quadrature(nodes))
    return a, -d / a, log_likelihood


def test_simulate_2pl_draws_discriminations_and_keeps_the_rasch_draws():
    data = irtbench.simulate(4000, 400, seed=3, model="2pl")
    assert data.model == "2pl" and data.discrimination.shape == (400,)
    # LogNormal(0, 0.3): the log-discriminations' mean and SD within 4 standard errors
    log_a = np.log(data.discrimination)
    assert abs(log_a.mean()) < 4 * 0.3 / np.sqrt(400)
    assert abs(log_a.std() - 0.3) < 4 * 0.3 / np.sqrt(2 * 400)
    assert abs(data.skill.std() - 1.0) < 4 / np.sqrt(2 * 4000)  # N(0, 1) skills
    rasch = irtbench.simulate(50, 10, seed=3)
    assert rasch.model == "rasch" and rasch.discrimination is None
    again = irtbench.simulate(50, 10, seed=3, model="rasch", skill_distribution="uniform")
    np.testing.assert_array_equal(rasch.responses, again.responses)
    with pytest.raises(ValueError, match="unknown model '5pl'"):
        irtbench.simulate(5, 5, model="5pl")


def test_marginal_information_is_the_hessian_of_the_expected_log_likelihood():
    """Brute force on 3 items: the Fisher information by enumeration of the 8 patterns equals
    minus the numerical Hessian (central differences) of the expected marginal log-likelihood
    sum_y P_true(y) log P_params(y) at the truth, in (a_1, d_1, ...)."""
    a, b = np.array([0.8, 1.3, 1.0]), np.array([-0.5, 0.2, 1.0])
    z, w = quadrature(61)
    patterns = ((np.arange(8)[:, None] >> np.arange(3)) & 1).astype(float)

    def log_probabilities(params: np.ndarray) -> np.ndarray:
        p = sigmoid(params[0::2, None] * z[None, :] + params[1::2, None])
        joint = patterns @ np.log(p) + (1 - patterns) @ np.log1p(-p) + np.log(w)
        return np.log(np.exp(joint).sum(axis=1))

    truth = np.ravel(np.column_stack([a, -a * b]))
    weights = np.exp(log_probabilities(truth))

    def expected(params: np.ndarray) -> float:
        return float(weights @ log_probabilities(params))

    h, hessian = 1e-4, np.empty((6, 6))
    for i in range(6):
        for k in range(6):
            e_i, e_k = np.eye(6)[i] * h, np.eye(6)[k] * h
            hessian[i, k] = (expected(truth + e_i + e_k) - expected(truth + e_i - e_k)
                             - expected(truth - e_i + e_k) + expected(truth - e_i - e_k)) / (4 * h * h)
    np.testing.assert_allclose(marginal_information(a, b), -hessian, rtol=1e-5, atol=1e-7)


def test_monte_carlo_information_matches_enumeration():
    """Above ENUMERATE_UP_TO items the information is a Monte Carlo mean over 20000 simulated
    patterns: on 10 items (1024 patterns, enumerable) its diagonal is within 5% of the exact one
    (the Monte Carlo relative error of a mean of squared scores is about sqrt(2/20000) = 1%)."""
    from irtbench.models import twopl

    rng = np.random.default_rng(0)
    a, b = rng.lognormal(0, 0.3, 10), rng.normal(size=10)
    exact = np.diag(marginal_information(a, b))
    limit = twopl.ENUMERATE_UP_TO
    try:
        twopl.ENUMERATE_UP_TO = 5
        sampled = np.diag(marginal_information(a, b))
    finally:
        twopl.ENUMERATE_UP_TO = limit
    np.testing.assert_allclose(sampled, exact, rtol=0.05)


def test_affine_alignment_undoes_a_change_of_scale():
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(0, 0.3, 30), rng.normal(size=30)
    s, t = 1.7, -0.4  # the estimate lives on theta' = (theta - t) / s
    alignment = affine_alignment((b - t) / s, b, a * s, a)
    assert alignment.scale == pytest.approx(s, rel=1e-9)
    assert alignment.shift == pytest.approx(t, abs=1e-9)
    np.testing.assert_allclose(alignment.discrimination(a * s), a)


def test_items_with_non_positive_slopes_are_compared_not_dropped():
    """The 2PL's slope is free in sign (mml-em): a downward item is usable, the alignment is
    fitted on the positive slopes (a nearly flat downward item's b = -d/a, here 40, does not
    move it), and the recovery metrics count the item's errors (it was silently left out)."""
    import dataclasses

    from irtbench.models import get_model

    model = get_model("2pl")
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(0, 0.3, 30), rng.normal(size=30)
    s, t = 1.7, -0.4
    estimate = {"difficulty": (b - t) / s, "discrimination": a * s}
    estimate["discrimination"][:2], estimate["difficulty"][:2] = [-0.3, -0.01], [0.2, 40.0]
    keep = model.usable(estimate)
    assert keep.all()
    alignment = model.align(estimate, {"difficulty": b, "discrimination": a}, keep)
    assert alignment.scale == pytest.approx(s, rel=1e-9)
    assert alignment.shift == pytest.approx(t, abs=1e-9)

    data = irtbench.simulate(500, 10, seed=0, model="2pl")
    fit = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
    flipped = fit.discrimination.copy()
    flipped[0] = -flipped[0]
    downward = dataclasses.replace(fit, extra_items={"discrimination": flipped})
    before, after = irtbench.recovery(fit, data), irtbench.recovery(downward, data)
    # one item's error grows by about 2 a_0: over 10 items the mean square by (2 a_0)^2 / 10
    added = after["rmse_discrimination"] ** 2 - before["rmse_discrimination"] ** 2
    assert added > 0.5 * (2 * fit.discrimination[0]) ** 2 / 10
    assert np.isfinite(after["rmse_difficulty"])


@pytest.mark.parametrize("dataset", ["lsat7", "simulated"])
def test_2pl_mml_em_equals_an_independent_marginal_ml_fit(dataset):
    """mml-em's 2PL against scipy's BFGS on the same quadrature marginal likelihood (61 nodes),
    written in this test: discriminations and difficulties within 1e-3, log-likelihoods within
    1e-6 relative."""
    if dataset == "lsat7":
        responses = lsat7()
    else:
        responses = irtbench.simulate(2000, 8, seed=11, model="2pl").responses
    fit = irtbench.fit(responses, "mml-em", device="cpu", model="2pl")
    a, b, log_likelihood = marginal_ml_by_scipy(responses)
    assert fit.diagnostics["converged"]
    np.testing.assert_allclose(fit.discrimination, a, atol=1e-3)
    np.testing.assert_allclose(fit.difficulty, b, atol=1e-3)
    assert fit.diagnostics["log_likelihood"] == pytest.approx(log_likelihood, rel=1e-6)


def test_2pl_mml_em_on_lsat7_gives_r_mirts_published_estimates():
    """R mirt's 2PL of LSAT7 (61 nodes on [-6, 6]), as its documentation prints it to three
    decimals: slopes a1 and intercepts d, log-likelihood -2658.805."""
    fit = irtbench.fit(lsat7(), "mml-em", device="cpu", model="2pl")
    np.testing.assert_allclose(fit.discrimination, [0.988, 1.081, 1.706, 0.765, 0.736],
                               atol=1.5e-3)
    np.testing.assert_allclose(-fit.discrimination * fit.difficulty,
                               [1.856, 0.808, 1.804, 0.486, 1.855], atol=1.5e-3)
    assert fit.diagnostics["log_likelihood"] == pytest.approx(-2658.805, abs=1e-3)


def test_2pl_mml_em_reaches_the_cramer_rao_bound():
    """At 5000x50, over three simulated data sets (150 items): RMSE / CRB of difficulties and
    discriminations (after the affine alignment, against the bound of aligned errors) at most
    1.1. An efficient estimator sits near 1; pooled over 150 items the ratio's sampling error is
    about 1/sqrt(2 * 150) = 6%. The SEs agree with the bound (mean SE within 10%)."""
    squared = {"difficulty": [], "discrimination": []}
    for seed in range(3):
        data = irtbench.simulate(5000, 50, seed=seed, model="2pl")
        fit = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
        metrics = irtbench.recovery(fit, data)
        for kind in squared:
            squared[kind].append((metrics[f"rmse_{kind}"] ** 2, metrics[f"crb_{kind}"] ** 2))
        bound_a, bound_b = item_bounds(data.discrimination, data.difficulty, 5000)
        assert np.mean(fit.discrimination_se) == pytest.approx(np.mean(bound_a), rel=0.1)
        assert np.mean(fit.difficulty_se) == pytest.approx(np.mean(bound_b), rel=0.1)
    for kind, pairs in squared.items():
        mse, bound = np.mean(pairs, axis=0)
        assert np.sqrt(mse / bound) <= 1.1, kind


def test_2pl_fits_report_discriminations_and_refuse_where_they_cannot():
    data = irtbench.simulate(300, 10, seed=2, model="2pl")
    fit = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
    assert fit.model == "2pl" and fit.discrimination.shape == (10,)
    assert fit.options["nodes"] is None and fit.diagnostics["nodes"] == 61
    rasch = irtbench.fit(data.responses, "mml-em", device="cpu")
    assert rasch.model == "rasch" and rasch.discrimination is None
    assert rasch.options["nodes"] is None and rasch.diagnostics.get("nodes", 11) == 11
    with pytest.raises(ValueError, match="estimator 'cml' fits the rasch model.*2pl estimators: "
                                         ".*mml-em"):
        irtbench.fit(data.responses, "cml", model="2pl")
    with pytest.raises(ValueError, match="option model='5pl' must be one of rasch, 2pl, 3pl"):
        irtbench.fit(data.responses, "mml-em", model="5pl")
    with pytest.raises(ValueError, match="has no discrimination: fit it with model='2pl'"):
        irtbench.recovery(rasch, data)


def test_2pl_questions_everybody_got_right_have_no_finite_estimate():
    data = irtbench.simulate(400, 8, seed=5, model="2pl")
    responses = data.responses.copy()
    responses[:, 3] = 1.0
    fit = irtbench.fit(responses, "mml-em", device="cpu", model="2pl")
    assert fit.difficulty[3] == -np.inf and np.isnan(fit.discrimination[3])
    assert np.all(np.isfinite(fit.difficulty[np.arange(8) != 3]))
    assert bool(fit.extreme_questions[3])


def test_long_tests_get_finer_nodes_and_calibrated_standard_errors():
    """At 1000 questions the posteriors are ~0.06 wide: the default grid gets finer (128 nodes)
    and, with fewer students than item parameters, the SEs come from each item's block of the
    cross-product information; 95% intervals then cover about 95% of 1000 difficulties and
    1000 discriminations (within the 0.998 binomial band, +/- 0.022)."""
    from irtbench.estimators.classical.em2pl import default_nodes

    assert default_nodes(100) == 61 and default_nodes(1000) == 128
    data = irtbench.simulate(1000, 1000, seed=0, model="2pl")
    fit = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
    assert fit.diagnostics["nodes"] == 128
    metrics = irtbench.recovery(fit, data)
    for kind in ("difficulty", "discrimination"):
        assert abs(metrics[f"coverage_{kind}"] - 0.95) < 3.09 * np.sqrt(0.95 * 0.05 / 1000)


def test_narrow_posteriors_warn_to_raise_the_nodes():
    data = irtbench.simulate(200, 400, seed=1, model="2pl")
    with pytest.warns(RuntimeWarning, match="raise nodes"):
        irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl", nodes=21)


def test_the_reference_adam_fits_the_2pl_in_torch_and_jax_alike():
    """torch-adam and jax-adam with model='2pl': the same objective (mean NLL of
    a_j(theta_i - b_j) + alpha mean(b)^2 + alpha mean(log a)^2), optimiser and epochs, so the
    same estimates up to float32 rounding carried along 3000 epochs (1e-3, as for the Rasch
    model); the penalty pins the geometric mean of a at 1
    (within 2% after 3000 epochs) and the fit recovers the items (correlation > 0.95)."""
    pytest.importorskip("jax", reason="jax-adam needs JAX (pip install 'irtbench[jax]')")
    data = irtbench.simulate(2000, 40, seed=8, model="2pl", missing=0.1)
    fits = [irtbench.fit(data.responses, name, device="cpu", model="2pl", epochs=3000)
            for name in ("torch-adam", "jax-adam")]
    np.testing.assert_allclose(fits[1].discrimination, fits[0].discrimination, atol=1e-3)
    np.testing.assert_allclose(fits[1].difficulty, fits[0].difficulty, atol=1e-3)
    torch_fit = fits[0]
    assert np.exp(np.log(torch_fit.discrimination).mean()) == pytest.approx(1.0, abs=0.02)
    metrics = irtbench.recovery(torch_fit, data)
    assert metrics["corr_discrimination"] > 0.95 and metrics["corr_difficulty"] > 0.99
    assert np.all(torch_fit.discrimination_se > 0)
    with pytest.raises(ValueError, match="kernel='closed' is written for the Rasch model"):
        irtbench.fit(data.responses, "torch-adam", model="2pl", kernel="closed")


def test_a_sweep_of_both_models_writes_a_figure_set_for_each(tmp_path):
    """irtbench run --model rasch,2pl: the 2PL cells go to the estimators that fit it, rows carry
    their model, and the 2PL gets its own figures."""
    from irtbench import harness, plots
    from irtbench.results import read_results

    harness.sweep([(200, 10)], ["mml-em", "jml-newton"], seeds=[0], models=("rasch", "2pl"),
                  device="cpu", out=tmp_path, progress=False)
    table = read_results(tmp_path)
    assert sorted(zip(table.model, table.estimator)) == [
        ("2pl", "mml-em"), ("rasch", "jml-newton"), ("rasch", "mml-em")]
    two_pl = table[table.model == "2pl"].iloc[0]
    assert two_pl.status == "ok" and np.isfinite(two_pl.crb_ratio_discrimination)
    written = {path.name for path in plots.plot_all(tmp_path)}
    assert {"recovery.png", "recovery-2pl.png", "errors-2pl.png"} <= written
    with pytest.raises(ValueError, match="estimator 'cml' fits the rasch model"):
        harness.sweep([(50, 5)], ["cml"], seeds=[0], models=("2pl",), progress=False)


def test_numpyro_vi_and_nuts_fit_the_2pl_near_the_marginal_mle():
    """With skills N(0, 1) and log a ~ N(0, 1), 1000 students: the posterior is close to
    normal around the marginal MLE (Bernstein-von Mises), so NUTS's posterior means lie within
    half an SE of mml-em's estimates and its posterior SDs match the SEs (median ratio within
    10%); mean-field VI's means lie as close, and its SDs are too small (correlations ignored),
    but not by half."""
    pytest.importorskip("numpyro", reason="NumPyro is not installed (pip install 'irtbench[numpyro]')")
    data = irtbench.simulate(1000, 20, seed=3, model="2pl")
    mle = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
    nuts = irtbench.fit(data.responses, "numpyro-nuts", device="cpu", model="2pl",
                        num_warmup=300, num_samples=300)
    vi = irtbench.fit(data.responses, "numpyro-vi", device="cpu", model="2pl")
    for fit in (nuts, vi):
        assert fit.model == "2pl"
        assert np.max(np.abs(fit.discrimination - mle.discrimination)
                      / mle.discrimination_se) < 0.5
        assert np.max(np.abs(fit.difficulty - mle.difficulty) / mle.difficulty_se) < 0.5
    for kind in ("discrimination", "difficulty"):
        ratio = getattr(nuts, f"{kind}_se") / getattr(mle, f"{kind}_se")
        assert np.median(ratio) == pytest.approx(1.0, abs=0.1), kind
        assert 0.5 < np.median(getattr(vi, f"{kind}_se") / getattr(mle, f"{kind}_se")) < 1.0
    assert nuts.diagnostics["divergences"] == 0 and "sigma" not in nuts.diagnostics
    with pytest.raises(ValueError, match="estimator 'numpyro-map' fits the rasch model"):
        irtbench.fit(data.responses, "numpyro-map", model="2pl")


def test_the_default_sweep_fits_the_2pl_with_the_fast_estimators_only():
    """Named, every estimator of a model gets its cells; with none named (the default sweep),
    NumPyro's VI and NUTS fit the Rasch model only (their 2PL fits would push the default sweep
    past 10 minutes on 2 cores)."""
    from irtbench.harness import _cells

    def pairs(by_default: bool) -> set[tuple[str, str]]:
        cells = _cells([(10, 10)], ["numpyro-nuts", "mml-em", "cml"], [0], [0.0],
                       ("rasch", "2pl"), by_default=by_default)
        return {(cell.estimator, cell.model) for cell in cells}

    named = {("numpyro-nuts", "rasch"), ("numpyro-nuts", "2pl"), ("mml-em", "rasch"),
             ("mml-em", "2pl"), ("cml", "rasch")}
    assert pairs(False) == named
    assert pairs(True) == named - {("numpyro-nuts", "2pl")}


def test_runaway_items_are_flagged_and_the_fit_is_not_converged():
    """At 100x20 the Adam 2PL walks some discriminations off (the baseline had a = 298): every
    2PL fit counts the items whose slope-intercept estimates diverged and is not converged
    when there are any."""
    from irtbench.models.twopl import RUNAWAY_LIMIT, runaway_items

    data = irtbench.simulate(100, 20, seed=0, model="2pl")
    fit = irtbench.fit(data.responses, "torch-adam", device="cpu", model="2pl")
    flagged = fit.runaway_questions
    intercept = -fit.discrimination * fit.difficulty
    beyond = (np.abs(fit.discrimination) > RUNAWAY_LIMIT) | (np.abs(intercept) > RUNAWAY_LIMIT)
    assert beyond.any() and (beyond & ~fit.extreme_questions <= flagged).all()
    assert fit.diagnostics["n_runaway"] == flagged.sum()
    assert fit.diagnostics["converged"] is False
    # the rule itself, on (a, d = -ab): finite and identified is not a runaway, whatever the
    # sign of a or how far b = -d/a goes as a crosses 0 (the old rule, |b| > 8 or an SE of b
    # above 4, flagged the first two); a slope past the limit, a non-finite estimate or an SE
    # of a past the limit (the information says it is not identified) is
    none = np.zeros(3, bool)
    assert not runaway_items(np.array([1.0, 0.13, -0.22]), np.array([0.5, -35.0, 0.03]),
                             np.array([0.2, 0.1, 0.08]), none).any()
    assert not runaway_items(np.array([8.4]), np.array([0.03]), np.array([3.0]), none[:1]).any()
    assert runaway_items(np.array([300.0, 20.0, np.nan]), np.array([0.1, 0.0, 0.0]),
                         np.array([0.1, 1e3, 0.1]), none).all()
    assert not runaway_items(np.array([np.nan]), np.array([np.inf]), None, ~none[:1]).any()


def steep_item_responses(seed: int) -> np.ndarray:
    """150 x 35 2PL responses: skills N(0, 1), slopes LogNormal(0, 0.3^2), difficulties
    N(0, 1), but item 0 steep, a = 8.5 at b = 0."""
    rng = np.random.default_rng(seed)
    skill = rng.standard_normal(150)
    a, b = rng.lognormal(0.0, 0.3, 35), rng.standard_normal(35)
    a[0], b[0] = 8.5, 0.0
    return (rng.random((150, 35)) < sigmoid(a * (skill[:, None] - b))).astype(np.float64)


def test_a_steep_item_reaches_its_ml_slope_and_is_no_runaway():
    """Seed 2's steep item has a finite ML slope of 8.43 (scipy, the same quadrature): mml-em
    reaches it (it held the item at 8, where it first crossed the old limit, and ended 0.055
    below the maximum of the log-likelihood) and neither flags it nor any other item."""
    responses = steep_item_responses(2)
    fit = irtbench.fit(responses, "mml-em", device="cpu", model="2pl")
    a, d, log_likelihood = marginal_mode_by_scipy(responses, *quadrature(61))
    assert a[0] == pytest.approx(8.43, abs=0.01)
    assert fit.discrimination[0] == pytest.approx(a[0], rel=1e-3)
    assert fit.diagnostics["log_likelihood"] == pytest.approx(log_likelihood, abs=1e-4)
    assert fit.diagnostics["converged"] and fit.diagnostics["n_runaway"] == 0


def test_a_diverging_slope_is_a_runaway():
    """Seed 7's steep item has no finite ML slope: an independent maximisation (scipy) walks
    it past the runaway limit (to about 145; the likelihood is flat out there), and at mml-em's
    estimate the SE of its slope is far past the limit too (the information about it is gone).
    mml-em flags it, and only it, and is not converged."""
    from irtbench.models.twopl import RUNAWAY_LIMIT

    responses = steep_item_responses(7)
    fit = irtbench.fit(responses, "mml-em", device="cpu", model="2pl")
    a, _, _ = marginal_mode_by_scipy(responses, *quadrature(61))
    assert a[0] > RUNAWAY_LIMIT and fit.discrimination_se[0] > RUNAWAY_LIMIT
    assert fit.runaway_questions.tolist() == [True] + [False] * 34
    assert fit.diagnostics["converged"] is False


def test_a_negative_ml_slope_is_a_finite_optimum_not_a_runaway():
    """SPISA's Q23 (item-rest correlation -0.10) slopes downwards: its ML slope is -0.217, a
    finite maximum (scipy over (a, d) free in sign). mml-em reaches every item's maximum and
    flags none (it flagged Q23 and Q39, a = 0.045, for their b = -d/a beyond 8 or SE of b
    above 4, held them there and ended 8e-4 below the maximum)."""
    responses = spisa()
    fit = irtbench.fit(responses, "mml-em", device="cpu", model="2pl")
    a, d, log_likelihood = marginal_mode_by_scipy(responses, *quadrature(61))
    assert a[22] == pytest.approx(-0.217, abs=1e-3)
    assert fit.diagnostics["converged"] and fit.diagnostics["n_runaway"] == 0
    np.testing.assert_allclose(fit.discrimination, a, atol=EM_ATOL)
    np.testing.assert_allclose(-fit.discrimination * fit.difficulty, d, atol=EM_ATOL)
    assert fit.diagnostics["log_likelihood"] == pytest.approx(log_likelihood, abs=1e-4)


def test_a_flat_item_is_flagged_flat_not_a_runaway_and_the_fit_converges():
    """SPISA's Q39 (a = 0.045, b = 6.3, SE of b 10.3 under the 2PL by mml-em; skills within
    +/-2.9) is a finite optimum whose difficulty the data do not locate: flat, and nothing
    else is, not the downward Q23 (b = 0.03, SE 0.30), nor the weak Q40 and Q43 (a about 0.2,
    b about -8 +/- 4: below every student, that much the data say)."""
    fit = irtbench.fit(spisa(), "mml-em", device="cpu", model="2pl")
    assert fit.diagnostics["converged"] and not fit.runaway_questions.any()
    assert np.flatnonzero(fit.flat_questions).tolist() == [38]  # Q39


def test_the_flat_rule_is_a_difficulty_interval_holding_every_skill():
    """:func:`flat_items` flags a question when b +/- 1.96 SE holds every finite skill: not
    a precise difficulty outside the skills (an easy item), nor a wide interval on one side
    (Q40-like), nor a steep item with an uncertain slope (it does not read the slope); an
    infinite SE is flat; the excluded questions (extreme, runaway) are not judged; without
    SEs there is nothing to judge (None)."""
    skill = np.array([-2.7, -1.0, 0.0, 2.6, np.inf, -np.inf])
    difficulty = np.array([0.0, 13.5, -4.0, -8.2, 1.84, 0.0, 6.0])
    se = np.array([0.2, 20.9, 0.3, 4.0, 0.2, np.inf, 20.0])
    excluded = np.array([False] * 6 + [True])
    assert flat_items(difficulty, se, skill, excluded).tolist() == [
        False, True, False, False, False, True, False]
    assert flat_items(difficulty, None, skill, excluded) is None
    # just inside and just outside: 1.96 SE reaching the extreme skills or not
    edge = flat_items(np.array([0.0, 0.0]), np.array([2.7 / 1.959, 2.7 / 1.961]),
                      np.array([-2.7, 2.7]), np.zeros(2, bool))
    assert edge.tolist() == [True, False]


def test_the_bayes_modal_2pl_maximises_its_stated_posterior_on_spisa():
    """mml-em with ``prior_a_lognormal_sd=0.5`` maximises the marginal log-likelihood plus the log
    lognormal density of each slope (BILOG-MG's prior, its Jacobian included): an independent
    maximisation of that posterior (scipy, 61 Gauss-Hermite nodes: another quadrature, whose
    mode differs from mml-em's rule's by about 1e-8) gives the same mode. Q23, stuck at its
    start a = 1 before, comes out a = 0.111, b = -0.050."""
    responses = spisa()
    fit = irtbench.fit(responses, "mml-em", device="cpu", model="2pl", prior_a_lognormal_sd=0.5)
    a, d, log_posterior = marginal_mode_by_scipy(responses, *gauss_hermite(), log_a_sd=0.5)
    assert fit.discrimination[22] == pytest.approx(0.111, abs=1e-3)
    assert fit.difficulty[22] == pytest.approx(-0.050, abs=1e-3)
    assert fit.diagnostics["converged"] and fit.diagnostics["n_runaway"] == 0
    np.testing.assert_allclose(fit.discrimination, a, atol=EM_ATOL)
    np.testing.assert_allclose(-fit.discrimination * fit.difficulty, d, atol=EM_ATOL)
    assert fit.diagnostics["log_posterior"] == pytest.approx(log_posterior, abs=1e-4)


def test_priors_keep_every_item_and_improve_recovery_at_100x20():
    """Bayes modal estimation (log a ~ N(0, 0.5^2), d ~ N(0, 3^2)) over five draws at 100x20:
    no item runs away, and the RMSE of the discriminations is below plain ML's."""
    plain, bayes, runaway = [], [], 0
    for seed in range(5):
        data = irtbench.simulate(100, 20, seed=seed, model="2pl")
        ml = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
        modal = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl",
                             prior_a_lognormal_sd=0.5, prior_d_sd=3.0)
        runaway += modal.diagnostics["n_runaway"]
        plain.append(irtbench.recovery(ml, data)["rmse_discrimination"])
        bayes.append(irtbench.recovery(modal, data)["rmse_discrimination"])
    assert runaway == 0
    assert np.mean(bayes) < np.mean(plain)


@pytest.mark.parametrize("name", ["torch-adam", "jax-adam"])
def test_the_adam_slope_prior_is_the_stated_term_and_stops_the_runaway(name):
    """At 100x20 seed 0 joint ML's slopes run off (two items past the limits, a near 300);
    with log a ~ N(0, 0.5^2) none do. The fit's final loss is the plain fit's objective plus
    the stated prior term at the fit's own slopes."""
    if not irtbench.get_estimator(name).available():
        pytest.skip(f"{name}: backend not installed")
    data = irtbench.simulate(100, 20, seed=0, model="2pl")
    plain = irtbench.fit(data.responses, name, device="cpu", model="2pl")
    modal = irtbench.fit(data.responses, name, device="cpu", model="2pl", prior_log_a_sd=0.5)
    assert plain.diagnostics["n_runaway"] > 0 and modal.diagnostics["n_runaway"] == 0
    assert modal.discrimination.max() < 8
    # the objective is what the docstring says: mean NLL + penalties + sum(log a)^2/(2 s^2 |O|)
    log_a = np.log(modal.discrimination)
    logits = modal.discrimination * (modal.skill[:, None] - modal.difficulty[None, :])
    y = data.responses.astype(np.float64)
    nll = np.mean(np.logaddexp(0, logits) - y * logits)
    objective = (nll + 1e-2 * modal.difficulty.mean() ** 2 + 1e-2 * log_a.mean() ** 2
                 + (log_a**2).sum() / (2 * 0.25 * y.size))
    # the loss is recorded before the last step: a step of lr 0.01 moves it by far less
    assert modal.losses[-1] == pytest.approx(objective, rel=1e-3)


def test_slope_priors_are_options_of_the_logistic_family_one_name_per_meaning():
    """The slope's priors belong to the 2PL, 3PL and 4PL (the models declare them); a density
    of log a (the Adam fits) and BILOG-MG's density of a (mml-em) are two names."""
    data = irtbench.simulate(50, 5, seed=0)
    with pytest.raises(ValueError, match="prior_a_lognormal_sd belongs to the 2pl, 3pl, 4pl"):
        irtbench.fit(data.responses, "mml-em", prior_a_lognormal_sd=0.5)
    with pytest.raises(ValueError, match="unknown option 'prior_log_a_sd' for estimator "
                                         "'mml-em'; did you mean 'prior_a_lognormal_sd'"):
        irtbench.fit(data.responses, "mml-em", model="2pl", prior_log_a_sd=0.5)
    with pytest.raises(ValueError, match="prior_log_a_sd belongs to the 2pl, 3pl"):
        irtbench.fit(irtbench.simulate(50, 5, seed=0).responses, "torch-adam",
                     prior_log_a_sd=0.5)
    with pytest.raises(ValueError, match="prior_d_sd=-1 must be a positive number"):
        irtbench.fit(irtbench.simulate(50, 5, seed=0, model="2pl").responses, "mml-em",
                     model="2pl", prior_d_sd=-1)


@pytest.mark.parametrize("name", [name for name in irtbench.estimators()
                                  if irtbench.get_estimator(name).accepts_sparse
                                  and "2pl" in irtbench.get_estimator(name).models])
def test_the_2pl_on_sparse_triples_equals_the_dense_fit_with_missing_cells(name):
    cls = irtbench.get_estimator(name)
    if not cls.available():
        pytest.skip(f"{name}: backend not installed")
    from irtbench.responses import to_sparse

    data = irtbench.simulate(300, 15, seed=4, model="2pl", missing=0.4)
    iterative = "epochs" in cls.all_options()
    options = {"device": "cpu", "model": "2pl"} | ({"epochs": 200} if iterative else {})
    dense = irtbench.fit(data.responses, name, **options)
    sparse = irtbench.fit(to_sparse(data.responses), name, **options)
    # float64 EM: the same sums; float32 Adam: the same sums in another order, 200 steps on:
    # a fiftieth of the smallest standard error
    tolerance = np.nanmin(dense.skill_se) / 50 if iterative else 1e-8
    for field in ("discrimination", "difficulty", "skill", "discrimination_se"):
        np.testing.assert_allclose(getattr(sparse, field), getattr(dense, field),
                                   rtol=0, atol=tolerance, err_msg=field)


def test_the_known_skill_bound_is_a_lower_bound_close_to_the_marginal_one_for_long_tests():
    """Above DENSE_UP_TO items the bounds are each item's with the skills known: never above
    the marginal bound of all items together, and within 5% of it (root mean) at 500 items."""
    from irtbench.models import twopl

    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0, 0.3, 500), rng.normal(size=500)
    keep = np.ones(500, bool)
    marginal = twopl.item_bounds(a, b, 1000, aligned=keep, known_skills=False)
    known = twopl.item_bounds(a, b, 1000, aligned=keep, known_skills=True)
    for lower, exact in zip(known, marginal):
        ratio = np.sqrt(np.mean(lower**2) / np.mean(exact**2))
        assert 0.95 <= ratio <= 1.0 + 0.01  # 1%: the Monte Carlo error of the marginal bound


def _windowed_and_whole_grid_e_steps(data, support=None):
    """mml-em's 2PL E-step on ``data`` (with missing responses) after one EM iteration from the
    start: on the windows the first E-step's posteriors give (or ``support``, each student's
    first and last node, if given), and on the whole grid."""
    import torch

    from irtbench.estimators.classical import em2pl
    from irtbench.kernels.device_responses import DeviceResponses
    from irtbench.models import find_extremes
    from irtbench.responses import most_answers

    found = find_extremes(data, judge_students=False)
    keep = ~found.questions
    moved = DeviceResponses.transfer(data, int(found.item_counts[keep].sum()),
                                     torch.device("cpu"), "int8", columns=keep)
    windowed, whole = em2pl.DenseData(moved), em2pl.DenseData(moved)
    z_host, w_host = quadrature(em2pl.default_nodes(most_answers(data)))
    z, log_w = torch.as_tensor(z_host), torch.as_tensor(np.log(w_host))
    totals = z.new_tensor(found.item_totals[keep])
    items = em2pl.Items(torch.ones_like(totals),
                        torch.log(totals / (z.new_tensor(found.item_counts[keep]) - totals)))
    items = em2pl.m_step(windowed.e_step(items, z, log_w), totals, items, z, em2pl.Priors())
    if support is not None:
        windowed.support = tuple(torch.as_tensor(x) for x in support)
    widths = [nodes.stop - nodes.start for _, nodes in windowed.windows(len(z))]
    return windowed.e_step(items, z, log_w), whole.e_step(items, z, log_w), widths, len(z)


def _assert_same_e_step(windowed, whole):
    """The same posteriors (the same nodes exactly 0), node masses, EAP sums and marginal
    log-likelihood, to the rounding of a different order of the sums: a student's log joint
    sums 2000 terms to about -1e3, rounded to about 1e-12 either way, which is then each
    posterior weight's relative error (1e-10 allowed)."""
    import torch

    assert torch.equal(windowed.posterior == 0, whole.posterior == 0)
    torch.testing.assert_close(windowed.posterior, whole.posterior, rtol=0, atol=1e-10)
    mass = torch.zeros_like(whole.n)
    mass[windowed.nodes] = windowed.n
    torch.testing.assert_close(mass, whole.n, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(windowed.r1, whole.r1, rtol=1e-10, atol=0)
    assert windowed.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-14)


def test_2pl_e_step_on_windows_of_nodes_is_the_whole_grids():
    """With missing responses the E-step computes each block of students on the nodes where
    their posteriors are not 0 (a long test's posteriors cover a fraction of the grid): it
    gives what the whole grid gives, every node it leaves out having weight exactly 0."""
    data = irtbench.simulate(80, 2500, seed=2, model="2pl", missing=0.2).responses
    windowed, whole, widths, n_nodes = _windowed_and_whole_grid_e_steps(data)
    assert np.mean(widths) < n_nodes / 2  # the windows are the point
    _assert_same_e_step(windowed, whole)


def test_2pl_e_step_widens_a_window_that_is_too_narrow():
    """Windows in the wrong place (every student's posterior said to sit on the first two
    nodes, or on the last two) are widened until the nodes left out have weight 0: the same
    E-step as the whole grid's."""
    from irtbench.estimators.classical.em2pl import default_nodes
    from irtbench.responses import most_answers

    data = irtbench.simulate(80, 2500, seed=2, model="2pl", missing=0.2).responses
    n_nodes = default_nodes(most_answers(data))
    for first in (0, n_nodes - 2):
        first = np.full(len(data), first)
        windowed, whole, widths, _ = _windowed_and_whole_grid_e_steps(data, (first, first + 1))
        assert max(widths) <= 2 + 2 * 2  # the margin on each side
        _assert_same_e_step(windowed, whole)


def test_2pl_windows_group_every_student_once_within_their_nodes():
    from irtbench.estimators.classical.em2pl import group_windows

    rng = np.random.default_rng(0)
    low = rng.integers(0, 300, 1000)
    high = np.minimum(low + rng.choice([5, 40, 600], 1000), 610)
    groups = group_windows(low, high, max_rows=64)
    rows = np.concatenate([members for members, _ in groups])
    np.testing.assert_array_equal(np.sort(rows), np.arange(1000))
    for members, nodes in groups:
        assert len(members) <= 64
        assert nodes.start == low[members].min() and nodes.stop == high[members].max()
        assert nodes.stop - nodes.start <= 1.25 * 2 ** np.ceil(np.log2(high - low)[members].max())

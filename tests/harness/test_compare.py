"""``irtbench compare`` (:mod:`irtbench.compare`): folds, held-out scores, information criteria,
agreement, and the command's files and failures. Small data and fast estimators (seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench import compare as cmp
from irtbench.cli import main
from irtbench.compare.agreement import agreement
from irtbench.csvio import load_responses
from irtbench.models import get_model

DATA = Path(__file__).parents[1] / "data"
LSAT7 = DATA / "lsat7.csv"
#: fast estimators of both models
FAST = ["mml-em", "jml-newton"]


@pytest.mark.parametrize("shape, missing", [((40, 6), 0.0), ((30, 8), 0.6), ((12, 3), 0.3)])
def test_cell_folds_leave_every_row_and_column_observed_in_training(shape, missing):
    """Sparse matrices included (a row or column with one answer keeps it out of every
    fold): each training set keeps an answer in every row and column; folds are balanced."""
    rng = np.random.default_rng(1)
    observed = rng.random(shape) >= missing
    observed[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = True
    observed[rng.integers(0, shape[0], shape[1]), np.arange(shape[1])] = True
    folds = cmp.cell_folds(observed, 5, seed=3)
    assert (folds[~observed] == -1).all()
    for k in range(5):
        training = observed & (folds != k)
        assert training.any(axis=1).all() and training.any(axis=0).all()
    sizes = np.bincount(folds[folds >= 0], minlength=5)
    assert sizes.max() - sizes.min() <= max(2, 0.2 * sizes.mean())


def test_row_folds_and_halves():
    folds = cmp.row_folds(23, 5)
    assert sorted(np.bincount(folds)) == [4, 4, 5, 5, 5]
    observed = np.ones((4, 7), dtype=bool)
    observed[0, 3:] = False
    scoring = cmp.halves(observed)
    assert list(scoring.sum(axis=1)) == [2, 4, 4, 4] and not (scoring & ~observed).any()


def test_auc_by_ranks():
    y = np.array([0, 0, 1, 1, 1, 0])
    assert cmp.auc(y, y.astype(float)) == 1.0  # a perfect predictor
    assert cmp.auc(y, 1.0 - y) == 0.0
    assert cmp.auc(y, np.full(6, 0.3)) == 0.5  # ties count one half
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.2])  # Mann-Whitney by hand: 7.5 of 9 pairs
    assert cmp.auc(y, p) == pytest.approx(7.5 / 9)
    assert np.isnan(cmp.auc(np.ones(3), np.ones(3)))


def test_predict_takes_the_limit_of_infinite_estimates():
    model = get_model("2pl")
    items = {"difficulty": np.array([0.0, -np.inf, 1.0]),
             "discrimination": np.array([1.0, np.nan, 2.0])}
    skill = np.array([np.inf, 0.5])
    p, infinite = cmp.predict(model, skill, items, np.array([0, 1, 1, 1]), np.array([2, 0, 1, 2]))
    assert p == pytest.approx([1.0, 1 / (1 + np.exp(-0.5)), 1.0, 1 / (1 + np.exp(1.0))])
    assert list(infinite) == [True, False, True, False]
    assert cmp.log_loss(np.array([0.0]), np.array([1.0])) == pytest.approx(-np.log(cmp.EPS))


def test_heldout_logloss_of_the_true_model_beats_the_baselines():
    """On a simulated 2PL, the 2PL fit predicts held-out cells better than the training
    proportion correct and each item's proportion."""
    data = irtbench.simulate(400, 15, seed=2, model="2pl")
    result = cmp.compare(data.responses, estimators=["mml-em"], models=["2pl"], folds=3,
                         progress=False)
    table = result.summary.set_index("estimator")
    assert table.loc["mml-em", "status"] == "ok"
    assert table.loc["mml-em", "heldout_logloss"] < table.loc["item-means", "heldout_logloss"]
    assert table.loc["item-means", "heldout_logloss"] < table.loc["constant", "heldout_logloss"]
    assert table.loc["mml-em", "auc"] > table.loc["item-means", "auc"]
    assert table.loc["mml-em", "heldout_logloss_sd"] > 0 and table.loc["mml-em", "folds_done"] == 3
    assert len(result.folds[result.folds.estimator == "mml-em"]) == 3


def test_marginal_log_likelihood_matches_mml_em_and_the_lr_test():
    """Gauss-Hermite quadrature at mml-em's LSAT7 2PL estimate reproduces its reported
    marginal log-likelihood (mirt's -2658.805 for LSAT7); the Rasch model nests in the 2PL with
    J - 1 = 4 degrees of freedom."""
    responses = load_responses(LSAT7).responses
    fit = irtbench.fit(responses, "mml-em", model="2pl")
    computed = cmp.marginal_log_likelihood(get_model("2pl"), fit.items, responses)
    assert computed == pytest.approx(fit.diagnostics["log_likelihood"], abs=1e-3)
    assert computed == pytest.approx(-2658.805, abs=0.01)
    rasch = irtbench.fit(responses, "mml-em", model="rasch")
    summary = pd.DataFrame([
        {"estimator": "mml-em", "model": m, **cmp.information_criteria(f, responses)}
        for m, f in (("rasch", rasch), ("2pl", fit))])
    assert list(summary.n_parameters) == [6, 10]
    tests = cmp.likelihood_ratio_tests(summary)
    assert len(tests) == 1 and tests.df.iloc[0] == 4
    statistic = 2 * (fit.diagnostics["log_likelihood"] - rasch.diagnostics["log_likelihood"])
    assert tests.statistic.iloc[0] == pytest.approx(statistic)
    assert 0 < tests.p_value.iloc[0] < 0.05  # 12.19 on 4 df: p = 0.016


def test_parameter_counts_are_the_free_parameters():
    """J items: the Rasch model's J difficulties and the skill SD, the 2PL's 2J, the 3PL's 3J,
    the 4PL's 4J; the M2PL's J(D + 1) loadings and intercepts less the D(D - 1)/2 of the
    rotation that N(0, I) skills leave free (its MDIFF and MDISC are derived, not counted)."""
    assert [cmp.n_parameters(m, 10) for m in ("rasch", "2pl", "3pl", "4pl")] == [11, 20, 30, 40]
    assert cmp.n_parameters("m2pl", 10, dims=1) == 20  # the 2PL
    assert cmp.n_parameters("m2pl", 10, dims=3) == 10 * 4 - 3
    assert cmp.n_parameters("m2pl", 10, dims=10) == 10 * 11 - 45


def test_the_m2pl_through_the_row_split():
    """Held-out respondents of an M2PL fit scored by MAP under the fit's skill distribution:
    every fold done, its predictions better than the constant baseline's."""
    data = irtbench.simulate(240, 16, seed=4, model="m2pl", dims=2)
    result = cmp.compare(data.responses, estimators=["torch-adam"], models=["m2pl"], folds=3,
                         split="rows", progress=False, options={"epochs": 300})
    table = result.summary.set_index("estimator")
    assert table.loc["torch-adam", "status"] == "ok" and table.loc["torch-adam", "folds_done"] == 3
    assert table.loc["torch-adam", "heldout_logloss"] < table.loc["constant", "heldout_logloss"]


def test_compare_rows_split_and_agreement():
    responses = load_responses(LSAT7).responses
    result = cmp.compare(responses, estimators=FAST, folds=3, split="rows", progress=False)
    table = result.summary.set_index(["estimator", "model"])
    assert table.loc[("mml-em", "2pl"), "status"] == "ok"
    assert table.loc[("mml-em", "rasch"), "heldout_logloss"] < table.loc[
        ("constant", "none"), "heldout_logloss"]
    assert np.isfinite(table.loc[("mml-em", "rasch"), "aic"])
    assert np.isnan(table.loc[("jml-newton", "rasch"), "aic"])  # not a marginal fit
    pair = result.agreement[(result.agreement.model == "rasch")
                            & (result.agreement.parameter == "difficulty")]
    assert len(pair) == 1 and pair["corr"].iloc[0] > 0.99 and pair.n_items.iloc[0] == 5


def test_time_budget_skips_what_is_left():
    responses = load_responses(LSAT7).responses
    result = cmp.compare(responses, estimators=["mml-em", "torch-adam"], models=["rasch"],
                         folds=2, time_budget=1e-3, progress=False)
    fitted = result.summary[~result.summary.estimator.isin(["constant", "item-means"])]
    assert (fitted.status == "skipped").all()
    assert fitted.reason.str.contains("time budget").all()


def test_cli_writes_the_files(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(LSAT7), "--out", str(out), "--estimators", ",".join(FAST),
                 "--folds", "3"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"compare.csv", "agreement.csv", "report.md", "heldout.png"} <= names
    assert not [n for n in names if n.startswith(".")]  # no staging left behind
    table = pd.read_csv(out / "compare.csv")
    for column in ("estimator", "model", "heldout_logloss", "heldout_logloss_sd", "brier",
                   "brier_sd", "auc", "auc_sd", "seconds", "converged", "n_runaway", "aic",
                   "bic"):
        assert column in table
    assert len(table) == 5  # mml-em rasch and 2pl, jml-newton rasch, two baselines
    report = (out / "report.md").read_text()
    assert "heldout.png" in report
    printed = capsys.readouterr().out
    assert "compared in" in printed
    verdict = next(line for line in printed.splitlines() if line.startswith("Best held-out"))
    assert report.splitlines()[2] == f"**{verdict}**"  # the report opens with it
    assert "the fold-to-fold noise" in verdict and "IMV over item-means" in verdict


def test_cli_refuses_a_used_folder_and_with_force_leaves_no_file_of_the_earlier_run(
        tmp_path, capsys):
    """A second comparison into the same folder: refused (one line, exit 2) unless --force;
    with it, the earlier run's agreement.png goes when the new run has no agreement to draw
    (one estimator), and a file of the user's stays."""
    out = tmp_path / "cmp"
    assert main(["compare", str(LSAT7), "--out", str(out), "--estimators", ",".join(FAST),
                 "--models", "rasch", "--folds", "2"]) == 0
    assert (out / "agreement.png").exists()
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    again = ["compare", str(LSAT7), "--out", str(out), "--estimators", "mml-em", "--models",
             "rasch", "--folds", "2"]
    assert main(again) == 2
    error = capsys.readouterr().err.strip()
    assert "--force" in error and "\n" not in error
    assert main([*again, "--force"]) == 0
    assert not (out / "agreement.png").exists()
    assert pd.read_csv(out / "agreement.csv").empty
    assert (out / "notes.txt").read_text() == "mine"
    assert set(pd.read_csv(out / "compare.csv").estimator) == {"mml-em", "constant",
                                                               "item-means"}


def test_cli_leaves_out_respondents_with_no_answer_with_a_note(tmp_path, capsys):
    """A public ability test had 16 respondents with no observed answer, and compare refused
    the whole file (issue 31): they are left out, named in one note, and the rest compared."""
    answers = pd.read_csv(LSAT7)
    answers.iloc[[104, 500, 998], :] = np.nan
    path = tmp_path / "gaps.csv"
    answers.to_csv(path, index=False, float_format="%.0f")
    out = tmp_path / "cmp"
    assert main(["compare", str(path), "--out", str(out), "--estimators", "jml-newton",
                 "--models", "rasch", "--folds", "2"]) == 0
    captured = capsys.readouterr()
    assert f"{path}: 997 x 5, 100.0% observed" in captured.out
    assert (f"note: {path}: 3 respondent(s) with no observed answer ('104', '500', '998') "
            "left out") in captured.err
    assert (pd.read_csv(out / "compare.csv").status == "ok").all()


def test_imv_by_hand():
    """Seven right answers of ten: a prediction of 0.7 is a coin of weight 0.7 (its entropy
    is the mean log-loss), a fair one 0.5, so the IMV of the first over the second is
    (0.7 - 0.5) / 0.5 = 0.4; predictions no better than a fair coin are one."""
    y = np.array([1.0] * 7 + [0.0] * 3)
    loss = {p: cmp.log_loss(y, np.full(10, p)) for p in (0.5, 0.7, 0.3)}
    assert cmp.coin_weight(loss[0.7]) == pytest.approx(0.7, abs=1e-12)
    assert cmp.imv(loss[0.5], loss[0.7]) == pytest.approx(0.4, abs=1e-12)
    assert cmp.coin_weight(loss[0.3]) == 0.5 and cmp.imv(loss[0.5], loss[0.3]) == 0.0
    assert cmp.imv(loss[0.7], loss[0.5]) == pytest.approx(-0.2 / 0.7, abs=1e-12)


def test_imv_columns_and_the_verdict():
    """Per fold, each fit's IMV over item-means from the fold's log-losses; the best fit's
    imv_to_best is 0; the sentence names it and measures the next against the SD over folds
    of their paired difference."""
    data = irtbench.simulate(400, 15, seed=2, model="2pl")
    result = cmp.compare(data.responses, estimators=["mml-em"], models=["rasch", "2pl"],
                         folds=3, progress=False)
    folds = result.folds
    base = folds[folds.estimator == "item-means"].set_index("fold").logloss
    for row in folds[folds.estimator == "mml-em"].itertuples():
        assert row.imv == pytest.approx(float(cmp.imv(base[row.fold], row.logloss)))
    table = result.summary.set_index(["estimator", "model"])
    fitted = table.loc["mml-em"].sort_values("heldout_logloss")
    first, second = fitted.index
    assert fitted.loc[first, "imv"] > 0 and fitted.loc[first, "imv_to_best"] == 0.0
    assert fitted.loc[second, "imv_to_best"] == pytest.approx(np.mean(
        [cmp.imv(a, b) for a, b in zip(*(folds[folds.model == m].logloss.to_numpy()
                                        for m in (second, first)))]))
    best, other = (folds[(folds.estimator == "mml-em") & (folds.model == m)].set_index("fold")
                   .logloss for m in (first, second))
    difference = other - best
    assert result.verdict.startswith(
        f"Best held-out log-loss: mml-em {get_model(first).title}")
    assert f"{difference.mean():.4f}" in result.verdict
    assert f"{difference.std(ddof=1):.4f}" in result.verdict
    words = "within" if difference.mean() <= difference.std(ddof=1) else "beyond"
    assert f"is {words} the fold-to-fold noise" in result.verdict


def _fit(model: str, skill: np.ndarray, items: dict) -> irtbench.Fit:
    """A Fit holding given estimates (for the agreement alone)."""
    extra = {k: v for k, v in items.items() if k != "difficulty"}
    return irtbench.Fit(skill, items["difficulty"], None, None, np.zeros(1), 0.0, 0.0, 0.0,
                        "cpu", "mml-em", {}, 0, model=model, extra_items=extra)


@pytest.mark.parametrize("model", ["rasch", "2pl", "3pl", "m2pl"])
def test_agreement_is_symmetric_and_zero_between_a_fit_and_a_map_of_it(model):
    """The agreement of two fits does not depend on which is first; a fit and an affine map of
    it (the likelihood's own indeterminacy) agree exactly; two fits with noise agree alike
    either way round."""
    settings = {"dims": 2} if model == "m2pl" else {}
    data = irtbench.simulate(200, 30, seed=1, model=model, **settings)
    described = get_model(model)
    rng = np.random.default_rng(3)
    if model == "m2pl":
        from irtbench.models.m2pl import RotationAlignment

        mapped = RotationAlignment(np.array([[1.3, 0.4], [-0.2, 0.7]]), np.array([0.5, -1.0]))
    else:
        mapped = irtbench.models.Alignment(1.0 if model == "rasch" else 1.7, 0.8)
    moved = _fit(model, mapped.skill(data.skill), mapped.items(data.items, described.kinds))
    truth = _fit(model, data.skill, data.items)
    noisy_items = {k: v + (0.1 * rng.standard_normal(v.shape) if described.kinds[k] != "fixed"
                           and described.kinds[k] != "derived" else v)
                   for k, v in data.items.items()}
    if model == "m2pl":
        noisy_items = described.complete_items({"difficulty": data.difficulty,
                                                "loadings": noisy_items["loadings"]})
    noisy = _fit(model, data.skill + 0.2 * rng.standard_normal(data.skill.shape), noisy_items)
    exact = agreement({("a", model): truth, ("b", model): moved})
    assert exact.rmse.max() < 1e-8
    forth = agreement({("a", model): truth, ("b", model): noisy})
    back = agreement({("b", model): noisy, ("a", model): truth})
    np.testing.assert_allclose(forth.rmse.to_numpy(), back.rmse.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(forth["corr"].to_numpy(), back["corr"].to_numpy(), rtol=1e-9)
    assert (forth.rmse > 1e-3).all()



@pytest.mark.parametrize("args", [
    ["compare", "no/such/file.csv"],
    ["compare", str(LSAT7), "--folds", "1"],
    ["compare", str(LSAT7), "--estimators", "no-such"],
    ["compare", str(LSAT7), "--models", "5pl"],
])
def test_cli_bad_input_is_one_line_and_exit_2(args, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("irtbench compare: error:") and "\n" not in error



def _drawn_agreement(n_estimators: int, tmp_path, monkeypatch):
    """agreement.png's figure, laid out as saved, for ``n_estimators`` on one parameter with
    RMSEs of every width ``.2g`` writes (``5.6e-08``, ``0.00096``, ``12``)."""
    from irtbench.compare import report

    values = [5.6e-08, 0.00096, 0.0015, 0.023, 0.61, 12.5]
    names = [f"estimator-{k}" for k in range(n_estimators)]
    table = pd.DataFrame([{"model": "rasch", "estimator": a, "other": b,
                           "parameter": "difficulty", "rmse": values[(i + j) % len(values)]}
                          for i, a in enumerate(names) for j, b in enumerate(names) if i < j])
    drawn = []

    def keep(fig, path, formats):
        drawn.append(fig)
        return []

    monkeypatch.setattr(report, "save_figure", keep)
    report.draw_agreement(table, tmp_path / "agreement")
    drawn[0].draw(drawn[0].canvas.get_renderer())
    return drawn[0]


@pytest.mark.parametrize("n_estimators", [2, 8, 16])
def test_agreement_numbers_fit_in_their_cells(n_estimators, tmp_path, monkeypatch):
    """agreement.png's numbers spilled over their cells with seven estimators (issue 30):
    every number written lies inside its cell."""
    fig = _drawn_agreement(n_estimators, tmp_path, monkeypatch)
    ax = fig.axes[0]
    assert len(ax.texts) == n_estimators ** 2
    for text in ax.texts:
        j, i = text.get_position()
        cell = ax.transData.transform([(j - 0.5, i - 0.5), (j + 0.5, i + 0.5)])
        left, right = sorted(cell[:, 0])
        bottom, top = sorted(cell[:, 1])
        box = text.get_window_extent(fig.canvas.get_renderer())
        assert left <= box.x0 and box.x1 <= right and bottom <= box.y0 and box.y1 <= top, \
            (n_estimators, text.get_text())


def test_agreement_of_many_estimators_is_drawn_without_numbers(tmp_path, monkeypatch):
    """Where the numbers would need a font under the smallest readable one, the cells carry
    none (the colour bar reads them)."""
    assert not _drawn_agreement(30, tmp_path, monkeypatch).axes[0].texts


def test_each_full_data_fit_reports_its_gap_to_the_exact_marginal_optimum():
    """compare.csv's ``ll_gap``: mml-em stops at the exact marginal maximum (the reference is
    its own fit at a tighter tolerance), the notebook's joint Adam fit of the 2PL on LSAT7 far
    below it (an item runs away: it is not at any marginal optimum)."""
    from irtbench.csvio import load_responses

    responses = load_responses(LSAT7).responses
    result = cmp.compare(responses, estimators=["mml-em", "torch-adam"], models=["2pl"],
                         folds=2, progress=False)
    gaps = result.summary.set_index("estimator").ll_gap
    assert 0 <= gaps["mml-em"] < 1e-3 and gaps["torch-adam"] > 10
    assert np.isnan(gaps["item-means"])


def test_data_whose_ml_has_no_finite_maximum_get_no_gap():
    """An item that splits the students exactly by their score on the others has no finite ML
    slope under the 2PL: the reference fit runs away, and where it stopped is no maximum (at
    300 x 28659 a default mml-em fit stopped 6.1 above such a reference: a negative gap). No
    reference then, so no gap; the same data without that item get one."""
    from irtbench.gaps import reference_maximum

    data = irtbench.simulate(400, 12, seed=3, model="2pl")
    responses = np.asarray(data.responses, dtype=np.float32)
    separated = responses.copy()
    score = responses[:, 1:].sum(axis=1)
    separated[:, 0] = score > np.median(score)
    assert irtbench.fit(separated, "mml-em", model="2pl", device="cpu").diagnostics["n_runaway"]
    assert reference_maximum(separated, "2pl") is None
    assert np.isfinite(reference_maximum(responses, "2pl"))


def test_the_marginal_likelihood_of_a_long_test_is_exact():
    """Adaptive quadrature: at 200 x 600 each respondent's integrand is about 0.1 wide, between
    the nodes of a rule fixed at N(0, 1) (121 nodes were off by more than one unit here); the
    adaptive rule equals a trapezoid integral on 20001 points to 1e-6, for any skill SD."""
    from irtbench.gaps import marginal_log_likelihood

    model = get_model("2pl")
    data = irtbench.simulate(200, 600, model="2pl", seed=5, missing=0.1)
    y = np.asarray(data.responses, np.float64)
    observed = ~np.isnan(y)
    answers = np.where(observed, y, 0.0)

    def integral(theta: np.ndarray, log_weight: np.ndarray) -> float:
        p = np.clip(model.probabilities(theta, data.items), 1e-300, 1 - 1e-16)
        joint = answers @ np.log(p).T + (observed - answers) @ np.log1p(-p).T + log_weight
        peak = joint.max(axis=1, keepdims=True)
        return float((peak[:, 0] + np.log(np.exp(joint - peak).sum(axis=1))).sum())

    for sigma in (1.0, 1.7):
        theta = np.linspace(-10, 10, 20001) * sigma
        normal = -0.5 * (theta / sigma) ** 2 - np.log(sigma * np.sqrt(2 * np.pi))
        exact = integral(theta, normal + np.log(theta[1] - theta[0]))
        adaptive = marginal_log_likelihood(model, data.items, y, sigma=sigma)
        assert adaptive == pytest.approx(exact, abs=1e-6)
    z, w = np.polynomial.hermite_e.hermegauss(121)
    assert abs(integral(z, np.log(w / w.sum())) - marginal_log_likelihood(model, data.items, y)) > 1


@pytest.mark.parametrize("model, estimator", [("2pl", "torch-adam"), ("rasch", "jml-newton")])
def test_the_best_normal_skills_are_those_a_search_of_full_integrals_finds(model, estimator):
    """best_normal searches on nodes located once per round (the likelihood at each node
    computed once): the same optimum as Nelder–Mead over full integrals, to 1e-5 in the
    log-likelihood (the gap is read to 1e-3), from a start away from it."""
    from scipy.optimize import minimize

    from irtbench.gaps import best_normal, loglik

    data = irtbench.simulate(400, 30, model=model, seed=4)
    fit = irtbench.fit(data.responses, estimator, model=model, device="cpu")
    described = get_model(model)
    value, mu, sigma = best_normal(described, fit.items, data.responses, (0.1, 1.3))
    full = minimize(lambda x: -loglik(described, fit.items, data.responses, mu=x[0],
                                      sigma=np.exp(x[1])),
                    [0.1, np.log(1.3)], method="Nelder-Mead",
                    options={"xatol": 1e-4, "fatol": 1e-5})
    assert value == pytest.approx(-full.fun, abs=1e-5)
    assert (mu, sigma) == pytest.approx((full.x[0], np.exp(full.x[1])), abs=1e-3)

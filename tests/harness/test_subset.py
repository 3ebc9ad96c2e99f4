"""``irtbench subset`` (:mod:`irtbench.subset`): the strategies, K-means, the information, the
three accuracy estimates and their scores, the driver and the command. Small simulated data
whose truth is known, and mml-em's 2PL (a fast fit); the M2PL from its true items."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Z999

import irtbench
from irtbench.cli import main
from irtbench.models import get_model
from irtbench.scoring import SkillPrior
from irtbench.subset import (
    STRATEGIES,
    Calibration,
    gpirt,
    item_embeddings,
    item_information,
    kendall_tau,
    kmeans,
    mixing_weight,
    pirt,
    subset,
    true_accuracy,
    weighted_mean,
)
from irtbench.subset.accuracy import answer_variance
from irtbench.subset.calibration import score_items
from irtbench.subset.driver import options_for
from irtbench.subset.strategies import Clustering, get_strategy

DATA = Path(__file__).parents[1] / "data"
N_ITEMS = 60


@pytest.fixture(scope="module")
def calibrated() -> tuple[Calibration, np.ndarray]:
    """mml-em's 2PL calibrated on 300 rows of a simulated 2PL, and 100 new rows' answers."""
    data = irtbench.simulate(400, N_ITEMS, seed=3, model="2pl")
    responses = np.asarray(data.responses, np.float64)
    fit = irtbench.fit(responses[:300], "mml-em", model="2pl")
    return Calibration.of(fit), responses[300:]


@pytest.fixture(scope="module")
def m2pl_truth() -> tuple[Calibration, np.ndarray]:
    """The M2PL (D = 3) with its true items as the calibration, scored by MAP, and 60 new
    rows' answers."""
    data = irtbench.simulate(260, 50, seed=4, model="m2pl", dims=3)
    responses = np.asarray(data.responses, np.float64)
    prior = SkillPrior.of_skills(data.skill[:200])
    return (Calibration(get_model("m2pl"), data.items, data.skill[:200], prior, "map"),
            responses[200:])


# -- the strategies ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("k", [1, 7, N_ITEMS])
def test_each_strategy_gives_k_distinct_items_and_weights_summing_to_one(calibrated, name, k):
    calibration, answers = calibrated
    selection = get_strategy(name).select(calibration, answers, [k], seed=(0, 1))[k]
    assert selection.items.shape in ((1, k), (len(answers), k))
    if name == "adaptive":  # one row of items per respondent
        assert selection.items.shape == (len(answers), k)
    for row in selection.items:
        assert len(set(row)) == k and row.min() >= 0 and row.max() < N_ITEMS
    assert selection.weights.shape == selection.items.shape
    np.testing.assert_allclose(selection.weights.sum(axis=1), 1.0, rtol=1e-12)
    assert (selection.weights > 0).all() and selection.seconds >= 0


def test_adaptive_gives_vector_skills_their_own_distinct_items(m2pl_truth):
    calibration, answers = m2pl_truth
    selections = get_strategy("adaptive").select(calibration, answers, [4, 12])
    items = selections[12].items
    assert items.shape == (len(answers), 12)
    assert all(len(set(row)) == 12 for row in items)
    np.testing.assert_array_equal(selections[4].items, items[:, :4])  # one test, its prefix
    assert len({tuple(row) for row in items}) > 1  # answers steer the respondents apart


def test_adaptive_first_item_is_the_most_informative_at_the_prior_mean(calibrated):
    """Before any answer every respondent sits at the calibration distribution's mean, and
    with one skill the determinant's gain is the item's information there."""
    calibration, answers = calibrated
    first = get_strategy("adaptive").select(calibration, answers[:5], [1])[1].items[:, 0]
    information = item_information(calibration.model, calibration.items,
                                   calibration.prior_skills(1)).trace()[0]
    assert (first == np.argmax(information)).all()


def test_stratified_takes_one_item_per_difficulty_stratum(calibrated):
    calibration, answers = calibrated
    items, weights = get_strategy("stratified").choose(calibration, answers, 7,
                                                       np.random.default_rng(0))
    rank = np.argsort(np.argsort(calibration.items["difficulty"]))[items[0]]
    bounds = np.cumsum([0] + [len(s) for s in np.array_split(np.arange(N_ITEMS), 7)])
    assert [int(np.searchsorted(bounds, r, side="right")) - 1 for r in rank] == list(range(7))
    np.testing.assert_allclose(weights[0], np.diff(bounds) / N_ITEMS)


def test_information_takes_the_items_most_informative_at_the_population(calibrated):
    calibration, answers = calibrated
    items = get_strategy("information").choose(calibration, answers, 5, None)[0][0]
    a, b = calibration.items["discrimination"], calibration.items["difficulty"]
    theta = calibration.skill[np.isfinite(calibration.skill)]
    p = 1 / (1 + np.exp(-a[None, :] * (theta[:, None] - b[None, :])))
    by_hand = (a**2 * p * (1 - p)).mean(axis=0)  # the 2PL's information, written out
    assert set(items) == set(np.argsort(-by_hand)[:5])


# -- K-means and the clustering ------------------------------------------------------------
def test_kmeans_finds_separated_clusters_and_is_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    points = np.repeat(centres, 25, axis=0) + rng.normal(0, 0.5, (100, 2))
    found = kmeans(points, 4, seed=1)
    for label in range(4):  # each cluster one of the true groups, whole
        members = np.flatnonzero(found.labels == label)
        assert len(members) == 25 and len(set(members // 25)) == 1
    again = kmeans(points, 4, seed=1)
    np.testing.assert_array_equal(found.labels, again.labels)
    np.testing.assert_array_equal(found.centres, again.centres)
    every = kmeans(points[:10], 10, seed=2)  # k = J: each point its own cluster
    assert sorted(every.labels) == list(range(10)) and every.inertia == pytest.approx(0.0)


def test_clustering_is_deterministic_for_a_seed_and_weights_are_cluster_shares(calibrated):
    calibration, answers = calibrated
    first = Clustering().select(calibration, answers, [10], seed=(5, 0))[10]
    again = Clustering().select(calibration, answers, [10], seed=(5, 0))[10]
    np.testing.assert_array_equal(first.items, again.items)
    np.testing.assert_array_equal(first.weights, again.weights)
    # the weights are cluster shares: multiples of 1/J
    np.testing.assert_allclose(first.weights * N_ITEMS, np.round(first.weights * N_ITEMS),
                               atol=1e-9)


# -- the information ---------------------------------------------------------------------------
def test_information_of_the_3pl_by_differences_matches_its_closed_form():
    """No linear logit: the gradient by central differences against
    I = ((1-c) a s(1-s))^2 / (p(1-p)), p = c + (1-c)s."""
    data = irtbench.simulate(5, 8, seed=1, model="3pl")
    theta = np.linspace(-2, 2, 5)
    info = item_information(get_model("3pl"), data.items, theta).trace()
    a, b, c = (data.items[n][None, :] for n in ("discrimination", "difficulty", "guessing"))
    s = 1 / (1 + np.exp(-a * (theta[:, None] - b)))
    p = c + (1 - c) * s
    np.testing.assert_allclose(info, ((1 - c) * a * s * (1 - s)) ** 2 / (p * (1 - p)),
                               rtol=1e-7)


class TwoPLByDifferences(type(get_model("2pl"))):
    """The 2PL without its linear logit declared: the general paths (central differences)."""

    def linear_logits(self, items: dict) -> None:
        return None


def test_the_general_paths_agree_with_the_linear_logit():
    """Information and embeddings by differences against the 2PL's exact a^2 p(1-p) and
    (a, -ab) (its logit is linear, so the secant over +/-1 is exact)."""
    data = irtbench.simulate(6, 9, seed=3, model="2pl")
    exact, general = get_model("2pl"), TwoPLByDifferences()
    np.testing.assert_allclose(item_information(general, data.items, data.skill).trace(),
                               item_information(exact, data.items, data.skill).trace(),
                               rtol=1e-7)
    a, b = data.items["discrimination"], data.items["difficulty"]
    np.testing.assert_allclose(item_embeddings(exact, data.items, np.zeros(1)),
                               np.column_stack([a, -a * b]))
    np.testing.assert_allclose(item_embeddings(general, data.items, np.array([0.3])),
                               np.column_stack([a, -a * b]), rtol=1e-9, atol=1e-9)


def test_information_of_the_m2pl_is_its_rank_one_matrix():
    data = irtbench.simulate(4, 6, seed=2, model="m2pl", dims=2)
    info = item_information(get_model("m2pl"), data.items, data.skill)
    loadings = data.items["loadings"]
    p = get_model("m2pl").probabilities(data.skill, data.items)
    np.testing.assert_allclose(info.trace(), p * (1 - p) * (loadings**2).sum(axis=1))
    inverse = np.broadcast_to(np.eye(2) * 2.0, (4, 2, 2))
    np.testing.assert_allclose(info.quadratic(inverse), 2 * info.trace())


# -- the estimates ----------------------------------------------------------------------------
def test_pirt_with_every_item_answered_is_the_accuracy():
    """All items shown: p-IRT counts only answers, whatever the skill; with missing cells the
    accuracy is over the observed ones."""
    data = irtbench.simulate(30, 12, seed=5, model="2pl")
    answers = np.asarray(data.responses, np.float64)
    answers[np.random.default_rng(0).random(answers.shape) < 0.2] = np.nan
    every = np.arange(12)[None, :]
    estimate = pirt(get_model("2pl"), data.items, np.full(30, 3.0), answers, every)
    np.testing.assert_allclose(estimate, true_accuracy(answers), rtol=1e-12)
    np.testing.assert_allclose(weighted_mean(answers, every, np.full((1, 12), 1 / 12)),
                               true_accuracy(answers), rtol=1e-12)


def test_pirt_predicts_the_items_not_shown():
    model = get_model("rasch")
    items = {"difficulty": np.array([0.0, 1.0, -1.0])}
    answers = np.array([[1.0, 0.0, np.nan]])
    estimate = pirt(model, items, np.array([0.5]), answers, np.array([[0]]))
    assert estimate[0] == pytest.approx((1 + 1 / (1 + np.exp(0.5))) / 2)  # item 2 unobserved


def test_gpirt_weight_is_tinybenchmarks():
    """lambda = b^2 / (b^2 + v/(c k)): tinyBenchmarks' get_lambda(b, v/(c k))."""
    assert mixing_weight(0.02, 0.2, 100, 4.0) == pytest.approx(0.0004 / (0.0004 + 0.0005))
    assert mixing_weight(0.0, 0.2, 10, 1.0) == 0.0 and mixing_weight(0.1, 0.0, 10, 1.0) == 1.0
    mixed = gpirt(np.array([0.2, np.nan]), np.array([0.6, 0.5]), 0.25)
    np.testing.assert_allclose(mixed, [0.5, 0.5])
    assert answer_variance(np.array([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(0.125)


def test_kendall_tau_is_scipys_tau_b():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 80).astype(float)  # with ties
    y = x + rng.normal(0, 2, 80)
    assert kendall_tau(x, y, block=7) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
    assert kendall_tau(x, x + 1e-15) == pytest.approx(1.0)  # rounding alone is a tie
    assert np.isnan(kendall_tau(np.ones(5), y[:5]))


def test_the_error_falls_with_more_items(calibrated):
    """Random items: every new respondent's error with 40 items against its error with 10, a
    paired one-sided test at 0.999 for the mean and p-IRT (the mean's expected error falls
    by about sqrt(10 (J - 40) / (40 (J - 10))) = 0.40 here)."""
    calibration, answers = calibrated
    truth = true_accuracy(answers)
    strategy = get_strategy("random")
    errors = {}
    for k, selection in strategy.select(calibration, answers, [10, 40], seed=(1,)).items():
        skill = score_items(calibration, answers, selection.items).skill
        errors[k] = {"mean": weighted_mean(answers, selection.items, selection.weights),
                     "pirt": pirt(calibration.model, calibration.items, skill, answers,
                                  selection.items)}
    for method in ("mean", "pirt"):
        drop = np.abs(errors[10][method] - truth) - np.abs(errors[40][method] - truth)
        assert drop.mean() > Z999 * drop.std(ddof=1) / math.sqrt(len(drop)), method


def test_multidimensional_pirt_error_falls_with_adaptive_items(m2pl_truth):
    calibration, answers = m2pl_truth
    truth = true_accuracy(answers)
    errors = {}
    for k, selection in get_strategy("adaptive").select(calibration, answers, [3, 30]).items():
        skill = score_items(calibration, answers, selection.items).skill
        errors[k] = np.abs(pirt(calibration.model, calibration.items, skill, answers,
                                selection.items) - truth)
    drop = errors[3] - errors[30]
    assert drop.mean() > Z999 * drop.std(ddof=1) / math.sqrt(len(drop))


# -- the driver -----------------------------------------------------------------------------------
def test_subset_tables_and_pirt_exact_with_every_item():
    data = irtbench.simulate(120, 20, seed=6, model="2pl")
    result = subset(data.responses, items=[5, 20, 50], strategies=["random", "adaptive"],
                    folds=2, progress=False)
    assert result.notes == ("item sizes 50 exceed the 20 items of the data and were left out",)
    assert len(result.folds) == 2 * 2 * 3 * 2 and (result.folds.status == "ok").all()
    assert len(result.summary) == 2 * 2 * 3
    exact = result.summary[(result.summary.k == 20) & (result.summary.method == "pirt")]
    assert (exact.mae == 0).all() and (exact.kendall_tau == 1).all()
    assert (result.folds.seconds_calibrate > 0).all() and (result.folds.scoring == "eap").all()
    gp = result.folds[result.folds.method == "gpirt"]
    assert gp.mixing_weight.between(0, 1).all() and gp.seconds_weight.notna().all()
    assert result.folds[result.folds.method != "gpirt"].mixing_weight.isna().all()


def test_a_model_option_reaches_the_fits_of_that_model_alone():
    """``-o dims=10`` with the 2PL and the M2PL: the 2PL's fits would refuse it."""
    options = {"dims": 10, "epochs": 5, "jax-adam:dims": 4, "jax-adam:epochs": 7}
    assert options_for(options, "2pl") == {"epochs": 5, "jax-adam:epochs": 7}
    assert options_for(options, "m2pl") == options


def test_subset_refuses_bad_input_in_one_line():
    responses = irtbench.simulate(40, 10, seed=0).responses
    with pytest.raises(ValueError, match="exceeds the 10 items"):
        subset(responses, items=[20, 30], progress=False)
    with pytest.raises(ValueError, match="positive integer"):
        subset(responses, items=[0, 5], progress=False)
    with pytest.raises(ValueError, match="unknown strategy 'tiny'.*random"):
        subset(responses, strategies=["tiny"], progress=False)
    with pytest.raises(ValueError, match="folds"):
        subset(responses, items=[5], folds=1, progress=False)


# -- the command -------------------------------------------------------------------------------
def test_cli_subset_end_to_end(tmp_path, capsys):
    data = irtbench.simulate(150, 24, seed=7, model="2pl")
    source = tmp_path / "sim.csv"
    pd.DataFrame(np.asarray(data.responses), columns=[f"q{j}" for j in range(24)]).to_csv(
        source, index=False)
    out = tmp_path / "out"
    argv = ["subset", str(source), "--out", str(out), "--items", "6,12",
            "--strategies", "random,clustering", "--folds", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "best at k=6" in printed and "best at k=12" in printed
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "subset.csv", "subset.png",
                                                     "summary.csv"]
    folds = pd.read_csv(out / "subset.csv")
    assert len(folds) == 2 * 2 * 3 * 2 and set(folds.method) == {"mean", "pirt", "gpirt"}
    assert len(pd.read_csv(out / "summary.csv")) == 2 * 2 * 3
    report = (out / "report.md").read_text()
    assert "## Best combination at each k" in report and "## Random selection" in report
    assert main(argv) == 2  # the folder holds a run: refused without --force
    assert "not empty" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0


def test_force_leaves_no_file_of_an_earlier_run(tmp_path):
    """A run with nothing measured draws no figure: the earlier run's figure goes too."""
    from irtbench.subset import FOLD_COLUMNS, SUMMARY_COLUMNS, SubsetResult, write_subset

    (tmp_path / "subset.png").write_bytes(b"an earlier run's figure")
    row = {"estimator": "mml-em", "model": "2pl", "strategy": "random", "k": 5,
           "method": "mean", "status": "skipped", "reason": "the time budget was spent"}
    result = SubsetResult(pd.DataFrame([row]).reindex(columns=list(FOLD_COLUMNS)),
                          pd.DataFrame([row]).reindex(columns=list(SUMMARY_COLUMNS)), ())
    with pytest.raises(ValueError, match="not empty"):
        write_subset(result, tmp_path)
    written = write_subset(result, tmp_path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written) == [
        "report.md", "subset.csv", "summary.csv"]
    assert "skipped: mml-em 2pl random k=5 mean" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--items", "5,x"], "--items"),
    (["--items", "0"], "positive integer"),
    (["--folds", "1"], "at least 2 folds"),
    (["--strategies", "random,tiny"], "unknown strategy"),
    (["--models", "m2pl", "--items", "3"], "m2pl"),
    (["--items", "50"], "exceeds the 5 items"),
])
def test_cli_subset_bad_input_is_one_line_exit_2(tmp_path, capsys, extra, message):
    code = main(["subset", str(DATA / "lsat7.csv"), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())

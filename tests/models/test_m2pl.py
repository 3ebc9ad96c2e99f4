"""The multidimensional 2PL (``model="m2pl"``, :mod:`irtbench.models.m2pl`): its simulation,
its alignment (whitening, then an orthogonal Procrustes rotation), its runaway rule, the
held-out log-likelihood, the ``irtbench fit`` file with D columns, and py-irt's
``multidim_2pl`` as its peer (skipped, with the reason, where py-irt's interpreter is absent).
No estimator of the suite's own fits it here: the fits are made by hand from the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench.estimates import estimates_table, read_estimates
from irtbench.csvio import ResponseTable
from irtbench.estimators import Fit
from irtbench.evaluation import error_rows
from irtbench.metrics import RECOVERY_METRICS, held_out_log_likelihood, log_loss, predict
from irtbench.models import MODELS, extremes, get_model
from irtbench.models.m2pl import (
    RotationAlignment,
    derived_items,
    orthogonal_procrustes,
    rotation_alignment,
)
from irtbench.models.twopl import RUNAWAY_LIMIT, joint_standard_errors

M2PL = get_model("m2pl")


def transformed(data: irtbench.Dataset, matrix: np.ndarray, offset: np.ndarray
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The truth under the skills' map theta -> theta B + t with the inverse on the items:
    the same logits (what joint ML cannot tell from the truth)."""
    skill = data.skill @ matrix + offset
    loadings = np.linalg.solve(matrix, data.loadings.T).T
    return skill, derived_items(loadings, data.intercept - loadings @ offset)


def fit_of(skill: np.ndarray, items: dict[str, np.ndarray], **more: object) -> Fit:
    return Fit(skill=skill, difficulty=items["difficulty"], skill_se=more.pop("skill_se", None),
               difficulty_se=None, losses=np.array([0.0]), seconds=0.0, compute_seconds=0.0,
               compile_seconds=0.0, device="cpu", estimator="by-hand", options={}, n_iter=1,
               model="m2pl", extra_items={k: v for k, v in items.items() if k != "difficulty"},
               **more)


def random_map(rng: np.random.Generator, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """An invertible map far from the identity: a rotation, unequal stretches, a shear."""
    q, _ = np.linalg.qr(rng.standard_normal((dims, dims)))
    matrix = q @ np.diag(rng.uniform(0.3, 3.0, dims)) @ (np.eye(dims)
                                                         + np.triu(rng.normal(0, 0.5, (dims, dims)), 1))
    return matrix, rng.normal(0.0, 2.0, dims)


@pytest.fixture(scope="module")
def data() -> irtbench.Dataset:
    return irtbench.simulate(600, 80, model="m2pl", dims=3, seed=11)


# -- the model and its simulation ---------------------------------------------------------------
def test_m2pl_is_registered_last_with_its_parameters():
    assert MODELS[-1] == "m2pl"
    assert M2PL.item_parameters == ("difficulty", "discrimination", "intercept", "loadings")
    assert set(M2PL.kinds) == {"skill", *M2PL.item_parameters} == set(M2PL.units)
    for metric in ("rmse_loadings", "rmse_intercept", "rmse_discrimination", "corr_skill"):
        assert metric in RECOVERY_METRICS


def test_simulate_m2pl_shapes_and_moments():
    data = irtbench.simulate(4000, 300, model="m2pl", dims=3, seed=1)
    assert data.model == "m2pl" and data.responses.shape == (4000, 300)
    assert data.skill.shape == (4000, 3) and data.loadings.shape == (300, 3)
    for name in ("difficulty", "discrimination", "intercept"):
        assert data.items[name].shape == (300,)
    # skills N(0, I_3)
    assert np.abs(data.skill.mean(axis=0)).max() < 0.05
    assert np.abs(np.cov(data.skill, rowvar=False) - np.eye(3)).max() < 0.07
    # MDISC lognormal(0, 0.3^2) on the positive orthant; MDIFF N(0, 1); d = -MDISC * MDIFF
    assert np.all(data.loadings >= 0)
    np.testing.assert_allclose(data.discrimination, np.linalg.norm(data.loadings, axis=1))
    log_mdisc = np.log(data.discrimination)
    assert abs(log_mdisc.mean()) < 0.05 and abs(log_mdisc.std() - 0.3) < 0.04
    assert abs(data.difficulty.mean()) < 0.15 and abs(data.difficulty.std() - 1.0) < 0.12
    np.testing.assert_allclose(data.difficulty, -data.intercept / data.discrimination)
    # the answers follow the model's probabilities
    p = M2PL.probabilities(data.skill, data.items)
    assert abs(np.nanmean(data.responses) - p.mean()) < 0.005
    assert abs(np.mean(data.responses[:, 0]) - p[:, 0].mean()) < 0.03


def test_m2pl_with_one_dimension_is_the_2pl_for_the_same_seed():
    two = irtbench.simulate(300, 20, model="2pl", seed=5, missing=0.1)
    one = irtbench.simulate(300, 20, model="m2pl", dims=1, seed=5, missing=0.1)
    np.testing.assert_array_equal(one.skill[:, 0], two.skill)
    np.testing.assert_array_equal(one.loadings[:, 0], two.discrimination)
    np.testing.assert_allclose(one.difficulty, two.difficulty, rtol=1e-12)
    np.testing.assert_array_equal(one.responses, two.responses)


@pytest.mark.parametrize("model, sums", [
    # the sums of simulate(50, 9, model=..., seed=7, missing=0.1) before the M2PL existed
    ("rasch", (-1.5985520834722857, -2.6754011712787715, 215.0, [])),
    ("2pl", (-14.63271448230813, 2.747557596606658, 148.0, [8.991635343690346])),
    ("3pl", (-14.63271448230813, 2.747557596606658, 200.0,
             [8.991635343690346, 2.1148631542928498])),
])
def test_the_other_models_draws_are_unchanged(model, sums):
    data = irtbench.simulate(50, 9, model=model, seed=7, missing=0.1)
    skill, difficulty, right, extra = sums
    assert data.skill.shape == (50,)
    assert float(data.skill.sum()) == pytest.approx(skill, rel=1e-12)
    assert float(data.difficulty.sum()) == pytest.approx(difficulty, rel=1e-12)
    assert float(np.nansum(data.responses)) == right
    assert [float(v.sum()) for v in data.extra_items.values()] == pytest.approx(extra, rel=1e-12)


def test_dims_is_refused_where_it_means_nothing():
    with pytest.raises(ValueError, match="dims is a setting of the multidimensional"):
        irtbench.simulate(20, 5, model="2pl", dims=2)
    with pytest.raises(ValueError, match="dims must be a positive integer"):
        irtbench.simulate(20, 5, model="m2pl", dims=0)


def test_m2pl_log_likelihood_is_the_sum_of_its_probabilities(data):
    p = M2PL.probabilities(data.skill, data.items)
    y = data.responses
    expected = np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))
    assert M2PL.log_likelihood(y, data.skill, data.items) == pytest.approx(expected, rel=1e-12)


def test_m2pl_joint_skill_se_with_one_dimension_is_the_2pls():
    one = irtbench.simulate(200, 30, model="m2pl", dims=1, seed=3)
    skill_se, item_se = M2PL.joint_errors(one.responses, one.skill, one.items)
    two_pl_se, _, _ = joint_standard_errors(one.responses, one.skill[:, 0], one.difficulty,
                                            one.discrimination)
    found = extremes(one.responses)
    kept = ~found[0]
    np.testing.assert_allclose(skill_se[kept, 0], two_pl_se[kept], rtol=1e-10)
    assert np.all(np.isinf(skill_se[found[0]]))
    assert item_se["loadings"].shape == (30, 1)
    for values in item_se.values():
        assert np.all(np.isfinite(values[~found[1]])) and np.all(values[~found[1]] > 0)


# -- the alignment ----------------------------------------------------------------------------
def test_procrustes_is_scipys():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    source, target = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    np.testing.assert_allclose(orthogonal_procrustes(source, target),
                               linalg.orthogonal_procrustes(source, target)[0], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_alignment_recovers_the_truth_from_any_affine_transform_of_it(data, seed):
    """Joint ML cannot tell the truth from its image under an invertible map of the skills with
    the inverse on the items; after the whitening and the rotation every part is the truth."""
    matrix, offset = random_map(np.random.default_rng(seed), 3)
    skill, items = transformed(data, matrix, offset)
    np.testing.assert_allclose(M2PL.probabilities(skill, items),
                               M2PL.probabilities(data.skill, data.items), atol=1e-12)
    keep = M2PL.usable(items)
    alignment = M2PL.alignment(items, data.items, keep, skill=skill, true_skill=data.skill)
    assert isinstance(alignment, RotationAlignment)
    np.testing.assert_allclose(alignment.skill(skill), data.skill, atol=1e-9)
    moved = alignment.items(items, M2PL.kinds)
    for name in M2PL.item_parameters:
        np.testing.assert_allclose(moved[name], data.items[name], atol=1e-9)
    np.testing.assert_allclose(alignment.matrix, np.linalg.inv(matrix), atol=1e-9)
    metrics = irtbench.recovery(fit_of(skill, items), data)
    for part in ("skill", "difficulty", "discrimination", "intercept", "loadings"):
        assert metrics[f"rmse_{part}"] < 1e-9 and metrics[f"corr_{part}"] > 1 - 1e-9
    assert np.isnan(metrics["crb_loadings"]) and np.isnan(metrics["coverage_skill"])


def test_the_alignment_needs_the_skills(data):
    with pytest.raises(ValueError, match="whitens the skills"):
        M2PL.align(data.items, data.items, np.ones(80, bool))


def test_the_alignment_is_fitted_on_the_loadings_not_on_noise_in_them(data):
    """An estimate with noisy loadings is aligned by the rotation that best matches them: its
    aligned loadings' RMSE is the noise's (no worse for the rotation having been fitted)."""
    rng = np.random.default_rng(4)
    matrix, offset = random_map(rng, 3)
    skill, items = transformed(data, matrix, offset)
    noisy = derived_items(items["loadings"] + rng.normal(0, 0.05, items["loadings"].shape)
                          @ np.linalg.inv(matrix).T, items["intercept"])
    metrics = irtbench.recovery(fit_of(skill, noisy), data)
    assert 0.04 < metrics["rmse_loadings"] < 0.055
    # the skills were exact: their error is the rotation's small misfit alone
    assert metrics["rmse_skill"] < 0.02 and metrics["corr_skill"] > 0.999


def test_error_rows_list_every_entry_of_the_two_dimensional_parts(data):
    matrix, offset = random_map(np.random.default_rng(5), 3)
    skill, items = transformed(data, matrix, offset)
    rows = error_rows({"estimator": "x"}, fit_of(skill, items), data, extremes(data.responses))
    counts = pd.Series([row["kind"] for row in rows]).value_counts()
    assert counts["skill"] == 600 * 3 and counts["loadings"] == 80 * 3
    assert counts["intercept"] == counts["difficulty"] == counts["discrimination"] == 80
    assert max(abs(float(row["error"])) for row in rows) < 1e-9


# -- runaways ---------------------------------------------------------------------------------
def test_runaway_does_not_flag_a_rotated_or_transformed_truth(data):
    rng = np.random.default_rng(6)
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    no_extreme = np.zeros(80, bool)
    for matrix, offset in [(rotation, np.zeros(3)), random_map(rng, 3)]:
        skill, items = transformed(data, matrix, offset)
        _, item_se = M2PL.joint_errors(data.responses, skill, items)
        assert not M2PL.runaway(items, item_se, no_extreme).any()
    # loadings pointing anywhere, even negative ones, are not runaways; a large MDISC or
    # intercept is
    items = derived_items(-data.loadings[:, ::-1], data.intercept)
    assert not M2PL.runaway(items, {}, no_extreme).any()
    loadings, intercept = data.loadings.copy(), data.intercept.copy()
    loadings[3] *= 1.01 * RUNAWAY_LIMIT / np.linalg.norm(loadings[3])
    intercept[5] = -1.5 * RUNAWAY_LIMIT
    loadings[7] = np.nan
    flagged = M2PL.runaway(derived_items(loadings, intercept), {}, no_extreme)
    assert np.flatnonzero(flagged).tolist() == [3, 5, 7]
    extreme = np.zeros(80, bool)
    extreme[5] = True
    assert np.flatnonzero(M2PL.runaway(derived_items(loadings, intercept), {}, extreme)
                          ).tolist() == [3, 7]


# -- held-out log-likelihood ------------------------------------------------------------------
def test_held_out_log_likelihood_of_the_truth_beats_a_random_guess(data):
    rng = np.random.default_rng(7)
    held = rng.random(data.shape) < 0.2
    truth = held_out_log_likelihood(M2PL, data.responses, held, data.skill, data.items)
    guess = held_out_log_likelihood(
        "m2pl", data.responses, held, rng.standard_normal((600, 3)),
        derived_items(np.abs(rng.standard_normal((80, 3))), rng.standard_normal(80)))
    assert truth > guess and truth > np.log(0.5) and -1.0 < truth < -0.3
    # it is the mean log-likelihood of the held-out cells
    p = M2PL.probabilities(data.skill, data.items)[held]
    y = data.responses[held]
    expected = np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))
    assert truth == pytest.approx(expected, rel=1e-10)
    rows, columns = np.nonzero(held)
    assert truth == pytest.approx(
        -log_loss(y, predict(M2PL, data.skill, data.items, rows, columns)[0]), rel=1e-12)


def test_held_out_log_likelihood_is_generic_and_skips_missing_cells():
    data = irtbench.simulate(200, 15, model="2pl", seed=2, missing=0.3)
    held = np.ones(data.shape, bool)
    observed = ~np.isnan(data.responses)
    p = get_model("2pl").probabilities(data.skill, data.items)[observed]
    y = data.responses[observed]
    assert held_out_log_likelihood("2pl", data.responses, held, data.skill, data.items) \
        == pytest.approx(np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)), rel=1e-10)
    with pytest.raises(ValueError, match="no observed response"):
        held_out_log_likelihood("2pl", data.responses, np.zeros(data.shape, bool), data.skill,
                                data.items)


# -- the estimates file -----------------------------------------------------------------------
def test_the_fit_file_round_trip_with_d_columns(tmp_path):
    data = irtbench.simulate(60, 12, model="m2pl", dims=3, seed=8)
    skill_se, item_se = M2PL.joint_errors(data.responses, data.skill, data.items)
    fit = fit_of(data.skill, data.items, skill_se=skill_se,
                 extra_se={k: v for k, v in item_se.items() if k != "difficulty"},
                 runaway_questions=np.zeros(12, bool))
    table = ResponseTable(data.responses, [f"s{i}" for i in range(60)],
                          [f"q{j}" for j in range(12)])
    path = tmp_path / "estimates.csv"
    estimates_table(table, fit).to_csv(path, index=False)
    written = pd.read_csv(path)
    for stem in ("skill", "loading"):
        assert [f"{stem}_{k}" for k in (1, 2, 3)] == [c for c in written.columns
                                                      if c.startswith(f"{stem}_")
                                                      and not c.endswith("_se")]
        assert f"{stem}_3_se" in written.columns
    students = written[written.kind == "student"]
    assert students.estimate.isna().all() and students.skill_2.notna().all()
    assert written.loc[written.kind == "question", "loading_1"].notna().all()
    skill, items = read_estimates(path)
    np.testing.assert_allclose(skill, data.skill, rtol=1e-15)
    assert list(items) == list(data.items)
    for name, values in data.items.items():
        np.testing.assert_allclose(items[name], values, rtol=1e-15)
    with pytest.raises(ValueError, match="skills of the m2pl model are vectors"):
        estimates_table(table, fit, "mean-difficulty")


def test_the_fit_file_of_a_one_dimensional_model_reads_back(tmp_path):
    data = irtbench.simulate(40, 6, model="2pl", seed=1)
    fit = Fit(skill=data.skill, difficulty=data.difficulty, skill_se=None, difficulty_se=None,
              losses=np.array([0.0]), seconds=0.0, compute_seconds=0.0, compile_seconds=0.0,
              device="cpu", estimator="by-hand", options={}, n_iter=1, model="2pl",
              extra_items={"discrimination": data.discrimination})
    table = ResponseTable(data.responses, [str(i) for i in range(40)],
                          [f"q{j}" for j in range(6)])
    path = tmp_path / "e.csv"
    estimates_table(table, fit).to_csv(path, index=False)
    skill, items = read_estimates(path)
    np.testing.assert_allclose(skill, data.skill, rtol=1e-15)
    assert list(items) == ["difficulty", "discrimination"]


# -- py-irt's multidim_2pl --------------------------------------------------------------------
PyIrt = irtbench.get_estimator("py-irt")


def test_py_irt_fits_the_m2pl_and_refuses_dims_elsewhere():
    assert "m2pl" in PyIrt.models
    with pytest.raises(ValueError, match="option dims belongs to the m2pl model"):
        PyIrt(model="2pl", dims=3).resolved_options()
    assert PyIrt(model="m2pl", dims=3).resolved_options()["dims"] == 3


@pytest.mark.skipif(not PyIrt.available(),
                    reason=f"py-irt's interpreter is not here "
                           f"({', '.join(PyIrt.missing_requirements())}); make it with: "
                           f"{PyIrt.install_command()} (or make py-irt-venv, or name it by "
                           "$IRTBENCH_PY_IRT_PYTHON)")
def test_py_irt_multidim_2pl_recovers_the_intercepts():
    """py-irt's multidim_2pl at 300 x 40, D = 2, 300 epochs (about 10 s): its export read as
    the M2PL's four item parameters, aligned by the whitening and the rotation."""
    data = irtbench.simulate(300, 40, model="m2pl", dims=2, seed=0)
    fit = irtbench.fit(data.responses, "py-irt", model="m2pl", dims=2, epochs=300)
    assert fit.model == "m2pl" and fit.skill.shape == (300, 2)
    assert fit.loadings.shape == (40, 2) and np.all(fit.loadings > 0)
    np.testing.assert_allclose(fit.discrimination, np.linalg.norm(fit.loadings, axis=1))
    assert fit.diagnostics["n_runaway"] == 0
    metrics = irtbench.recovery(fit, data)
    assert metrics["corr_intercept"] > 0.9 and metrics["rmse_intercept"] < 0.5
    assert np.isfinite(metrics["rmse_loadings"]) and np.isfinite(metrics["rmse_skill"])


@pytest.mark.skipif(not PyIrt.available(), reason="py-irt's interpreter is not here (see above)")
def test_irtbench_fit_writes_an_m2pl_fit_with_d_columns(tmp_path, capsys):
    from irtbench.cli import main

    data = irtbench.simulate(150, 12, model="m2pl", dims=3, seed=4)
    path = tmp_path / "answers.csv"
    pd.DataFrame(data.responses, columns=[f"Q{j}" for j in range(12)]).to_csv(
        path, index=False, float_format="%.0f")
    out = tmp_path / "estimates.csv"
    assert main(["fit", str(path), "--estimator", "py-irt", "--model", "m2pl", "-o", "dims=3",
                 "-o", "epochs=50", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "m2pl model" in printed and "loading_1 ... loading_3" in printed
    skill, items = read_estimates(out)
    assert skill.shape == (150, 3) and items["loadings"].shape == (12, 3)
    np.testing.assert_allclose(items["discrimination"], np.linalg.norm(items["loadings"], axis=1),
                               rtol=1e-6)

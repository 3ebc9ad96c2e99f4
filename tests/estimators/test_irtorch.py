"""The irtorch peers (``irtorch-mml``, ``irtorch-vae``, ``irtorch-jml``): irtorch 0.5.6 run by the
interpreter of its own environment (``make irtorch-venv``). The mapping of irtorch's
slope-intercept parameters onto the suite's is checked against irtorch's own probability
function; the tests that need irtorch are skipped, with the command that builds it, where its
interpreter is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import needs

import irtbench
from irtbench.estimators import _torch_family as family
from irtbench.harness.limits import FitTimeout, time_limit
from irtbench.models import get_model

MML = irtbench.get_estimator("irtorch-mml")
needs_irtorch = needs("irtorch-mml", "irtorch's interpreter")

#: skills at which the probabilities are compared: the middle and both tails
THETA = np.linspace(-3.0, 3.0, 7)
#: irtorch's own parameters (item_parameters() units) for 4 items: slopes of both signs,
#: intercepts of both signs, floors inside (0, 1)
A = np.array([0.5, 1.3, -0.8, 2.2])
D = np.array([1.0, -0.4, 0.3, -2.0])
C = np.array([0.1, 0.25, 0.05, 0.3])
LOADINGS = np.array([[0.9, 0.2], [-0.5, 1.1], [1.4, -0.3], [0.0, 0.7]])

#: one case per suite model: the irtorch class and its parameters
CASES = {
    "rasch": {"set_d": D},
    "2pl": {"set_a": A[:, None], "set_d": D},
    "3pl": {"set_a": A[:, None], "set_d": D, "set_c": C},
    "m2pl": {"set_a": LOADINGS, "set_d": D},
}


def theta_of(model: str) -> np.ndarray:
    if model == "m2pl":
        grid = np.stack(np.meshgrid(THETA[::2], THETA[::2]), axis=-1).reshape(-1, 2)
        return grid
    return THETA


def test_irtorch_items_are_the_suites_slope_intercept_form():
    """b = -d / a, a as it is, the floor as it is, the Rasch difficulty -d, the M2PL's loadings
    and intercepts as they are (MDIFF and MDISC derived): written out for one item."""
    items = family.irtorch_items("3pl", {"a": A[:, None], "d": D, "c": C})
    np.testing.assert_allclose(items["difficulty"], -D / A)
    np.testing.assert_allclose(items["discrimination"], A)
    np.testing.assert_allclose(items["guessing"], C)
    np.testing.assert_allclose(family.irtorch_items("rasch", {"d": D})["difficulty"], -D)
    m2pl = family.irtorch_items("m2pl", {"a": LOADINGS, "d": D})
    np.testing.assert_allclose(m2pl["intercept"], D)
    np.testing.assert_allclose(m2pl["loadings"], LOADINGS)
    np.testing.assert_allclose(m2pl["discrimination"], np.linalg.norm(LOADINGS, axis=1))


def test_irtorch_mml_declines_the_rasch_model_and_more_than_three_dimensions():
    with pytest.raises(ValueError, match="estimator 'irtorch-mml' fits the 2pl and 3pl and "
                                         "m2pl model"):
        MML(model="rasch").resolved_options()
    with pytest.raises(ValueError, match="irtorch's MML takes at most 3 latent dimensions"):
        MML(model="m2pl", dims=5).resolved_options()
    assert irtbench.get_estimator("irtorch-vae")(model="m2pl", dims=5).resolved_options()
    assert "rasch" in irtbench.get_estimator("irtorch-jml").models


@needs_irtorch
def test_irtorch_probabilities_equal_the_suites_after_the_mapping():
    """For parameters set in irtorch's own models (its 1PL, 2PL, 3PL and 2-dimensional 2PL),
    irtorch's item_probabilities equal the suite's Model.probabilities of the mapped items, and
    its item_parameters() read back what was set (float32: 1e-6)."""
    models = list(CASES)
    cases = [{"model_class": family.IRTORCH_CLASSES[m], "theta": theta_of(m),
              "dims": 2 if m == "m2pl" else 0, **CASES[m]} for m in models]
    for model, case, out in zip(models, cases, family.package_probabilities(family.IRTORCH,
                                                                            cases)):
        raw = {name[4:]: value for name, value in case.items() if name.startswith("set_")}
        for name, value in raw.items():
            np.testing.assert_allclose(out[name], value, atol=1e-6, err_msg=f"{model} {name}")
        items = family.irtorch_items(model, out)
        expected = get_model(model).probabilities(case["theta"], items)
        np.testing.assert_allclose(out["probabilities"], expected, atol=2e-6, err_msg=model)


@pytest.fixture(scope="module")
def lsat7_like() -> tuple[irtbench.Dataset, np.ndarray, irtbench.Fit, irtbench.Fit]:
    """A simulated 2PL exam with missing cells and a question everybody got right, fitted by
    irtorch-mml and mml-em."""
    data = irtbench.simulate(600, 12, seed=3, model="2pl", missing=0.1)
    responses = data.responses.copy()
    responses[:, 4] = np.where(np.isnan(responses[:, 4]), np.nan, 1.0)
    ours = irtbench.fit(responses, "mml-em", device="cpu", model="2pl")
    theirs = irtbench.fit(responses, "irtorch-mml", model="2pl") if MML.available() else None
    return data, responses, ours, theirs


@needs_irtorch
def test_irtorch_mml_lands_near_the_marginal_ml_estimate(lsat7_like):
    """Its grid is 15 points on [-3, 3] and its stopping rule stops early (module docstring),
    so its items are near, not at, mml-em's: with 600 students an item's SE is about 0.1-0.2,
    and the two agree well inside it (correlation > 0.95, difficulties within 0.3 where a > 0.5);
    its ML skills track the truth as mml-em's EAP skills do; the question everybody got right
    is left out at -inf (NaN slope)."""
    data, responses, ours, theirs = lsat7_like
    kept = np.delete(np.arange(12), 4)
    assert theirs.difficulty[4] == -np.inf and np.isnan(theirs.discrimination[4])
    assert np.corrcoef(theirs.difficulty[kept], ours.difficulty[kept])[0, 1] > 0.95
    assert np.corrcoef(theirs.discrimination[kept], ours.discrimination[kept])[0, 1] > 0.95
    steep = kept[ours.discrimination[kept] > 0.5]
    assert np.max(np.abs(theirs.difficulty[steep] - ours.difficulty[steep])) < 0.3
    students = ~irtbench.models.find_extremes(responses).students  # finite ML skills

    def tracking(fit: irtbench.Fit) -> float:
        return float(np.corrcoef(fit.skill[students], data.skill[students])[0, 1])

    assert tracking(theirs) > tracking(ours) - 0.05  # 11 items: about 0.8 for either


@needs_irtorch
def test_irtorch_mml_reports_its_stopping_rule_clock_and_skill_ses(lsat7_like):
    """ML skills with irtorch's SEs, inf for the students with every answer right or wrong;
    no item SEs; its rule stopped it before its cap; the clock's parts add up."""
    data, responses, ours, theirs = lsat7_like
    students = irtbench.models.find_extremes(responses).students
    assert students.any()
    assert np.isinf(theirs.skill_se[students]).all()
    assert np.all(np.isfinite(theirs.skill_se[~students]) & (theirs.skill_se[~students] > 0))
    assert theirs.difficulty_se is None and theirs.discrimination_se is None
    d = theirs.diagnostics
    assert d["stopped_by_rule"] is True and theirs.n_iter < 1000
    assert theirs.losses.shape == (theirs.n_iter,) and theirs.losses.min() < theirs.losses[0]
    assert d["irtorch_version"] == "0.5.6" and d["irtorch_torch_version"].startswith("2.13")
    parts = [d[f"irtorch_{part}_seconds"] for part in ("startup", "fit", "score")]
    assert min(parts) > 0 and sum(parts) <= d["irtorch_process_seconds"] <= theirs.seconds


def children() -> set[int]:
    """This process's live child processes (Linux)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == os.getpid() and fields[0] not in ("Z", "X"):
                found.add(int(entry.name))
    return found


@needs_irtorch
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_fit_past_the_time_limit_is_stopped_and_leaves_no_child():
    """The harness's time limit (SIGALRM) interrupts the wait for the child, which is killed:
    a timeout, not a hang, and nothing left running."""
    data = irtbench.simulate(300, 10, seed=0, model="2pl")
    before = children()
    with pytest.raises(FitTimeout), time_limit(1.0):
        irtbench.fit(data.responses, "irtorch-vae", model="2pl", max_epochs=100000)
    assert children() <= before

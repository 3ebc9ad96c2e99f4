"""The ``theta-irt`` peer: theta's JAX MML-EM, run in a child interpreter because importing theta
switches JAX to float64 for its whole process. The tests that fit are skipped, with the reason,
where theta is not installed (``pip install 'irtbench[theta]'``); the plumbing's run everywhere.
A fit takes a few seconds (the child's start, JAX's import, theta's JIT compilation)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import irtbench
from irtbench.csvio import load_responses
from irtbench.estimators import theta_irt
from irtbench.estimators.base import BackendNotInstalled

ThetaIrt = irtbench.get_estimator("theta-irt")
needs_theta = pytest.mark.skipif(
    not ThetaIrt.available(),
    reason=f"theta is not installed ({', '.join(ThetaIrt.missing_requirements())}); install "
           f"it with: {ThetaIrt.install_command()}")
LSAT7 = Path(__file__).parents[1] / "data" / "lsat7.csv"


@pytest.fixture(scope="module")
def lsat7() -> np.ndarray:
    return load_responses(LSAT7).responses


@needs_theta
@pytest.mark.slow
def test_theta_2pl_is_the_marginal_ml_of_mml_em_and_leaves_jax_alone(lsat7):
    """theta's 2PL under N(0, 1) is mml-em's model: LSAT7's estimates agree to theta's tolerance
    and the marginal log-likelihood is mirt's -2658.805; this process's JAX stays float32 and
    never imports theta."""
    fit = irtbench.fit(lsat7, "theta-irt", model="2pl", item_se=False)
    ours = irtbench.fit(lsat7, "mml-em", model="2pl")
    assert fit.model == "2pl" and fit.diagnostics["converged"]
    assert np.abs(fit.difficulty - ours.difficulty).max() < 5e-3
    assert np.abs(fit.discrimination - ours.discrimination).max() < 5e-3
    assert fit.diagnostics["log_likelihood"] == pytest.approx(-2658.805, abs=0.01)
    assert np.corrcoef(fit.skill, ours.skill)[0, 1] > 0.999 and np.all(fit.skill_se > 0)
    assert fit.difficulty_se is None  # item_se=False
    parts = [fit.diagnostics[f"theta_{p}_seconds"] for p in ("startup", "fit", "score")]
    assert min(parts) > 0 and sum(parts) <= fit.diagnostics["theta_process_seconds"] <= fit.seconds
    assert "theta" not in sys.modules
    import jax.numpy as jnp

    assert jnp.zeros(1).dtype == jnp.float32


@needs_theta
@pytest.mark.slow
def test_theta_1pl_maps_onto_the_rasch_model(lsat7):
    """theta's 1PL (one slope a, N(0, 1) skills) is the Rasch model with skill SD a:
    difficulties a b and sigma a match mml-em's Rasch fit."""
    fit = irtbench.fit(lsat7, "theta-irt", model="rasch", item_se=False)
    ours = irtbench.fit(lsat7, "mml-em", model="rasch")
    assert fit.model == "rasch" and fit.discrimination is None
    assert np.abs(fit.difficulty - ours.difficulty).max() < 5e-3
    assert fit.diagnostics["sigma"] == pytest.approx(ours.diagnostics["sigma"], abs=5e-3)


def test_the_3pl_takes_the_suites_floor_prior():
    """BILOG-MG's Beta(20 m + 1, 20 (1 - m) + 1) = Beta(6, 16) by default, as mml-em's 3PL
    (theta's own default is Beta(2, 8)); weight 0 is no prior; no prior on a or b unless
    asked; item SEs by default only for short tests."""
    responses = np.zeros((4, 3))
    estimator = ThetaIrt(model="3pl")
    payload = estimator.payload(responses, dict(estimator.resolved_options()))
    assert (payload["c_a"], payload["c_b"]) == (6.0, 16.0) and payload["model"] == "3PL"
    assert np.isnan(payload["la_sd"]) and np.isnan(payload["beta_sd"]) and payload["item_se"]
    flat = ThetaIrt(model="3pl", prior_guessing_weight=0)
    payload = flat.payload(np.zeros((4, 300)), dict(flat.resolved_options()))
    assert np.isnan(payload["c_a"]) and not payload["item_se"]
    with pytest.raises(ValueError, match="prior_log_a_sd belongs to the 2pl"):
        ThetaIrt(model="rasch", prior_log_a_sd=0.5).resolved_options()


def test_the_runner_imports_nothing_of_irtbench():
    tree = ast.parse(theta_irt.RUNNER.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in modules if m.split(".")[0] == "irtbench"}
    assert {"theta", "numpy"} <= {m.split(".")[0] for m in modules}


def test_an_absent_interpreter_makes_theta_unavailable(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "python"
    monkeypatch.setenv(theta_irt.PYTHON_VARIABLE, str(missing))
    assert not ThetaIrt.available()
    assert str(missing) in ThetaIrt.missing_requirements()[0]
    with pytest.raises(BackendNotInstalled, match=r"pip install 'irtbench\[theta\]'"):
        irtbench.fit([[0, 1], [1, 0], [1, 1]], "theta-irt", model="2pl")

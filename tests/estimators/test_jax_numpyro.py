"""Checks specific to the JAX and NumPyro estimators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import irtbench
from irtbench.estimators import BackendNotInstalled
from irtbench.estimators.jax_adam import JaxAdam

pytest.importorskip("jax", reason="the JAX backend is not installed (pip install 'irtbench[jax]')")
pytest.importorskip("numpyro", reason="NumPyro is not installed (pip install 'irtbench[numpyro]')")


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_jax_adam_agrees_with_torch_adam(missing):
    data = irtbench.simulate(200, 100, seed=0, missing=missing)
    torch_fit = irtbench.fit(data.responses, estimator="torch-adam", device="cpu")
    jax_fit = irtbench.fit(data.responses, estimator="jax-adam", device="cpu")
    assert np.max(np.abs(torch_fit.skill - jax_fit.skill)) < 1e-3
    assert np.max(np.abs(torch_fit.difficulty - jax_fit.difficulty)) < 1e-3
    np.testing.assert_allclose(jax_fit.losses, torch_fit.losses, rtol=1e-4)


def test_jax_adam_keeps_compilation_out_of_the_timed_run():
    data = irtbench.simulate(100, 20, seed=1)
    fit = irtbench.fit(data.responses, estimator="jax-adam", device="cpu", epochs=3000)
    assert fit.compile_seconds > 0
    assert fit.n_iter == 3000 and fit.losses.shape == (3000,)


def test_missing_backend_names_the_extra(monkeypatch):
    monkeypatch.setattr(JaxAdam, "requirements", ("jax_is_not_here",))
    assert "jax-adam" not in irtbench.estimators(available_only=True)
    assert "jax-adam" in irtbench.estimators()
    with pytest.raises(BackendNotInstalled, match=r"pip install 'irtbench\[jax\]'"):
        irtbench.fit([[0, 1], [1, 0]], estimator="jax-adam")


def test_package_imports_and_torch_fits_without_jax_or_numpyro():
    code = (
        "import sys; sys.modules.update(jax=None, jaxlib=None, optax=None, numpyro=None)\n"
        "import irtbench\n"
        "print(sorted(irtbench.estimators(available_only=True)))\n"
        "fit = irtbench.fit([[0, 1], [1, 0], [1, 1]], 'torch-adam', device='cpu', epochs=3)\n"
        "try:\n"
        "    irtbench.fit([[0, 1], [1, 0]], 'numpyro-vi')\n"
        "except irtbench.BackendNotInstalled as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    available = set(eval(done.stdout.splitlines()[0]))  # noqa: S307 (a printed list of names)
    assert {"cml", "jml-newton", "mml-em", "torch-adam"} <= available
    assert not available & {"jax-adam", "jax-adam-sharded", "numpyro-map", "numpyro-vi",
                            "numpyro-nuts"}
    assert "pip install 'irtbench[numpyro]'" in done.stdout


def test_marginal_skill_scale_recovers_a_normal_population():
    """Given the true difficulties, the marginal-ML sigma of N(0, 1.5^2) skills from 2000
    students x 30 questions has a standard error of about 0.035: allow 3.3 of them."""
    from irtbench.estimators.numpyro_map import marginal_skill_scale

    data = irtbench.simulate(2000, 30, seed=2, skill_distribution="normal", skill_scale=1.5)
    assert abs(marginal_skill_scale(data.responses, data.difficulty) - 1.5) < 0.12


def test_numpyro_map_converges_and_avoids_the_collapse_of_sigma():
    data = irtbench.simulate(500, 20, seed=3)
    fit = irtbench.fit(data.responses, estimator="numpyro-map", device="cpu")
    assert fit.diagnostics["converged"] is True
    assert 1.4 < fit.diagnostics["sigma"] < 2.2  # the truth: sd of Uniform(-3, 3) = 1.73
    assert fit.n_iter < fit.options["max_steps"] * 2
    fixed = irtbench.fit(data.responses, estimator="numpyro-map", device="cpu", skill_scale=1.0)
    assert fixed.diagnostics["sigma"] == 1.0
    assert np.std(fixed.skill) < np.std(fit.skill)  # the fixed unit prior shrinks


def test_numpyro_map_stops_at_max_steps_when_not_converged():
    data = irtbench.simulate(100, 20, seed=4)
    fit = irtbench.fit(data.responses, estimator="numpyro-map", device="cpu", max_steps=100,
                       skill_scale=2.0)
    assert fit.diagnostics["converged"] is False and fit.n_iter == 100


def test_numpyro_nuts_reports_numpyros_diagnostics():
    data = irtbench.simulate(100, 20, seed=5)
    fit = irtbench.fit(data.responses, estimator="numpyro-nuts", device="cpu", num_warmup=150,
                       num_samples=150, num_chains=2)
    diag = fit.diagnostics
    assert fit.n_iter == 300  # 2 chains x 150 draws
    assert 0.99 < diag["max_rhat"] < 1.1
    assert 10 < diag["min_ess"] <= 300 * 2
    assert isinstance(diag["divergences"], int) and diag["divergences"] >= 0
    assert diag["ess_per_second"] == pytest.approx(diag["min_ess"] / fit.compute_seconds, rel=1e-12)


def test_numpyro_nuts_skips_large_matrices():
    nuts = irtbench.get_estimator("numpyro-nuts")()
    skip, why = nuts.skip(10_000, 1000, "cpu")
    assert skip and "max_responses" in why
    assert nuts.skip(100, 20, "cpu") == (False, "")


def test_numpyro_vi_learns_the_skill_scale():
    data = irtbench.simulate(500, 40, seed=6)
    fit = irtbench.fit(data.responses, estimator="numpyro-vi", device="cpu")
    assert 1.4 < fit.diagnostics["sigma"] < 2.1
    assert np.all(fit.skill_se < 1.0) and np.all(fit.difficulty_se < 0.3)


@pytest.mark.parametrize("sparse", [False, True])
def test_jax_adams_closed_form_is_autodiff_of_the_reference_loss(sparse):
    """jax_value_and_grad (what the compiled loop runs) against jax.value_and_grad of
    reference_loss, dense int8 codes with missing responses and sparse triples."""
    import jax

    from irtbench.estimators.jax_adam import host_data, reference_loss
    from irtbench.kernels.closed_form import jax_value_and_grad
    from irtbench.responses import to_sparse

    data = irtbench.simulate(60, 14, seed=6, missing=0.2)
    responses = to_sparse(data.responses) if sparse else data.responses
    n = int(np.isfinite(data.responses).sum())
    rng = np.random.default_rng(1)
    params = {"skill": rng.normal(size=60).astype(np.float32),
              "difficulty": rng.normal(size=14).astype(np.float32)}
    args = host_data(responses)
    expected = jax.value_and_grad(reference_loss)(params, *args, n_observed=n, alpha=0.3)
    loss, grads = jax_value_and_grad(params, *args, n_observed=n, alpha=0.3)
    assert float(loss) == pytest.approx(float(expected[0]), rel=1e-5)
    for name in ("skill", "difficulty"):
        np.testing.assert_allclose(grads[name], expected[1][name], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("model", ["rasch", "2pl", "m2pl"])
@pytest.mark.parametrize("sparse", [False, True])
def test_jax_adams_logit_path_is_autodiff_of_the_models_objective(model, sparse):
    """jax_logit_value_and_grad (the 2PL's and M2PL's compiled loop) against
    jax.value_and_grad of the model's whole objective (objective_value: priors and gauge
    penalty included), dense int8 codes with missing responses and sparse triples."""
    import jax

    from irtbench.estimators.jax_adam import host_data, objective_value
    from irtbench.kernels.closed_form import jax_logit_value_and_grad
    from irtbench.models import get_model
    from irtbench.models.fitting import Objective
    from irtbench.responses import to_sparse

    data = irtbench.simulate(60, 14, seed=6, missing=0.2, model=model)
    responses = to_sparse(data.responses) if sparse else data.responses
    n = int(np.isfinite(data.responses).sum())
    options = {**irtbench.get_estimator("jax-adam").defaults, "model": model, "alpha": 0.3,
               "prior_log_a_sd": 0.7 if model == "2pl" else None}
    objective = Objective(get_model(model), options, n)
    rng = np.random.default_rng(1)
    params = {name: (value + 0.3 * rng.standard_normal(value.shape)).astype(np.float32)
              for name, value in objective.start(data.responses.shape).items()}
    args = host_data(responses)
    expected = jax.value_and_grad(lambda p: objective_value(objective, p, *args))(params)
    loss, grads = jax_logit_value_and_grad(objective)(params, *args)
    assert float(loss) == pytest.approx(float(expected[0]), rel=1e-5)
    for name in params:
        np.testing.assert_allclose(grads[name], expected[1][name], rtol=1e-4, atol=1e-6,
                                   err_msg=name)


def test_jax_and_numpyro_doctests_skip_with_the_reason_when_jax_is_missing(tmp_path):
    """The doctests of jax-adam and numpyro-map run JAX: without it they are skipped, saying
    what to install, instead of failing."""
    root = Path(__file__).resolve().parents[2]
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules.update(jax=None, jaxlib=None, optax=None, "
                       "numpyro=None)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "irtbench/estimators/jax_adam.py", "irtbench/estimators/numpyro_map.py"],
        cwd=root, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 skipped" in done.stdout and "pip install 'irtbench[jax]'" in done.stdout

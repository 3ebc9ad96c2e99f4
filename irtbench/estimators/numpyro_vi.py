r"""``numpyro-vi``: mean-field variational inference with NumPyro SVI and an ``AutoNormal`` guide.

Model: :func:`irtbench.estimators._numpyro.rasch_model`, hierarchical —
:math:`\sigma \sim \mathrm{HalfNormal}(5)`, :math:`\theta_i \sim N(0, \sigma^2)`,
:math:`b_j \sim N(0, 10^2)` — so the skills' scale is learned with everything else instead of
being fixed (a fixed :math:`\sigma = 1` shrinks skills spread over +/-3 logits and biases the
difficulties).

The guide is a product of independent normals, one per skill, difficulty and (log) sigma,
fitted by maximising the ELBO with Adam (``lr``, halved every ``num_steps / 4`` steps, so the
last steps average out the gradient noise) for ``num_steps`` steps in jitted chunks. Estimates
are the guide's means; ``skill_se``/``difficulty_se`` its standard deviations (mean-field:
posterior correlations are ignored, which makes them slightly too small).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from irtbench.estimators import _numpyro
from irtbench.estimators.base import RunResult, register

CHUNK_STEPS = 100


@register
class NumpyroVI(_numpyro.NumpyroEstimator):
    """Mean-field variational Bayes (``AutoNormal``) with a learned skill scale.

    Options:
        num_steps: SVI steps (4000, rounded up to a multiple of 100).
        lr: initial Adam learning rate (0.05).
        difficulty_scale: prior SD of the difficulties (10).
        sigma_prior_scale: scale of the HalfNormal prior on the skills' SD (5).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``/``"gpu"``.
        seed: PRNG key of the ELBO's Monte Carlo draws and the initialisation.
    """

    name = "numpyro-vi"
    summary = "variational Bayes: SVI + AutoNormal (mean field), hierarchical skill scale"
    defaults = {
        "num_steps": 4000,
        "lr": 0.05,
        "difficulty_scale": _numpyro.DIFFICULTY_SCALE,
        "sigma_prior_scale": _numpyro.SIGMA_PRIOR_SCALE,
        "device": "auto",
        "seed": 0,
    }

    def prepare(self, responses: np.ndarray, options: dict[str, Any]) -> _numpyro.SviProblem:
        import optax
        from numpyro.infer.autoguide import AutoNormal

        problem = _numpyro.prepare_svi(responses, options)
        steps = -(-options["num_steps"] // CHUNK_STEPS) * CHUNK_STEPS
        schedule = optax.exponential_decay(options["lr"], transition_steps=max(steps // 4, 1),
                                           decay_rate=0.5)
        problem.svi = _numpyro.build_svi(
            AutoNormal, optax.adam(schedule),
            {"difficulty_scale": float(options["difficulty_scale"]),
             "sigma_prior_scale": float(options["sigma_prior_scale"])},
        )
        problem.chunk = _numpyro.make_chunk(problem.svi, CHUNK_STEPS)
        problem.extra["steps"] = steps
        return problem

    def compile(self, problem: _numpyro.SviProblem) -> float:
        return _numpyro.compile_chunk(problem, None)

    def run(self, problem: _numpyro.SviProblem) -> RunResult:
        state = problem.extra.pop("init_state", None)
        if state is None:
            state = _numpyro.initial_state(problem, None)
        trace: list[tuple[int, Any, Any]] = []
        state, losses, _ = _numpyro.run_svi(problem, state, None, max_steps=problem.extra["steps"],
                                            chunk_steps=CHUNK_STEPS, trace=trace)
        params = problem.svi.get_params(state)
        sigma = problem.svi.guide.median(params)["sigma"]
        return RunResult(
            params["skill_auto_loc"], params["difficulty_auto_loc"], losses, n_iter=len(losses),
            skill_se=params["skill_auto_scale"], difficulty_se=params["difficulty_auto_scale"],
            diagnostics={"sigma": float(sigma)}, trace=trace,
        )

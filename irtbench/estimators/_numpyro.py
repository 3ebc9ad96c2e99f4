r"""The Rasch model as a NumPyro model, and the SVI loop shared by ``numpyro-map`` and ``numpyro-vi``.

.. math::
    \sigma \sim \mathrm{HalfNormal}(s_\sigma) \text{ (hierarchical) or fixed},\quad
    \theta_i \sim N(0, \sigma^2),\quad b_j \sim N(0, s_b^2),\quad
    y_{ij} \sim \mathrm{Bernoulli}(\sigma(\theta_i - b_j))\ \text{for observed } (i, j)

The skills' prior mean of 0 fixes the origin of the scale; estimates are compared after
alignment anyway. The likelihood enters as one ``numpyro.factor`` over the observed responses
(masked dense matrix), the same sum as :func:`irtbench.model.log_likelihood`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irtbench.estimators import _jax

#: defaults shared by the Bayesian estimators (documented in each estimator's docstring)
DIFFICULTY_SCALE = 10.0
SIGMA_PRIOR_SCALE = 5.0


def rasch_model(y: Any, weight: Any, skill_scale: Any, difficulty_scale: float,
                sigma_prior_scale: float) -> None:
    """NumPyro model; ``skill_scale=None`` makes the skills' scale a parameter ``sigma``."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    n_students, n_questions = y.shape
    if skill_scale is None:
        skill_scale = numpyro.sample("sigma", dist.HalfNormal(sigma_prior_scale))
    with numpyro.plate("students", n_students):
        skill = numpyro.sample("skill", dist.Normal(0.0, skill_scale))
    with numpyro.plate("questions", n_questions):
        difficulty = numpyro.sample("difficulty", dist.Normal(0.0, difficulty_scale))
    logits = skill[:, None] - difficulty[None, :]
    terms = y * logits - jax.nn.softplus(logits)
    numpyro.factor("responses", jnp.sum(terms) if weight is None else jnp.sum(weight * terms))


class NumpyroEstimator(_jax.JaxEstimator):
    """Base of the NumPyro estimators (backend, requirements, extra, devices)."""

    backend = "numpyro"
    requirements = ("jax", "optax", "numpyro")
    extra = "numpyro"


@dataclass
class SviProblem:
    """What the SVI estimators keep between prepare, compile and run."""

    y: Any
    weight: Any
    device: Any
    options: dict[str, Any]
    svi: Any = None
    chunk: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_svi(guide_class: Any, optimizer: Any, model_kwargs: dict[str, Any]) -> Any:
    """An ``SVI`` object for :func:`rasch_model` with the given guide and optax optimiser."""
    from functools import partial

    from numpyro.infer import SVI, Trace_ELBO

    model = partial(rasch_model, **model_kwargs)
    return SVI(model, guide_class(model), optimizer, Trace_ELBO())


def make_chunk(svi: Any, steps: int) -> Any:
    """A jitted ``chunk(state, y, weight, skill_scale) -> (state, losses)`` of ``steps`` updates."""
    import jax

    def chunk(state: Any, y: Any, weight: Any, skill_scale: Any) -> Any:
        def step(state: Any, _: Any) -> Any:
            return svi.update(state, y, weight, skill_scale)

        return jax.lax.scan(step, state, None, length=steps)

    return jax.jit(chunk)


def initial_state(problem: SviProblem, skill_scale: Any) -> Any:
    """SVI's initial state for ``problem`` (seeded by its ``seed`` option)."""
    import jax

    key = jax.random.PRNGKey(problem.options["seed"])
    return problem.svi.init(key, problem.y, problem.weight, skill_scale)


def compile_chunk(problem: SviProblem, skill_scale: Any) -> float:
    """Compile ``problem.chunk`` ahead of time for the data's shapes; returns its seconds.

    SVI's initialisation (tracing the model and guide) is counted here too."""
    start = time.perf_counter()
    problem.extra["init_state"] = state = initial_state(problem, skill_scale)
    problem.chunk = problem.chunk.lower(state, problem.y, problem.weight, skill_scale).compile()
    return time.perf_counter() - start


def run_svi(
    problem: SviProblem,
    state: Any,
    skill_scale: Any,
    *,
    max_steps: int,
    chunk_steps: int,
    converged: Callable[[Any], bool] | None = None,
    trace: list[tuple[int, Any, Any]] | None = None,
) -> tuple[Any, np.ndarray, bool]:
    """Run SVI chunk by chunk from ``state`` until ``converged(state)`` or ``max_steps``.

    After each chunk the guide's skill and difficulty locations are appended to ``trace``
    (device arrays: no transfer inside the timed loop), numbered on from its last entry.

    Returns:
        ``(state, losses, converged)``.
    """
    import jax

    losses, done, steps = [], False, 0
    offset = trace[-1][0] if trace else 0
    while steps < max_steps and not done:
        state, chunk_losses = problem.chunk(state, problem.y, problem.weight, skill_scale)
        losses.append(chunk_losses)
        steps += chunk_steps
        if trace is not None:
            params = problem.svi.get_params(state)
            trace.append((offset + steps, params["skill_auto_loc"], params["difficulty_auto_loc"]))
        done = converged is not None and converged(state)
    jax.block_until_ready(state)
    return state, np.concatenate([np.asarray(x) for x in losses]), done


def prepare_svi(responses: np.ndarray, options: dict[str, Any]) -> SviProblem:
    device = _jax.resolve_device(options["device"])
    y, weight, _ = _jax.responses_to_device(responses, device)
    return SviProblem(y, weight, device, options)

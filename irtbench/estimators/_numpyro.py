r"""The Rasch model (and the 2PL) as a NumPyro model, and the SVI loop shared by ``numpyro-map``
and ``numpyro-vi``.

.. math::
    \sigma \sim \mathrm{HalfNormal}(s_\sigma) \text{ (hierarchical) or fixed},\quad
    \theta_i \sim N(0, \sigma^2),\quad b_j \sim N(0, s_b^2),\quad
    y_{ij} \sim \mathrm{Bernoulli}(\sigma(\theta_i - b_j))\ \text{for observed } (i, j)

The skills' prior mean of 0 fixes the origin of the scale; estimates are compared after
alignment anyway. The likelihood enters as one ``numpyro.factor`` over the observed responses
(masked dense matrix), the same sum as :func:`irtbench.models.log_likelihood`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from irtbench.estimators import _jax
from irtbench.estimators.base import Snapshot, host
from irtbench.responses import split_observed

if TYPE_CHECKING:
    import jax
    import optax
    from numpyro.infer import SVI
    from numpyro.infer.svi import SVIState

from irtbench.models.threepl import floor_prior_of  # noqa: E402

#: defaults shared by the Bayesian estimators (documented in each estimator's docstring)
DIFFICULTY_SCALE = 10.0
SIGMA_PRIOR_SCALE = 5.0
#: the 2PL's prior SD of log a (discriminations within a factor 2.7 of 1 a priori, one SD)
LOG_DISCRIMINATION_SCALE = 1.0


def model_options(options: dict, **rasch: float) -> dict[str, object]:
    """The model's keyword arguments for ``options``: ``rasch`` plus, for the 2PL and 3PL, the
    prior SD of log a, and for the 3PL the floors' Beta prior (the options
    ``prior_guessing_mean`` and ``prior_guessing_weight``, as ``mml-em``'s)."""
    if options["model"] == "rasch":
        return rasch
    more: dict[str, object] = {"log_discrimination_scale": LOG_DISCRIMINATION_SCALE}
    if options["model"] == "3pl":
        more["floor_prior"] = floor_prior_of(options)
    return {**rasch, **more}


def skill_scale_of(options: dict) -> float | None:
    """The skills' fixed scale passed to the model: None (learned, hierarchical) for the Rasch
    model, 1 for the 2PL (whose scale N(0, 1) fixes)."""
    return None if options["model"] == "rasch" else np.float32(1.0)


def rasch_model(y: jax.Array, weight: jax.Array | None, skill_scale: float | None,
                difficulty_scale: float, sigma_prior_scale: float,
                log_discrimination_scale: float | None = None,
                floor_prior: tuple[float, float] | None = None) -> None:
    r"""NumPyro model; ``skill_scale=None`` makes the skills' scale a parameter ``sigma``.
    With ``log_discrimination_scale`` it is the 2PL: :math:`\log a_j \sim N(0, s_a^2)` (so
    :math:`a_j > 0`: a downward item's slope goes towards 0, see :mod:`irtbench.models.twopl`) and
    logits :math:`a_j(\theta_i - b_j)` (call it with ``skill_scale=1``: the skills' N(0, 1)
    then fixes the 2PL's scale); with ``floor_prior`` too, the 3PL: floors
    :math:`c_j \sim \mathrm{Beta}(\alpha, \beta)` and
    :math:`p = c_j + (1 - c_j)\sigma(\text{logit})`."""
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
    if log_discrimination_scale is not None:
        with numpyro.plate("questions", n_questions):
            log_discrimination = numpyro.sample(
                "log_discrimination", dist.Normal(0.0, log_discrimination_scale))
        logits = logits * jnp.exp(log_discrimination)[None, :]
    if floor_prior is None:
        terms = y * logits - jax.nn.softplus(logits)
    else:
        with numpyro.plate("questions", n_questions):
            floor = numpyro.sample("guessing", dist.Beta(*floor_prior))[None, :]
        log_not_floor = jnp.log1p(-floor)
        log_p = jnp.logaddexp(jnp.log(floor), log_not_floor + jax.nn.log_sigmoid(logits))
        terms = y * log_p + (1 - y) * (log_not_floor + jax.nn.log_sigmoid(-logits))
    numpyro.factor("responses", jnp.sum(terms) if weight is None else jnp.sum(weight * terms))


class NumpyroEstimator(_jax.JaxEstimator):
    """Base of the NumPyro estimators (backend, requirements, extra, devices)."""

    backend = "numpyro"
    requirements = ("jax", "optax", "numpyro")
    extra = "numpyro"


@dataclass
class SviState(_jax.JaxState):
    """The JAX state plus the SVI object, its jitted chunk of updates (compiled by
    :func:`compile_chunk`) and SVI's initial state."""

    svi: SVI | None = None
    chunk: Callable[..., tuple[SVIState, jax.Array]] | None = None
    initial: SVIState | None = None
    steps: int = 0


def build_svi(guide_class: type, optimizer: optax.GradientTransformation,
              model_kwargs: dict[str, float]) -> SVI:
    """An ``SVI`` object for :func:`rasch_model` with the given guide and optax optimiser."""
    from numpyro.infer import SVI, Trace_ELBO

    model = partial(rasch_model, **model_kwargs)
    return SVI(model, guide_class(model), optimizer, Trace_ELBO())


def make_chunk(svi: SVI, steps: int) -> Callable[..., tuple[SVIState, jax.Array]]:
    """A jitted ``chunk(state, y, weight, skill_scale) -> (state, losses)`` of ``steps`` updates."""
    import jax

    def chunk(state: SVIState, y: jax.Array, weight: jax.Array | None,
              skill_scale: jax.Array | None) -> tuple[SVIState, jax.Array]:
        def step(state: SVIState, _: None) -> tuple[SVIState, jax.Array]:
            return svi.update(state, y, weight, skill_scale)

        return jax.lax.scan(step, state, None, length=steps)

    return jax.jit(chunk)


def placeholders(state: _jax.JaxState) -> tuple[jax.Array, jax.Array | None]:
    """Zero arrays of the shapes of ``(y, weight)`` on the device, for compiling ahead: the
    compiled programs and SVI's initial state (drawn from the priors) depend on the shapes
    alone, not on the answers."""
    import jax.numpy as jnp

    y = jnp.zeros(state.responses.shape, jnp.float32, device=state.jax_device)
    missing = state.n_observed < state.responses.size
    return y, (jnp.ones_like(y) if missing else None)


def compile_chunk(state: SviState, skill_scale: float | None) -> None:
    """Compile ``state.chunk`` ahead of time for the data's shapes and build SVI's initial
    state (seeded by the ``seed`` option), both from :func:`placeholders`."""
    import jax

    y, weight = placeholders(state)
    state.initial = state.svi.init(jax.random.PRNGKey(int(state.options["seed"])), y, weight,
                                   skill_scale)
    state.chunk = state.chunk.lower(state.initial, y, weight, skill_scale).compile()


def place(state: _jax.JaxState) -> tuple[jax.Array, jax.Array | None]:
    """The responses on the device as ``(y, weight)``, transfers finished."""
    import jax

    y, weight, _ = split_observed(state.responses)
    placed = [None if a is None else jax.device_put(a, state.jax_device) for a in (y, weight)]
    return tuple(jax.block_until_ready(placed))


def run_svi(
    state: SviState,
    svi_state: SVIState,
    data: tuple[jax.Array, jax.Array | None],
    skill_scale: float | None,
    *,
    max_steps: int,
    chunk_steps: int,
    converged: Callable[[SVIState], bool] | None = None,
    trace: list[Snapshot] | None = None,
) -> tuple[SVIState, np.ndarray, bool]:
    """Run SVI chunk by chunk from ``svi_state`` until ``converged(state)`` or ``max_steps``.

    After each chunk the guide's skill and difficulty locations are appended to ``trace``
    (device arrays: no transfer inside the timed loop), numbered on from its last entry.

    Returns:
        ``(state, losses, converged)``.
    """
    import jax

    losses, done, steps = [], False, 0
    offset = trace[-1].iteration if trace else 0
    while steps < max_steps and not done:
        svi_state, chunk_losses = state.chunk(svi_state, *data, skill_scale)
        losses.append(chunk_losses)
        steps += chunk_steps
        if trace is not None:
            params = state.svi.get_params(svi_state)
            skill, difficulty = params["skill_auto_loc"], params["difficulty_auto_loc"]
            trace.append(Snapshot(offset + steps,
                                  lambda s=skill, d=difficulty: (host(s), host(d))))
        done = converged is not None and converged(svi_state)
    jax.block_until_ready(svi_state)
    return svi_state, np.concatenate([np.asarray(x) for x in losses]), done

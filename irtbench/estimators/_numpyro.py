r"""Every model of :mod:`irtbench.models` as a NumPyro model, from the model's own description
(:meth:`~irtbench.models.base.Model.fit_parameters`: each parameter sampled from its prior in
the space the prior is a density over), and the SVI loop shared by ``numpyro-map`` and
``numpyro-vi``.

.. math::
    \sigma \sim \mathrm{HalfNormal}(s_\sigma) \text{ (where the model learns the skills'
    scale: Rasch) or } \sigma = 1,\quad
    \theta_i \sim N(0, \sigma^2 I_D),\quad \text{item parameters} \sim \text{their priors},
    \quad y_{ij} \sim \mathrm{Bernoulli}(P(\theta_i, \text{item}_j))\ \text{observed}

The skills' prior mean of 0 fixes the origin of the scale; estimates are compared after
alignment anyway. The likelihood enters as one ``numpyro.factor`` over the observed responses
(masked dense matrix), the model's :meth:`~irtbench.models.base.Model.log_prob` of its logits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from irtbench.estimators import _jax
from irtbench.estimators.base import Snapshot, host
from irtbench.models.base import Model
from irtbench.models.fitting import Parameter, ops_for
from irtbench.responses import split_observed

if TYPE_CHECKING:
    import jax
    import optax
    from numpyro.infer import SVI
    from numpyro.infer.svi import SVIState


def irt_model_arguments(model: Model, options: Mapping[str, Any]) -> dict[str, object]:
    """The keyword arguments of :func:`irt_model` for ``model`` and a fit's ``options``: the
    model, its parameters with the priors the options set, its skills' dimensions and the scale
    of the HalfNormal prior on the skills' SD. Every parameter needs a prior here."""
    parameters = model.fit_parameters(options)
    unset = [p.name for p in parameters if p.prior is None]
    if unset:
        raise ValueError(f"the {model.name} model's {', '.join(unset)} need(s) a prior in a "
                         "Bayesian fit; set its option")
    return {"model": model, "parameters": parameters, "dims": model.skill_dims(options),
            "sigma_prior_scale": float(options.get("sigma_prior_scale", 1.0))}


def skill_scale_of(model: Model) -> float | None:
    """The skills' fixed scale passed to the model: None (learned, hierarchical) where the
    model learns it (the Rasch model), else 1 (the scale a model with slopes fixes)."""
    return None if model.learns_skill_scale else np.float32(1.0)


def irt_model(y: jax.Array, weight: jax.Array | None, skill_scale: float | None, *,
              model: Model, parameters: tuple[Parameter, ...], dims: int | None,
              sigma_prior_scale: float) -> None:
    r"""NumPyro model of ``model``; ``skill_scale=None`` makes the skills' scale a parameter
    ``sigma``. Each item parameter is sampled under the name of the space its prior is over
    (:attr:`~irtbench.models.fitting.Parameter.site`): a prior on :math:`\log a` samples
    ``log_discrimination`` and transforms it, a Beta prior on the floor samples ``guessing``."""
    import numpyro
    import numpyro.distributions as dist

    n_students, n_questions = y.shape
    if skill_scale is None:
        skill_scale = numpyro.sample("sigma", dist.HalfNormal(sigma_prior_scale))
    event = () if dims is None else (dims,)
    with numpyro.plate("students", n_students):
        skill = numpyro.sample("skill", dist.Normal(0.0, skill_scale).expand(event)
                               .to_event(len(event)))
    ops = ops_for(skill)
    values = {}
    with numpyro.plate("questions", n_questions):
        for p in parameters:
            shape = event if p.per_dimension else ()
            x = numpyro.sample(p.site, p.prior.distribution().expand(shape).to_event(len(shape)))
            values[p.name] = p.from_site(ops, x)
    at = model.at(values, None)
    terms = model.log_prob(ops, model.logits(ops, skill, at, None), y, at)
    numpyro.factor("responses", ops.masked_sum(terms, weight))


def point_values(state: SviState, params: Mapping[str, Any]
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(skill, difficulty, other items)`` at the guide's medians (each site's in its own
    space, mapped to the model's reported items)."""
    median = state.svi.guide.median(params)
    model, parameters = state.model_kwargs["model"], state.model_kwargs["parameters"]
    items = model.report(site_values(parameters, median))
    return host(median["skill"]), items.pop("difficulty"), items


def site_values(parameters: tuple[Parameter, ...], draws: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    """The item parameters' values by name from draws (or points) of their sites."""
    ops = ops_for(np.zeros(1))
    return {p.name: p.from_site(ops, host(draws[p.site])) for p in parameters}


class NumpyroEstimator(_jax.JaxEstimator):
    """Base of the NumPyro estimators (backend, requirements, extra, devices)."""

    backend = "numpyro"
    requirements = ("jax", "optax", "numpyro")
    extra = "numpyro"


@dataclass
class SviState(_jax.JaxState):
    """The JAX state plus the SVI object, its jitted chunk of updates (compiled by
    :func:`compile_chunk`), SVI's initial state and the model's description."""

    model_kwargs: dict[str, Any] | None = None
    svi: SVI | None = None
    chunk: Callable[..., tuple[SVIState, jax.Array]] | None = None
    initial: SVIState | None = None
    steps: int = 0


def build_svi(guide_class: type, optimizer: optax.GradientTransformation,
              model_kwargs: dict[str, object]) -> SVI:
    """An ``SVI`` object for :func:`irt_model` with the given guide and optax optimiser."""
    from numpyro.infer import SVI, Trace_ELBO

    model = partial(irt_model, **model_kwargs)
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
        if trace is not None:  # device arrays now, the guide's medians after the clock
            params = state.svi.get_params(svi_state)
            trace.append(Snapshot(offset + steps, lambda p=params: point_values(state, p)))
        done = converged is not None and converged(svi_state)
    jax.block_until_ready(svi_state)
    return svi_state, np.concatenate([np.asarray(x) for x in losses]), done

r"""``jax-adam``: the reference objective in JAX + optax, the whole training loop compiled once.

Same objective, start and optimiser as ``torch-adam`` (see :mod:`irtbench.estimators.torch_adam`):

.. math::
    L(\theta, b) = \frac{1}{|O|}\sum_{(i,j)\in O}
        \big[\log(1 + e^{x_{ij}}) - y_{ij}x_{ij}\big] + \alpha\,\bar b^{\,2},
    \qquad x_{ij} = \theta_i - b_j

from zero, by ``optax.adam(0.01)`` for 1000 full-batch epochs, float32 parameters, the
responses held as int8 codes (-1 = missing) and decoded inside the compiled loop (one byte per
response per epoch, against five for float32 answers with a float32 mask). The epochs run inside
one ``jax.lax.scan`` under ``jax.jit``; ``compile`` lowers and compiles it ahead of time for the
data's shapes (``Fit.compile_seconds``, from shapes alone: no data moved); ``run`` moves the
data to the device, executes it, blocks until ready, and brings the estimates and their
asymptotic SEs back. Any model's objective is its own
(:class:`~irtbench.models.fitting.Objective`, :func:`objective_value` over dense int8 codes or
the gathered pairs of sparse triples), differentiated by ``jax.value_and_grad`` with no branch
on the model; for the Rasch model, which offers the closed form (``Model.fast_paths``), the loop
runs :func:`~irtbench.kernels.closed_form.jax_value_and_grad`, its value and gradient written out, which a test holds
to autodiff of :func:`reference_loss` (the Rasch model's :func:`objective_value`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import functools
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators import _jax
from irtbench.kernels import closed_form
from irtbench.estimators.base import (
    Option,
    Result,
    Snapshot,
    Stopwatch,
    host,
    register,
)
from irtbench.models import MODELS, get_model
from irtbench.models.fitting import Objective, ops_for
from irtbench.responses import MISSING, Responses, is_sparse, to_compact

if TYPE_CHECKING:
    import jax

#: the data arguments of the compiled loop: ``(answers, student, question)``: int8 codes of a
#: dense matrix (-1 = missing; student and question None), or the float32 answers of sparse
#: triples with their int32 indices
Data = tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def objective_value(objective: Objective, params: dict[str, jax.Array], answers: jax.Array,
                    student: jax.Array | None, question: jax.Array | None) -> jax.Array:
    """The model's mean objective (:class:`~irtbench.models.fitting.Objective`) from a dense
    matrix of int8 codes (``student`` None; decoded inside the compiled loop, so an epoch reads
    one byte per response) or the gathered answers of sparse triples."""
    if student is None:
        return objective.loss(params, (answers == 1).astype(params["skill"].dtype), answers >= 0)
    return objective.loss(params, answers, None, student, question)


def reference_loss(params: dict[str, jax.Array], answers: jax.Array, student: jax.Array | None,
                   question: jax.Array | None, *, n_observed: int, alpha: float) -> jax.Array:
    """The notebook's objective in JAX, mean observed negative log-likelihood +
    alpha * mean(b)^2 (:func:`objective_value` of the Rasch model)."""
    objective = Objective(get_model("rasch"), {"alpha": alpha}, n_observed)
    return objective_value(objective, params, answers, student, question)


def host_data(responses: Responses) -> Data:
    """The arguments of the compiled loop, on the host (int8 codes, or sparse float32 answers
    and int32 indices)."""
    if is_sparse(responses):
        return (responses.response.astype(np.float32), responses.student.astype(np.int32),
                responses.question.astype(np.int32))
    return to_compact(responses), None, None


def data_shapes(responses: Responses) -> list[tuple[tuple[int, ...], str] | None]:
    """Shapes and dtypes of :func:`host_data` without building it (for compiling ahead)."""
    if is_sparse(responses):
        n = responses.n_observed
        return [((n,), "float32"), ((n,), "int32"), ((n,), "int32")]
    return [(tuple(responses.shape), "int8"), None, None]


def snapshot_count(epochs: int, most: int = 20) -> int:
    """The largest divisor of ``epochs`` up to ``most``: the number of equal stretches of epochs
    after which the parameters are kept for the trace."""
    return max(c for c in range(1, most + 1) if epochs % c == 0)


def make_train(epochs: int, lr: float,
               value_and_grad: Callable[..., tuple[jax.Array, dict[str, jax.Array]]],
               start: dict[str, np.ndarray],
               shardings: dict[str, jax.sharding.Sharding] | None = None
               ) -> Callable[..., tuple[dict[str, jax.Array], jax.Array, dict[str, jax.Array]]]:
    """A jitted ``train(*data) -> (params, losses, trace)`` running ``epochs`` Adam steps with
    ``value_and_grad(params, *data) -> (loss, grads)`` from the raw parameters ``start``
    (:meth:`~irtbench.models.fitting.Objective.start`: float32, ``"skill"`` first).

    The epochs run as an outer ``lax.scan`` over ``snapshot_count(epochs)`` stretches of an
    inner ``lax.scan``, so the parameters at the end of each stretch come out as the trace.
    ``shardings`` (``{"skill": ..., "difficulty": ...}``) pins the parameters' layout across
    devices; XLA then shards the computation and inserts the reductions."""
    import jax
    import jax.numpy as jnp
    import optax

    optimizer = optax.adam(lr)
    stretches = snapshot_count(epochs)

    def train(*data: jax.Array) -> tuple[dict[str, jax.Array], jax.Array, dict[str, jax.Array]]:
        params = {name: jnp.asarray(value, jnp.float32) for name, value in start.items()}
        if shardings is not None:
            params = {k: jax.lax.with_sharding_constraint(v, shardings[k]) for k, v in params.items()}

        def epoch(carry, _):  # noqa: ANN001, ANN202 (lax.scan's carry)
            params, state = carry
            loss, grads = value_and_grad(params, *data)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        def stretch(carry, _):  # noqa: ANN001, ANN202
            carry, losses = jax.lax.scan(epoch, carry, None, length=epochs // stretches)
            return carry, (losses, carry[0])

        (params, _), (losses, trace) = jax.lax.scan(
            stretch, (params, optimizer.init(params)), None, length=stretches
        )
        return params, losses.reshape(-1), trace

    return jax.jit(train)


@dataclass
class AdamState(_jax.JaxState):
    """The JAX state plus the jitted training loop and, once compiled, its executable."""

    objective: Objective | None = None
    train: Callable[..., tuple[dict[str, jax.Array], jax.Array, dict[str, jax.Array]]] | None = None
    compiled: Callable[..., tuple[dict[str, jax.Array], jax.Array, dict[str, jax.Array]]] | None = None
    n_students: int = 0
    placement: jax.sharding.Sharding | None = None  # where the data go (rows split if sharded)
    padding: int = 0  # rows of unobserved responses added for an even split across devices


@register
class JaxAdam(_jax.JaxEstimator):
    """Joint maximum likelihood by full-batch Adam in JAX (the reference objective, jitted).

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(200, 20, seed=0)
        >>> fit = irtbench.fit(data.responses, "jax-adam", device="cpu", epochs=100)
        >>> fit.n_iter, fit.losses.shape
        (100, (100,))
    """

    name = "jax-adam"
    colour = 3
    objective = "joint"
    infinite_extremes = True
    models = MODELS  # the generic path fits every model
    default_sweep_models = ("rasch", "2pl")
    summary = "the reference objective in JAX + optax.adam, jit over lax.scan"
    solves_reference_objective = True
    accepts_sparse = True
    warm_up_options = {"epochs": 2}
    spec = option.ADAM  # torch-adam's, declared once

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> AdamState:
        """The model's objective, and the training loop over its autodiff, or over the closed
        form where the model offers one
        (:func:`~irtbench.kernels.closed_form.jax_value_and_grad`: Rasch)."""
        import jax

        base = super().setup(responses, options, n_observed)
        model = self.model
        objective = Objective(model, options, n_observed)
        if "closed" in model.fast_paths:
            closed_form.check(objective)
            step = partial(closed_form.jax_value_and_grad, n_observed=n_observed,
                           alpha=float(options["alpha"]))
        elif "logit" in model.fast_paths:
            closed_form.check_logit(objective)
            step = closed_form.jax_logit_value_and_grad(objective)
        else:
            step = jax.value_and_grad(partial(objective_value, objective))
        train = make_train(int(options["epochs"]), float(options["lr"]), step,
                           objective.start(responses.shape))
        return AdamState(**vars(base), objective=objective, train=train,
                         n_students=responses.shape[0],
                         placement=jax.sharding.SingleDeviceSharding(base.jax_device))

    def compile(self, state: AdamState) -> None:
        """Lower and compile the training loop for the data's shapes (no data needed)."""
        import jax

        shapes = data_shapes(state.responses)
        shapes = [None if s is None else jax.ShapeDtypeStruct(
            (s[0][0] + state.padding, *s[0][1:]), s[1], sharding=state.placement)
            for s in shapes]
        state.compiled = state.train.lower(*shapes).compile()

    def place(self, state: AdamState) -> list[jax.Array | None]:
        """The data on the device(s), transfers finished."""
        import jax

        data = host_data(state.responses)
        if state.padding:  # rows of missing responses: no gradient, no loss
            data = (np.pad(data[0], ((0, state.padding), (0, 0)), constant_values=MISSING),
                    None, None)
        if state.jax_device.platform == "cpu":  # XLA's CPU client then reads them in place
            data = tuple(None if a is None else _jax.aligned(a) for a in data)
        return jax.block_until_ready([None if a is None else jax.device_put(a, state.placement)
                                      for a in data])

    def run(self, state: AdamState) -> Result:
        import jax

        placed = self.place(state)
        clock = Stopwatch()
        train = state.compiled or state.train
        params, losses, trace = jax.block_until_ready(train(*placed))
        compute_seconds = clock.stop()
        objective, model, n = state.objective, state.objective.model, state.n_students
        raw = {name: host(value)[:n] if name == "skill" else host(value)
               for name, value in params.items()}
        skill = raw.pop("skill")
        items = objective.report(raw)
        sums = None
        if placed[1] is None and model.needs_sums(state.scan):  # dense: sums on the device
            values = objective.values(ops_for(params["skill"]), params)
            sums = _device_sums(model.information_sums, placed[0], params["skill"],
                                *(values[name] for name in model.sums_parameters))
            sums = tuple(host(x)[:n] if k == 0 else host(x) for k, x in enumerate(sums))
        skill_se, item_se = model.fit_errors(state.responses, skill, items, scan=state.scan,
                                             found=state.found, sums=sums)
        every = len(losses) // len(trace["skill"])
        snapshots = [_snapshot(objective, every * (k + 1), trace, k, n)
                     for k in range(len(trace["skill"]))]
        return Result(skill, items.pop("difficulty"), skill_se, item_se.pop("difficulty"),
                      host(losses), len(losses), compute_seconds,
                      self.diagnostics(state, params), snapshots, items=items, item_se=item_se)

    def diagnostics(self, state: AdamState, params: dict[str, jax.Array]) -> dict[str, int | str]:
        """Method-specific scalars of a fit (none here)."""
        return {}


def _device_sums(sums: Callable[..., tuple], codes: jax.Array, skill: jax.Array,
                 *items: jax.Array) -> tuple[jax.Array, ...]:
    """A model's information ``sums(jnp, skill, *items, observed)`` over int8 codes (-1 =
    missing), jitted where the codes are (float32); compiled once per model and shape, not
    once per fit."""
    return _jitted_sums()(sums, codes, skill, *items)


@functools.lru_cache(maxsize=1)
def _jitted_sums() -> Callable[..., tuple]:
    import jax
    import jax.numpy as jnp

    def over_codes(sums: Callable[..., tuple], codes: jax.Array, skill: jax.Array,
                   *items: jax.Array) -> tuple:
        return sums(jnp, skill, *items, (codes >= 0).astype(skill.dtype))

    return jax.jit(over_codes, static_argnums=0)


def _snapshot(objective: Objective, iteration: int, trace: dict[str, jax.Array], k: int,
              n: int) -> Snapshot:
    """Row ``k`` of the stacked trace, sliced only after the clock (each slice of a device
    array is a dispatched operation: 20 of them cost tens of milliseconds)."""
    return Snapshot(iteration, lambda: objective.snapshot(
        {name: host(values[k])[:n] if name == "skill" else host(values[k])
         for name, values in trace.items()}))

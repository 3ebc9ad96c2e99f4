r"""``jax-adam``: the reference objective in JAX + optax, the whole training loop compiled once.

Same objective, start and optimiser as ``torch-adam`` (see :mod:`irtbench.estimators.torch_adam`):

.. math::
    L(\theta, b) = \frac{1}{|O|}\sum_{(i,j)\in O}
        \big[\log(1 + e^{x_{ij}}) - y_{ij}x_{ij}\big] + \alpha\,\bar b^{\,2},
    \qquad x_{ij} = \theta_i - b_j

from zero, by ``optax.adam(0.01)`` for 1000 full-batch epochs, float32. The epochs run inside
one ``jax.lax.scan`` under ``jax.jit``; ``compile`` lowers and compiles it ahead of time for the
data's shape (``Fit.compile_seconds``), and ``run`` executes it and blocks until ready.
Sparse triples are fitted directly (gathered logits; autodiff scatters the gradient back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from irtbench.data import is_sparse
from irtbench.estimators import _jax
from irtbench.estimators.base import RunResult, register


def reference_loss(params: dict[str, Any], y: Any, weight: Any, n_observed: int, alpha: float) -> Any:
    """The notebook's objective in JAX: mean observed negative log-likelihood + alpha * mean(b)^2."""
    import jax
    import jax.numpy as jnp

    logits = params["skill"][:, None] - params["difficulty"][None, :]
    terms = jax.nn.softplus(logits) - y * logits
    nll = jnp.mean(terms) if weight is None else jnp.sum(weight * terms) / n_observed
    return nll + alpha * jnp.mean(params["difficulty"]) ** 2


def sparse_reference_loss(params: dict[str, Any], student: Any, question: Any, y: Any,
                          alpha: float) -> Any:
    """The reference objective from sparse triples: gathered logits of the observed responses
    (their gradient is scattered back by autodiff, a segment sum), mean + alpha * mean(b)^2."""
    import jax
    import jax.numpy as jnp

    logits = params["skill"][student] - params["difficulty"][question]
    nll = jnp.mean(jax.nn.softplus(logits) - y * logits)
    return nll + alpha * jnp.mean(params["difficulty"]) ** 2


def dense_loss(n_observed: int, alpha: float) -> Any:
    """``loss(params, y, weight)`` for a dense matrix."""
    return lambda params, y, weight: reference_loss(params, y, weight, n_observed, alpha)


def sparse_loss(alpha: float) -> Any:
    """``loss(params, student, question, y)`` for sparse triples."""
    return lambda params, student, question, y: sparse_reference_loss(params, student, question,
                                                                        y, alpha)


def snapshot_count(epochs: int, most: int = 20) -> int:
    """The largest divisor of ``epochs`` up to ``most``: the number of equal stretches of epochs
    after which the parameters are kept for the trace."""
    return max(c for c in range(1, most + 1) if epochs % c == 0)


def make_train(epochs: int, lr: float, loss_fn: Any, shape: tuple[int, int],
               shardings: dict[str, Any] | None = None) -> Any:
    """A jitted ``train(*data) -> (params, losses, trace)`` running ``epochs`` Adam steps on
    ``loss_fn(params, *data)`` from zero parameters of ``shape`` (float32).

    The epochs run as an outer ``lax.scan`` over ``snapshot_count(epochs)`` stretches of an
    inner ``lax.scan``, so the parameters at the end of each stretch come out as the trace.
    ``shardings`` (``{"skill": ..., "difficulty": ...}``) pins the parameters' layout across
    devices; XLA then shards the computation and inserts the reductions."""
    import jax
    import jax.numpy as jnp
    import optax

    optimizer = optax.adam(lr)
    stretches = snapshot_count(epochs)

    def train(*data: Any) -> tuple[dict[str, Any], Any, Any]:
        params = {"skill": jnp.zeros(shape[0], jnp.float32),
                  "difficulty": jnp.zeros(shape[1], jnp.float32)}
        if shardings is not None:
            params = {k: jax.lax.with_sharding_constraint(v, shardings[k]) for k, v in params.items()}

        def epoch(carry: Any, _: Any) -> tuple[Any, Any]:
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, *data)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        def stretch(carry: Any, _: Any) -> tuple[Any, Any]:
            carry, losses = jax.lax.scan(epoch, carry, None, length=epochs // stretches)
            return carry, (losses, carry[0])

        (params, _), (losses, trace) = jax.lax.scan(
            stretch, (params, optimizer.init(params)), None, length=stretches
        )
        return params, losses.reshape(-1), trace

    return jax.jit(train)


@dataclass
class _Problem:
    data: tuple[Any, ...]  # (y, weight) or sparse (student, question, y)
    device: Any
    train: Any
    compiled: Any = None


@register
class JaxAdam(_jax.JaxEstimator):
    """Joint maximum likelihood by full-batch Adam in JAX (the reference objective, jitted).

    Options:
        epochs (1000), lr (0.01), alpha (1e-2): as ``torch-adam``.
        device: ``"auto"`` (JAX's GPU when present, else CPU), ``"cpu"``, ``"cuda"``/``"gpu"``.
        seed: accepted for the common interface; the fit is deterministic (zero start).

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(200, 20, seed=0)
        >>> fit = irtbench.fit(data.responses, "jax-adam", device="cpu", epochs=100)
        >>> fit.n_iter, fit.losses.shape
        (100, (100,))
    """

    name = "jax-adam"
    summary = "the reference objective in JAX + optax.adam, jit over lax.scan"
    asymptotic_standard_errors = True
    solves_reference_objective = True
    accepts_sparse = True
    defaults = {"epochs": 1000, "lr": 0.01, "alpha": 1e-2, "device": "auto", "seed": 0}

    def prepare(self, responses: Any, options: dict[str, Any]) -> _Problem:
        import jax

        device = _jax.resolve_device(options["device"])
        alpha = float(options["alpha"])
        if is_sparse(responses):
            data = tuple(jax.device_put(a, device) for a in (
                responses.student.astype(np.int32), responses.question.astype(np.int32),
                responses.response.astype(np.float32)))
            loss = sparse_loss(alpha)
        else:
            y, weight, n_observed = _jax.responses_to_device(responses, device)
            data, loss = (y, weight), dense_loss(n_observed, alpha)
        train = make_train(options["epochs"], float(options["lr"]), loss, responses.shape)
        return _Problem(data, device, train)

    def compile(self, problem: _Problem) -> float:
        import time

        start = time.perf_counter()
        problem.compiled = problem.train.lower(*problem.data).compile()
        return time.perf_counter() - start

    def run(self, problem: _Problem) -> RunResult:
        import jax

        train = problem.compiled or problem.train
        params, losses, trace = jax.block_until_ready(train(*problem.data))
        every = len(losses) // len(trace["skill"])
        snapshots = [(every * (k + 1), trace["skill"][k], trace["difficulty"][k])
                     for k in range(len(trace["skill"]))]
        return RunResult(params["skill"], params["difficulty"], losses, n_iter=len(losses),
                         trace=snapshots)

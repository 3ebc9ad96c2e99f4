r"""``jax-adam-sharded``: ``jax-adam`` with the students split across devices by ``jax.sharding``.

The same objective, optimiser and compiled loop as :mod:`~irtbench.estimators.jax_adam`; only
the layout differs. A one-axis mesh ``("students",)`` over the devices holds

* the response matrix (and its mask) split by rows: ``PartitionSpec("students", None)``;
* the skills split alike: ``PartitionSpec("students")``;
* the difficulties (and the scalar loss) replicated: ``PartitionSpec()``.

XLA partitions the jitted loop and inserts the reductions that cross devices (the column sums
of the difficulties' gradient and of the loss). Rows are padded with unobserved responses up to
a multiple of the device count; padded students get no gradient and are dropped afterwards.
Estimates equal one device's up to float32 summation order.

On a multi-GPU host it uses every visible GPU (``n_devices=0``) or the first ``n_devices``
(``CUDA_VISIBLE_DEVICES`` selects which). On the CPU, XLA shows one device unless started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX is imported), which is how
the tests check the sharded fit against the single-device one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from irtbench.data import split_observed
from irtbench.estimators import _jax
from irtbench.estimators.base import RunResult, register
from irtbench.estimators.jax_adam import JaxAdam, dense_loss, make_train


@dataclass
class _Problem:
    data: tuple[Any, ...]
    device: Any
    train: Any
    n_students: int
    n_devices: int
    compiled: Any = None


@register
class JaxAdamSharded(JaxAdam):
    """``jax-adam`` with data and skills sharded over the students across devices.

    Options: those of ``jax-adam``, plus ``n_devices`` (0 = every device of the chosen platform).

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(203, 20, seed=0)
        >>> fit = irtbench.fit(data.responses, "jax-adam-sharded", device="cpu", epochs=50)
        >>> fit.skill.shape, fit.diagnostics["n_devices"] >= 1
        ((203,), True)
    """

    name = "jax-adam-sharded"
    summary = "jax-adam with students (rows, skills) sharded across devices by jax.sharding"
    accepts_sparse = False
    in_default_sweep = False
    defaults = {**JaxAdam.defaults, "n_devices": 0}

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        n = options["n_devices"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"option n_devices={n!r} must be 0 (all) or a positive integer")

    def prepare(self, responses: np.ndarray, options: dict[str, Any]) -> _Problem:
        import jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        first = _jax.resolve_device(options["device"])
        devices = jax.devices(first.platform)
        wanted = options["n_devices"] or len(devices)
        if wanted > len(devices):
            raise ValueError(f"n_devices={wanted} but JAX sees {len(devices)} {first.platform} "
                             "device(s)")
        mesh = Mesh(np.array(devices[:wanted]), ("students",))
        rows = NamedSharding(mesh, PartitionSpec("students", None))
        n_students, n_questions = responses.shape
        padding = -n_students % wanted
        y, weight, n_observed = split_observed(responses)
        if padding:
            weight = np.ones_like(y) if weight is None else weight
            y, weight = (np.pad(a, ((0, padding), (0, 0))) for a in (y, weight))
        data = (jax.device_put(y, rows), None if weight is None else jax.device_put(weight, rows))
        shardings = {"skill": NamedSharding(mesh, PartitionSpec("students")),
                     "difficulty": NamedSharding(mesh, PartitionSpec())}
        train = make_train(options["epochs"], float(options["lr"]),
                           dense_loss(n_observed, float(options["alpha"])),
                           (n_students + padding, n_questions), shardings)
        return _Problem(data, first, train, n_students, wanted)

    def device_of(self, problem: _Problem) -> str:
        name = _jax.device_name(problem.device)
        return name if problem.n_devices == 1 else f"{name} x{problem.n_devices}"

    def run(self, problem: _Problem) -> RunResult:
        result = super().run(problem)
        n = problem.n_students
        return result._replace(
            skill=result.skill[:n],
            trace=[(k, s[:n], d) for k, s, d in result.trace or ()],
            diagnostics={"n_devices": problem.n_devices,
                         "skill_sharding": str(result.skill.sharding)},
        )

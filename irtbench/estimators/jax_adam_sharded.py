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

from functools import partial
from typing import TYPE_CHECKING

from irtbench.estimators import options as option
from irtbench.estimators.base import Option, register
from irtbench.estimators.jax_adam import AdamState, JaxAdam, make_train
from irtbench.kernels.closed_form import jax_value_and_grad
from irtbench.responses import Responses

if TYPE_CHECKING:
    import jax


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
    colour = 4
    models = ("rasch",)
    summary = "jax-adam with students (rows, skills) sharded across devices by jax.sharding"
    accepts_sparse = False
    in_default_sweep = False
    spec = {**JaxAdam.spec,
            "n_devices": option.non_negative_int(0, "devices to shard the rows over (0: all)")}

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> AdamState:
        import jax
        import numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        state = super().setup(responses, options, n_observed)
        all_devices = jax.devices(state.jax_device.platform)
        wanted = int(options["n_devices"]) or len(all_devices)
        if wanted > len(all_devices):
            raise ValueError(f"n_devices={wanted} but JAX sees {len(all_devices)} "
                             f"{state.jax_device.platform} device(s)")
        mesh = Mesh(np.array(all_devices[:wanted]), ("students",))
        n_students, n_questions = responses.shape
        state.padding = -n_students % wanted
        state.placement = NamedSharding(mesh, PartitionSpec("students", None))
        shardings = {"skill": NamedSharding(mesh, PartitionSpec("students")),
                     "difficulty": NamedSharding(mesh, PartitionSpec())}
        step = partial(jax_value_and_grad, n_observed=n_observed,
                       alpha=float(options["alpha"]))
        start = state.objective.start((n_students + state.padding, n_questions))
        state.train = make_train(int(options["epochs"]), float(options["lr"]), step, start,
                                 shardings)
        if wanted > 1:
            state.device = f"{state.device} x{wanted}"
        return state

    def diagnostics(self, state: AdamState, params: dict[str, jax.Array]) -> dict[str, int | str]:
        return {"n_devices": len(state.placement.mesh.devices),
                "skill_sharding": str(params["skill"].sharding)}

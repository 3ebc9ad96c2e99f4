"""Helpers shared by the JAX and NumPyro estimators: configuration and device choice.

Importing this module sets ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` unless the user already chose:
JAX then allocates GPU memory as it needs it instead of grabbing 75% of the device at start,
so a fit can share a GPU (set the variable to ``true`` before importing irtbench to restore
JAX's default; ``XLA_PYTHON_CLIENT_MEM_FRACTION`` caps the share).
"""

from __future__ import annotations

import os
from typing import Any

from irtbench.data import split_observed
from irtbench.estimators.base import Estimator

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def jax_devices() -> list[str]:
    """``["cpu"]`` plus ``"gpu"`` when JAX sees one."""
    import jax

    try:
        return ["cpu", "gpu"] if jax.devices("gpu") else ["cpu"]
    except RuntimeError:
        return ["cpu"]


def resolve_device(device: str) -> Any:
    """``"auto"`` -> JAX's first GPU when present, else the CPU; ``"cuda"``/``"gpu"``[``:N``]
    without a GPU visible to JAX is a ValueError."""
    import jax

    name = str(device).lower()
    if name == "auto":
        return jax.devices("gpu")[0] if "gpu" in jax_devices() else jax.devices("cpu")[0]
    if name == "cpu":
        return jax.devices("cpu")[0]
    kind, _, index = name.partition(":")
    if kind in ("cuda", "gpu"):
        if "gpu" not in jax_devices():
            raise ValueError(
                f"device={device!r} was requested but JAX sees no GPU (jax {jax.__version__}; "
                "install a CUDA build, e.g. pip install 'jax[cuda12]'); use device='cpu' or 'auto'"
            )
        gpus = jax.devices("gpu")
        position = int(index) if index else 0
        if position >= len(gpus):
            raise ValueError(f"device={device!r}: JAX sees only {len(gpus)} GPU(s)")
        return gpus[position]
    raise ValueError(f"unknown device {device!r}; choose one of auto, cpu, cuda, cuda:N")


def device_name(device: Any) -> str:
    return "cpu" if device.platform == "cpu" else f"gpu:{device.id}"


def responses_to_device(responses: Any, device: Any) -> tuple[Any, Any, int]:
    """:func:`irtbench.data.split_observed`, moved to ``device`` as JAX arrays."""
    import jax

    y, weight, n_observed = split_observed(responses)
    weight_array = None if weight is None else jax.device_put(weight, device)
    return jax.device_put(y, device), weight_array, n_observed


class JaxEstimator(Estimator):
    """Base of the estimators that run on JAX: backend, devices, and the device of a problem
    (any object with a ``device`` attribute holding a JAX device)."""

    backend = "jax"
    requirements = ("jax", "optax")
    extra = "jax"

    @classmethod
    def devices(cls) -> list[str]:
        return jax_devices()

    def device_of(self, problem: Any) -> str:
        return device_name(problem.device)

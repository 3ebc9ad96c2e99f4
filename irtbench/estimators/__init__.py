"""Estimators of the Rasch model, one per file, all behind :class:`~irtbench.estimators.base.Estimator`.

Backends are imported lazily inside each estimator, so this package imports without JAX or NumPyro.
"""

from irtbench.estimators import torch_adam  # noqa: F401  (registers the estimator)
from irtbench.estimators.base import (
    BackendNotInstalled,
    Estimator,
    Fit,
    estimators,
    fit,
    get_estimator,
    register,
)

__all__ = [
    "BackendNotInstalled",
    "Estimator",
    "Fit",
    "estimators",
    "fit",
    "get_estimator",
    "register",
]

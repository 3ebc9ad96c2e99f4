"""Estimators of the Rasch model, one per file, all behind :class:`~irtbench.estimators.base.Estimator`.

Backends are imported lazily inside each estimator, so this package imports without JAX or NumPyro.
The sweep machinery and the CLI use this package's names only (the registry, the interface and
:func:`reference_optimum`), never a concrete estimator's module.
"""

from irtbench.estimators import (  # noqa: F401  (each registers itself)
    cml,
    jax_adam,
    jax_adam_sharded,
    jml_newton,
    mml_em,
    numpyro_map,
    numpyro_nuts,
    numpyro_vi,
    torch_adam,
)
from irtbench.estimators.base import (
    BackendNotInstalled,
    Estimator,
    Fit,
    estimators,
    fit,
    get_estimator,
    register,
)
from irtbench.estimators.jml_newton import reference_optimum

__all__ = [
    "BackendNotInstalled",
    "Estimator",
    "Fit",
    "estimators",
    "fit",
    "get_estimator",
    "reference_optimum",
    "register",
]

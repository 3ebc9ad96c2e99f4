"""Estimators of the Rasch, 2PL and 3PL models, one per file (the field's packages wrapped as peers
in ``mirt_em``, ``girth_mml``, ``girth_cml`` and, in interpreters of their own, ``py_irt`` and ``theta_irt``), all behind :class:`~irtbench.estimators.base.Estimator`.

Backends are imported lazily inside each estimator, so this package imports without JAX or NumPyro.
The sweep machinery and the CLI use this package's names only (the registry, the interface and
:func:`reference_optimum`), never a concrete estimator's module.
"""

from irtbench.estimators import (  # noqa: F401  (each registers itself)
    cml,
    girth_cml,
    girth_mml,
    jax_adam,
    jax_adam_sharded,
    jml_newton,
    mirt_em,
    mml_em,
    numpyro_map,
    numpyro_nuts,
    numpyro_vi,
    py_irt,
    torch_adam,
)
from irtbench.estimators import theta_irt  # noqa: F401, E402  (last: the registry's order is
# the figures' colours, appended to only)
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

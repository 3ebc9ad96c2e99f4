"""Estimators of irtbench's models, one per file, each found here by itself: every public module
of this package (a name without a leading underscore, but ``base`` and ``options``) is imported
and registers its :class:`~irtbench.estimators.base.Estimator` subclass with
:func:`~irtbench.estimators.base.register`. Adding an estimator is adding its file: its options,
its test options, its colour in the figures and every fact the suite reads of it (which
objective it maximises, whether it gives SEs, its place in the default and quick sweeps and in
``compare``) are declared in it (:class:`~irtbench.estimators.base.Estimator`). The field's
packages are wrapped as peers (``mirt_em``, ``girth_mml``, ``girth_cml`` and, in interpreters of
their own, ``py_irt`` and ``theta_irt``).

Backends are imported lazily inside each estimator, so this package imports without JAX or NumPyro.
The sweep machinery and the CLI use this package's names only (the registry, the interface and
:func:`reference_optimum`), never a concrete estimator's module.
"""

import importlib
import pkgutil

from irtbench.estimators.base import (
    BackendNotInstalled,
    Estimator,
    Fit,
    estimators,
    fit,
    get_estimator,
    register,
)

#: the modules of this package that hold no estimator
NOT_ESTIMATORS = frozenset({"base", "options"})

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)
                      if not m.name.startswith("_") and not m.ispkg
                      and m.name not in NOT_ESTIMATORS):
    importlib.import_module(f"{__name__}.{_module}")

from irtbench.estimators.jml_newton import reference_optimum  # noqa: E402

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

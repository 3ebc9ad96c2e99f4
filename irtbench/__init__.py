"""irtbench: benchmarks of Item Response Theory estimators (the Rasch model, the 2PL, the 3PL,
the 4PL and the multidimensional 2PL: :mod:`irtbench.models`) across PyTorch, JAX and NumPyro
and against the field's own packages.

.. math:: P(Y_{ij} = 1) = \\sigma(\\theta_i - b_j), \\quad
    \\sigma\\big(a_j(\\theta_i - b_j)\\big) \\quad\\text{or}\\quad
    c_j + (1 - c_j)\\,\\sigma\\big(a_j(\\theta_i - b_j)\\big) \\quad\\text{or}\\quad
    c_j + (u_j - c_j)\\,\\sigma\\big(a_j(\\theta_i - b_j)\\big)

Examples:
    >>> import irtbench
    >>> data = irtbench.simulate(n_students=500, n_questions=50, seed=0)
    >>> fit = irtbench.fit(data.responses, estimator="torch-adam", device="cpu")
    >>> metrics = irtbench.recovery(fit, data)
    >>> {"crb_ratio_skill", "crb_ratio_difficulty", "crb_ratio_ceiling", "rmse_loadings"} <= set(metrics)
    True
"""

from irtbench import threads as _threads  # noqa: F401 - first: the wait policy, before torch loads
from irtbench.csvio import ResponseTable, load_responses
from irtbench.estimators import BackendNotInstalled, Estimator, Fit, estimators, fit, get_estimator
from irtbench import models  # noqa: F401 - irtbench.models.get_model, MODELS
from irtbench.metrics import align, cramer_rao_bound, recovery
from irtbench.responses import SparseResponses, validate_responses
from irtbench.simulate import Dataset, simulate, simulate_sparse
from irtbench.version import __version__

__all__ = [
    "BackendNotInstalled",
    "Dataset",
    "Estimator",
    "Fit",
    "ResponseTable",
    "SparseResponses",
    "align",
    "cramer_rao_bound",
    "estimators",
    "fit",
    "get_estimator",
    "load_responses",
    "recovery",
    "simulate",
    "simulate_sparse",
    "validate_responses",
    "__version__",
]

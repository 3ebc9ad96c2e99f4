r"""``torch-measure-jml``: torch-measure's joint maximum likelihood by L-BFGS
(``model.fit(data, method="jml")``; torch-measure 0.1.0), as a peer run in its own environment
(:mod:`irtbench.estimators._torch_family`: ``make torch-measure-venv``).

**What it computes** (read from ``torch_measure/fitting/jml.py``). The mean joint negative
log-likelihood of ``torch-measure-mle`` plus an L2 penalty on every parameter scaled by their
count :math:`P` (skills, difficulties and the raw log-discriminations and floor logits alike),

.. math::

    L(\theta, \phi) + \lambda\,\frac{\sum_k \psi_k^2}{P}, \qquad \lambda = 0.01
    \ (\texttt{regularization}),

minimised by L-BFGS (``lr`` 0.01, at most 20 inner iterations a step) from the package's
random start (seeded), until the loss changes by less than ``convergence_tol`` (1e-6) in a
step or after ``max_epochs`` (1000) steps; ``n_iter`` counts the steps. ``IRTModel.fit``'s
``lr=0.01`` and ``max_epochs=1000`` override ``jml_fit``'s own 0.1 and 500, so a user calling
``fit(method="jml")`` gets these; ``diagnostics["converged"]``: the tolerance stopped it. The
penalty is a few thousandths of the loss's scale: it neither identifies the 2PL's scale nor
holds a slope back, so a slope can run away (measured by the probe of 2026-12-06 at 2000 x 1000:
aligned slope RMSE 3966; on LSAT7 the largest slope reached 5.5e4).

**Models** and **SEs**: as ``torch-measure-mle`` (:mod:`irtbench.estimators.torch_measure_mle`):
the Rasch model, the 2PL, the 3PL and the M2PL (``LogisticFM``), the package's Fisher SEs for
the Rasch model and the 2PL; extremes with SE inf.
"""

from __future__ import annotations

from irtbench.estimators import options as option
from irtbench.estimators._torch_family import COMMON_SPEC, TORCH_MEASURE, TorchMeasurePeer, \
    python_option
from irtbench.estimators.base import register


@register
class TorchMeasureJML(TorchMeasurePeer):
    """torch-measure's JML (L-BFGS on the lightly penalised mean joint likelihood) in its own
    interpreter; see the module docstring for what it computes."""

    name = "torch-measure-jml"
    colour = 18
    objective = "joint"
    method = "jml"
    models = ("rasch", "2pl", "3pl", "m2pl")
    infinite_extremes = True
    summary = "peer: torch-measure's joint ML by L-BFGS with a light L2 penalty (own venv)"
    stopping_rule = "L-BFGS steps; stops when the loss changes by less than convergence_tol"
    fit_keywords = ("max_epochs", "lr", "regularization", "convergence_tol")
    spec = {
        "max_epochs": option.positive_int(1000, "cap on L-BFGS steps (IRTModel.fit's)"),
        "lr": option.positive(0.01, "L-BFGS's learning rate (IRTModel.fit's)"),
        "regularization": option.positive(0.01, "weight of the L2 penalty over the parameter "
                                          "count (jml_fit's)", zero_ok=True),
        "convergence_tol": option.positive(1e-6, "stop when the loss changes by less "
                                           "(jml_fit's)"),
        **COMMON_SPEC,
        "python": python_option(TORCH_MEASURE),
    }
    test_options: dict = {}
    warm_up_options = {"max_epochs": 2}

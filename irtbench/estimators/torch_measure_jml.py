r"""``torch-measure-jml``: torch-measure's joint maximum likelihood by L-BFGS
(``model.fit(data, method="jml")``; torch-measure 0.1.0), as a peer run in its own environment
(:mod:`irtbench.estimators._torch_family`: ``make torch-measure-venv``).

**What it computes** (read from ``torch_measure/fitting/jml.py``). The mean joint negative
log-likelihood :math:`L` of ``torch-measure-mle`` over the :math:`|O|` observed responses plus an
L2 penalty on every parameter, divided by their count :math:`P` (skills, difficulties, the raw
log-discriminations and floor logits alike),

.. math::

    L(\theta, \phi) + \frac{\lambda}{P}\sum_k \psi_k^2, \qquad \lambda = 0.01
    \ (\texttt{regularization}),

minimised by L-BFGS (``lr`` 0.01, at most 20 inner iterations a step) from the package's
random start (seeded), until the loss changes by less than ``convergence_tol`` (1e-6) in a
step or after ``max_epochs`` (1000) steps; ``n_iter`` counts the steps. ``IRTModel.fit``'s
``lr=0.01`` and ``max_epochs=1000`` override ``jml_fit``'s own 0.1 and 500, so a user calling
``fit(method="jml")`` gets these; ``diagnostics["converged"]``: the tolerance stopped it.

**The penalty is a prior.** Times :math:`|O|`, the objective is the joint likelihood plus
:math:`(\lambda|O|/P)\sum_k\psi_k^2`: a N(0, :math:`P/(2\lambda|O|)`) prior on every parameter,
precision :math:`2\lambda|O|/P \approx 2\lambda J` for a test of :math:`J` items taken by many
more students. A skill's information is about :math:`\sum_j a_j^2 p_j(1 - p_j)`, a few tenths of
:math:`J`, so the skills, and with them the item parameters' scale, shrink by roughly a tenth
whatever the test's length: measured on the generic checks' Rasch data (300 x 30), the
difficulties come out at 0.87 of the truth's spread where the joint ML estimate (``jml-newton``,
or ``regularization=0``) has 1.02, an aligned RMSE of 1.6 Cramér–Rao bounds against 1.15
(``test_options`` sets the penalty to 0 so that the generic checks test the plumbing; the
shrinkage is tested in ``tests/estimators/test_torch_measure.py``). The log-discriminations'
penalty does not hold every slope: measured by the probe of 2026-12-06, a slope reached 5.5e4
on LSAT7 and the aligned slopes' RMSE was 3966 at 2000 x 1000.

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
    #: its default penalty shrinks the skills (module docstring), past the generic recovery
    #: check's tolerance: the generic checks test the plumbing without it
    test_options = {"regularization": 0.0}
    warm_up_options = {"max_epochs": 2}

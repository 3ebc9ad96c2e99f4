r"""``torch-measure-mle``: torch-measure's maximum likelihood (``model.fit(data, method="mle")``,
its default method; torch-measure 0.1.0), as a peer run in its own environment
(:mod:`irtbench.estimators._torch_family`: ``make torch-measure-venv``).

**What it computes** (read from ``torch_measure/fitting/mle.py`` and ``models/_base.py``). The
mean joint negative log-likelihood of the observed responses, skills and items together (a
joint ML: no distribution on the skills),

.. math::

    L(\theta, \phi) = -\frac{1}{|O|}\sum_{(i, j) \in O} y_{ij}\log p_{ij} + (1 - y_{ij})\log(1 -
    p_{ij}), \qquad p_{ij} \text{ clamped to } [10^{-7}, 1 - 10^{-7}],

minimised by full-batch Adam (``lr`` 0.01, ``weight_decay`` 0) from the package's random start
(every ability, difficulty and log-discrimination N(0, 1), the floors' logits -2; seeded by
``torch.manual_seed(seed)``), until the loss changes by less than ``convergence_tol`` (1e-6)
in a step or after ``max_epochs`` (1000) steps. These are the defaults of
``IRTModel.fit`` (``max_epochs=1000, lr=0.01``) and ``mle_fit``, what its quick start uses;
``diagnostics["converged"]``: the tolerance stopped it. The clamp and the absolute tolerance on
a *mean* loss stop it early on long tests, and nothing bounds a slope: measured by the probe
of 2026-12-06 on LSAT7 (1000 x 5), it stopped "converged" after 938 steps with one slope at 690
(the joint likelihood's runaway, flagged by the suite's runaway rule).

**Models** (:data:`~irtbench.estimators._torch_family.TORCH_MEASURE_CLASSES`), each written as
the suite's: ``"rasch"`` its ``Rasch`` :math:`\sigma(\theta_i - b_j)` (free skills: the
suite's Rasch model), ``"2pl"`` its ``TwoPL`` :math:`\sigma(a_j(\theta_i - b_j))` with
:math:`a_j = e^{r_j} > 0`, ``"3pl"`` its ``ThreePL`` (:math:`c_j = \sigma(g_j)`, no prior),
``"m2pl"`` its ``LogisticFM`` :math:`\sigma(U_i \cdot V_j + Z_j)` with ``n_factors`` D (option
``dims``): loadings :math:`V_j`, intercepts :math:`Z_j`.

**SEs**: the package's Fisher SEs (``torch_measure.metrics``, what its quick start shows after
a fit): :math:`1/\sqrt{\sum_j a_j^2 P_{ij}Q_{ij}}` for a skill, :math:`1/\sqrt{\sum_i a_j^2
P_{ij}Q_{ij}}` for a difficulty and :math:`1/\sqrt{\sum_i (\theta_i - b_j)^2 P_{ij}Q_{ij}}` for
a discrimination, each with the others known, for the Rasch model and the 2PL (they are the
2PL's formulas: none for the 3PL and the M2PL). Students who got everything right or wrong keep
the value where Adam stopped, with SE inf.
"""

from __future__ import annotations

from irtbench.estimators import options as option
from irtbench.estimators._torch_family import COMMON_SPEC, TORCH_MEASURE, TorchMeasurePeer, \
    python_option
from irtbench.estimators.base import register


@register
class TorchMeasureMLE(TorchMeasurePeer):
    """torch-measure's MLE (Adam on the mean joint likelihood) in its own interpreter; see the
    module docstring for what it computes."""

    name = "torch-measure-mle"
    colour = 19
    objective = "joint"
    method = "mle"
    models = ("rasch", "2pl", "3pl", "m2pl")
    infinite_extremes = True
    summary = "peer: torch-measure's joint ML by Adam (its default method; own venv, subprocess)"
    stopping_rule = "epochs; stops when the mean loss changes by less than convergence_tol"
    fit_keywords = ("max_epochs", "lr", "convergence_tol", "weight_decay")
    spec = {
        "max_epochs": option.positive_int(1000, "cap on Adam steps (IRTModel.fit's)"),
        "lr": option.positive(0.01, "Adam's learning rate (IRTModel.fit's)"),
        "convergence_tol": option.positive(1e-6, "stop when the mean loss changes by less "
                                           "(mle_fit's)"),
        "weight_decay": option.positive(0.0, "Adam's L2 weight decay (mle_fit's)", zero_ok=True),
        **COMMON_SPEC,
        "python": python_option(TORCH_MEASURE),
    }
    shortfalls = {
        "m2pl": "its unpenalised joint LogisticFM from a random start gives skills that "
                "correlate 0.62 with the truth (after the M2PL's alignment) in the battery's "
                "400 x 20 against a floor of 0.64",
    }
    test_options: dict = {}
    warm_up_options = {"max_epochs": 2}

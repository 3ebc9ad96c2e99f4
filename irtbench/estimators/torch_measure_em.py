r"""``torch-measure-em``: torch-measure's "EM" (``model.fit(data, method="em")``; torch-measure
0.1.0), as a peer run in its own environment (:mod:`irtbench.estimators._torch_family`:
``make torch-measure-venv``).

**What it computes** (read from ``torch_measure/fitting/em.py``). Its docstring promises the
marginal likelihood by Gauss–Hermite quadrature; the code computes another objective. For each
of ``n_quadrature`` (31) probabilists' Gauss–Hermite nodes :math:`z_q` (weights :math:`w_q`
normalised) it sets *every* student's skill to :math:`z_q` and takes the whole matrix's
likelihood there, then sums over the nodes outside the product over students:

.. math::

    \log \sum_q w_q \prod_{i}\prod_{j\ \mathrm{obs}} P_j(z_q)^{y_{ij}}(1 - P_j(z_q))^{1 - y_{ij}}
    \quad\text{instead of}\quad
    \sum_i \log \sum_q w_q \prod_{j\ \mathrm{obs}} P_j(z_q)^{y_{ij}}(1 - P_j(z_q))^{1 - y_{ij}},

the likelihood of one skill shared by all students. Only each item's proportion correct at that
one skill informs it, so the slopes keep much of their random start (the probe of 2026-12-06:
correlation 0.44 to 0.93 with the start; log-likelihood 547 below the ML optimum on LSAT7,
2190 on SPISA). The item parameters (from the package's random start, seeded) move by Adam
(``lr`` 0.01) for ``max_epochs`` (1000) steps, no convergence test; then the items are frozen and
the skills, from 0, move by Adam for ``max_epochs`` more steps on the mean joint negative
log-likelihood plus :math:`0.01(|\bar\theta| + |s_\theta - 1|)` (``diagnostics
["ability_epochs"]``). ``IRTModel.fit``'s ``max_epochs=1000`` overrides ``em_fit``'s 500. No
stopping rule, so no ``converged`` flag. Each item step evaluates the whole matrix at every node
(31 dense passes), the slowest of the package's methods. These are the package's defaults; its
documentation recommends no other setting, and none would mend the objective, so no second entry
is offered: this estimator reports what a user of ``method="em"`` gets.

**Objective** declared ``"marginal"`` (what the package means to maximise; ``compare``
evaluates the true marginal likelihood at its estimates by quadrature).

**Models**: ``"2pl"`` and ``"3pl"`` (its ``TwoPL`` and ``ThreePL``, written as the suite's:
:func:`irtbench.estimators._torch_family.torch_measure_items`). Not the Rasch model (N(0, 1)
skills: the skills' SD fixed, the model the suite declines for mirt's "1PL"), nor the M2PL
(it sets ``model.ability`` to one node, which a factor model's skills are not).

**SEs**: the package's Fisher SEs of the 2PL (``torch_measure.metrics``, as
``torch-measure-mle``'s), none for the 3PL; extremes keep the value where Adam stopped, SE inf.
"""

from __future__ import annotations

from irtbench.estimators import options as option
from irtbench.estimators._torch_family import COMMON_SPEC, TORCH_MEASURE, TorchMeasurePeer, \
    python_option
from irtbench.estimators.base import register


@register
class TorchMeasureEM(TorchMeasurePeer):
    """torch-measure's "EM" (a common skill's quadrature likelihood, then the skills) in its own
    interpreter; see the module docstring for what it really computes."""

    name = "torch-measure-em"
    colour = 17
    objective = "marginal"
    method = "em"
    models = ("2pl", "3pl")
    infinite_extremes = True
    summary = ("peer: torch-measure's 'EM' (Adam on one shared skill's quadrature likelihood, "
               "then the skills; own venv)")
    stopping_rule = "none: max_epochs item steps, then max_epochs skill steps"
    fit_keywords = ("max_epochs", "lr", "n_quadrature")
    spec = {
        "max_epochs": option.positive_int(1000, "Adam steps of each phase (IRTModel.fit's)"),
        "lr": option.positive(0.01, "Adam's learning rate (IRTModel.fit's)"),
        "n_quadrature": option.positive_int(31, "Gauss-Hermite nodes (em_fit's)", low=2),
        **COMMON_SPEC,
        "python": python_option(TORCH_MEASURE),
    }
    shortfalls = {
        "3pl": "its items from one shared skill's likelihood (module docstring), with the test "
               "options' 20 epochs: skills correlate 0.60 with the truth in the battery's "
               "400 x 20 against a floor of 0.73",
    }
    #: each item step is 31 dense passes: the generic checks' 300 x 30 in a few seconds
    test_options = {"max_epochs": 20}
    warm_up_options = {"max_epochs": 2}

r"""``irtorch-jml``: irtorch's joint maximum likelihood (``irtorch.estimation_algorithms.JML``,
irtorch 0.5.6), as a peer run in its own environment (:mod:`irtbench.estimators._torch_family`:
``make irtorch-venv``).

**What it computes** (read from ``irtorch/estimation_algorithms/jml.py``). The joint
log-likelihood of skills and items together, no distribution on the skills and no penalty,

.. math::

    \ell(\theta, \phi) = \sum_{(i, j)\ \mathrm{obs}} y_{ij}\log P_j(\theta_i)
    + (1 - y_{ij})\log(1 - P_j(\theta_i)),

all parameters moved at once by Adam with AMSGrad (``learning_rate`` 0.1) on the whole matrix
a step, from skills at the standardised sum scores (plus N(0, 0.1^2) noise for D > 1). The rate
is halved after ``learning_rate_update_patience`` (80) steps without improvement; the fit stops
after ``learning_rate_updates_before_stopping`` (3) cuts or ``max_epochs`` (10000) steps,
keeping the step of least loss. ``diagnostics["converged"]``: it stopped by that rule. These
are irtorch's defaults; its documentation recommends no other setting ("not recommended for
large datasets"). Under the 2PL the joint likelihood has no scale: :math:`(c\theta, a/c)`
fits as well as :math:`(\theta, a)`, so the slopes and skills drift together along that ridge
until the schedule stops them (the suite's alignment takes the scale out); as every JML, its
item estimates are inconsistent for short tests.

**Models** (:data:`~irtbench.estimators._torch_family.IRTORCH_CLASSES`): ``"rasch"`` its
``OneParameterLogistic`` :math:`\sigma(\theta_i + d_j)` with free skills (so the skills' SD is
estimated: the suite's Rasch model, :math:`b_j = -d_j`), ``"2pl"``, ``"3pl"`` and ``"m2pl"``
(any D) as for ``irtorch-mml``.

**Skills**: irtorch's ``latent_scores(data, standard_errors=True)`` with its default
``theta_estimation="ML"``, which starts L-BFGS from the best of the fit's joint skills for
each pattern (so it returns the joint estimates, refined); extremes keep that value with SE
inf. **No item SEs.**
"""

from __future__ import annotations

from irtbench.estimators import options as option
from irtbench.estimators._torch_family import COMMON_SPEC, IRTORCH, IrtorchPeer, python_option
from irtbench.estimators.base import register


@register
class IrtorchJML(IrtorchPeer):
    """irtorch's JML (Adam on the joint likelihood) in its own interpreter; see the module
    docstring for what it computes."""

    name = "irtorch-jml"
    colour = 14
    objective = "joint"
    method = "JML"
    models = ("rasch", "2pl", "3pl", "m2pl")
    summary = "peer: irtorch's joint ML (Adam on every parameter at once; own venv, subprocess)"
    stopping_rule = ("epochs; stops after learning_rate_updates_before_stopping cuts of the "
                     "learning rate, keeping the best epoch")
    fit_keywords = ("max_epochs", "learning_rate", "learning_rate_update_patience",
                    "learning_rate_updates_before_stopping", "batch_size")
    spec = {
        "max_epochs": option.positive_int(10000, "cap on epochs (irtorch's)"),
        "learning_rate": option.positive(0.1, "Adam's initial learning rate (irtorch's)"),
        "learning_rate_update_patience": option.positive_int(
            80, "steps without improvement before the rate is halved (irtorch's)"),
        "learning_rate_updates_before_stopping": option.positive_int(
            3, "cuts of the rate before it stops (irtorch's)"),
        "batch_size": option.positive_int(None, "students a step (None: all, irtorch's)",
                                          none_ok=True),
        "theta_estimation": option.choice("ML", "how latent_scores scores the skills: 'ML' "
                                          "(irtorch's default) or 'EAP'", "ML", "EAP"),
        **COMMON_SPEC,
        "python": python_option(IRTORCH),
    }
    shortfalls = {
        "m2pl": "irtorch's joint 2-dimensional 2PL (no distribution on the skills) gives skills "
                "that correlate 0.21 with the truth (after the M2PL's alignment) in the "
                "battery's 400 x 20 against a floor of 0.64",
    }
    test_options: dict = {}
    warm_up_options = {"max_epochs": 2}

r"""``torch-measure-svi``: torch-measure's stochastic variational inference
(``model.fit(data, method="svi")``, Pyro; torch-measure 0.1.0), as a peer run in its own
environment (:mod:`irtbench.estimators._torch_family`: ``make torch-measure-venv``).

**What it computes** (read from ``torch_measure/fitting/svi.py``). A Bayesian 2PL or 3PL with
priors on every parameter,

.. math::

    \theta_i \sim N(0, 1), \quad b_j \sim N(0, 1), \quad a_j \sim \mathrm{LogNormal}(0,
    0.5^2), \quad c_j \sim \mathrm{Beta}(1, 4), \quad y_{ij} \sim \mathrm{Bernoulli}(c_j + (1 -
    c_j)\,\sigma(a_j(\theta_i - b_j))),

and a mean-field normal guide (Pyro's ``AutoNormal``: a normal for each parameter in its
unconstrained space, :math:`\log a_j` and :math:`\operatorname{logit} c_j`), fitted by maximising
a one-sample ELBO (``Trace_ELBO``) with ``ClippedAdam`` (``lr`` 0.01) for ``max_epochs`` (1000)
steps on every response at once, no convergence test (so no ``converged`` flag; ``losses`` are
the per-step negative ELBO). ``IRTModel.fit``'s ``max_epochs=1000`` overrides ``svi_fit``'s
own 4000: a user calling ``fit(method="svi")`` gets 1000, which this estimator keeps. The
estimates are what the package writes back into its model: the guide's locations, i.e. the
posterior means of the skills and difficulties and the posterior *medians*
:math:`e^{\mu}` and :math:`\sigma(\mu)` of the discriminations and floors; pyro's draws seeded
by ``pyro.set_rng_seed(seed)``. They are posterior summaries under those priors, not maximum
likelihood: the N(0, 1) prior on the difficulties shrinks items far from the middle (measured
by the probe of 2026-12-06: log-likelihood 1.0 below the ML optimum on LSAT7 and 52 on SPISA).

**Models**: ``"2pl"`` and ``"3pl"`` (its ``TwoPL`` and ``ThreePL``, written as the suite's).
Not the Rasch model (its ``Rasch`` under SVI has N(0, 1) skills: the skills' SD fixed, the
model the suite declines, as for py-irt's "1pl"), nor the M2PL (its factor model has no SVI).

**SEs**: the guide's scales: posterior SDs of the skills and difficulties as they are; of the
discriminations and floors by the delta method from their log and logit scales
(:func:`irtbench.estimators._torch_family.torch_measure_errors`). Every student, extremes
included, has a finite posterior summary.
"""

from __future__ import annotations

from irtbench.estimators import options as option
from irtbench.estimators._torch_family import COMMON_SPEC, TORCH_MEASURE, TorchMeasurePeer, \
    python_option
from irtbench.estimators.base import register


@register
class TorchMeasureSVI(TorchMeasurePeer):
    """torch-measure's SVI (Pyro, mean-field normal guide) in its own interpreter; see the
    module docstring for what it computes."""

    name = "torch-measure-svi"
    colour = 20
    objective = "posterior"
    method = "svi"
    models = ("2pl", "3pl")
    infinite_extremes = False
    summary = "peer: torch-measure's variational Bayes 2PL/3PL (Pyro SVI; own venv, subprocess)"
    stopping_rule = "none: max_epochs SVI steps"
    fit_keywords = ("max_epochs", "lr")
    spec = {
        "max_epochs": option.positive_int(1000, "SVI steps (IRTModel.fit's)"),
        "lr": option.positive(0.01, "ClippedAdam's learning rate (IRTModel.fit's)"),
        **COMMON_SPEC,
        "python": python_option(TORCH_MEASURE),
    }
    test_options = {"max_epochs": 300}
    warm_up_options = {"max_epochs": 2}

r"""``irtorch-vae``: irtorch's variational autoencoder (``irtorch.estimation_algorithms.VAE``,
irtorch 0.5.6; Urban & Bauer 2021), as a peer run in its own environment
(:mod:`irtbench.estimators._torch_family`: ``make irtorch-venv``).

**What it computes** (read from ``irtorch/estimation_algorithms/vae.py``). An encoder network
(the one-hot responses in, one hidden layer of :math:`2\sum_j K_j = 4J` units with ELU, a
mean and a log-variance per latent dimension out) gives each student a normal
:math:`q(\theta_i \mid y_i)`; the item parameters :math:`\phi` (point estimates, no prior)
and the encoder's weights maximise the importance-weighted bound (IWAE, ``iw_samples`` = 5
draws a student) on the marginal likelihood under :math:`\theta \sim N(0, I)`,

.. math::

    \ell(\phi) \ge \sum_i \mathbb{E}\log \frac{1}{K}\sum_{k=1}^{K}
    \frac{p(y_i \mid \theta_{ik}, \phi)\,N(\theta_{ik}; 0, I)}{q(\theta_{ik} \mid y_i)},
    \qquad \theta_{ik} \sim q(\cdot \mid y_i),

by Adam with AMSGrad (``learning_rate`` 0.002) on the whole matrix a step (``batch_size``
None), the KL term annealed in over the first 5 steps. Every ``evaluation_interval_size`` (60)
steps the mean of the last 60 steps' losses is compared; the rate is cut by 0.6 once it has
not improved for more than one interval (patience 1), and the fit stops after
``learning_rate_updates_before_stopping`` (2) cuts or ``max_epochs`` (10000) steps, keeping
the best interval's state.
``diagnostics["converged"]``: it stopped by that rule; ``n_iter``: the optimiser's steps;
``losses``: the interval means. These are irtorch's defaults; its documentation recommends no
other setting (it says to lower the learning rate if the fit fails to converge). Measured by the
probe of 2026-12-06 (``shared/measurements/torch-peers-2026-12-06``, 2 cores): 24 s on LSAT7 and
104 s at 1000 x 50 where the marginal methods take well under a second, about 35 minutes
projected at 10000 x 100; at 300 x 28659 its default encoder (:math:`2J` inputs, one layer of
:math:`4J` units) alone holds 26 GB of float32 weights.

**Objective**: declared ``"marginal"``: the items are point estimates of a lower bound on the
marginal likelihood (variational marginal ML, not a posterior of the items), which ``compare``
then evaluates by quadrature at its estimates.

**Models**: ``"2pl"``, ``"3pl"`` and ``"m2pl"`` (any D: the encoder takes them all), irtorch's
classes as for ``irtorch-mml`` (:func:`irtbench.estimators._torch_family.irtorch_items`); not
the Rasch model (the N(0, 1) prior fixes the skills' SD, as ``irtorch-mml``'s module says).

**Skills**: irtorch's ``latent_scores(data, standard_errors=True)`` with its default
``theta_estimation="ML"`` (L-BFGS from the encoder's means); ``"NN"`` takes the encoder's
means and SDs (the variational posterior) and ``"EAP"`` a grid over the training scores'
spread. Extremes as ``irtorch-mml``'s. **No item SEs.**
"""

from __future__ import annotations

from irtbench.estimators import options as option
from irtbench.estimators._torch_family import COMMON_SPEC, IRTORCH, IrtorchPeer, python_option
from irtbench.estimators.base import register


@register
class IrtorchVAE(IrtorchPeer):
    """irtorch's variational autoencoder (IWAE bound) in its own interpreter; see the module
    docstring for what it computes."""

    name = "irtorch-vae"
    colour = 16
    objective = "marginal"
    method = "VAE"
    models = ("2pl", "3pl", "m2pl")
    summary = ("peer: irtorch's variational autoencoder (importance-weighted bound, amortised "
               "skills; own venv, subprocess)")
    stopping_rule = ("optimiser steps; stops after learning_rate_updates_before_stopping cuts "
                     "of the learning rate, keeping the best interval")
    fit_keywords = ("max_epochs", "learning_rate", "learning_rate_updates_before_stopping",
                    "evaluation_interval_size", "batch_size", "iw_samples")
    spec = {
        "max_epochs": option.positive_int(10000, "cap on epochs (irtorch's)"),
        "learning_rate": option.positive(0.002, "Adam's initial learning rate (irtorch's)"),
        "learning_rate_updates_before_stopping": option.positive_int(
            2, "cuts of the rate before it stops (irtorch's)"),
        "evaluation_interval_size": option.positive_int(
            60, "steps between comparisons of the mean loss (irtorch's)"),
        "batch_size": option.positive_int(None, "students a step (None: all, irtorch's)",
                                          none_ok=True),
        "iw_samples": option.positive_int(5, "importance-weighted draws a student (irtorch's)"),
        "theta_estimation": option.choice("ML", "how latent_scores scores the skills: 'ML' "
                                          "(irtorch's default), 'EAP' or 'NN' (the encoder)",
                                          "ML", "EAP", "NN"),
        **COMMON_SPEC,
        "python": python_option(IRTORCH),
    }
    #: two evaluation intervals of 60 steps (a loss each): the generic checks' bookkeeping, not a
    #: good fit
    test_options = {"max_epochs": 130}
    warm_up_options = {"max_epochs": 2}

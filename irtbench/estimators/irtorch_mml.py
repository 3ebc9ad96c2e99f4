r"""``irtorch-mml``: irtorch's marginal maximum likelihood (``irtorch.estimation_algorithms.MML``,
irtorch 0.5.6), as a peer run in its own environment (:mod:`irtbench.estimators._torch_family`:
``make irtorch-venv``).

**What it computes** (read from ``irtorch/estimation_algorithms/mml.py``). Not an EM: the
marginal log-likelihood on a fixed grid of skills,

.. math::

    \ell(\phi) = \sum_i \log \sum_q w_q \prod_{j\ \mathrm{obs}} P_j(z_q)^{y_{ij}}
    (1 - P_j(z_q))^{1 - y_{ij}},

is maximised by full-batch gradient steps (Adam with AMSGrad, ``learning_rate`` 0.2), one
step an epoch. Its default grid (``integration_method="quasi_mc"``, despite the name no
Monte Carlo) is ``quadrature_points`` = 15 evenly spaced points on [-3, 3] (7 a dimension for
D = 2, 5 for D = 3) weighted by the N(0, I) density there, not normalised: the skills'
distribution is a 15-point discretisation of N(0, 1) truncated at +/-3, so its optimum is not
quite the N(0, 1) marginal ML estimate (``"gauss_hermite"`` is the other choice). The
learning rate is multiplied by 0.6 when the loss has not improved by a relative 5e-5 for
``learning_rate_update_patience`` (7) epochs, and the fit stops after
``learning_rate_updates_before_stopping`` (2) such cuts or ``max_epochs`` (1000) epochs,
keeping the epoch of least loss. ``diagnostics["converged"]`` (and ``"stopped_by_rule"``): it
stopped by that rule. These are irtorch's defaults, which its documentation uses
(``model.fit(train_data=data, algorithm=MML())``). The rule stops early: on LSAT7's 2PL, 8.4
log-likelihood units below the marginal optimum (``benchmarks/torch_family.py``; the probe of
2026-12-06 found a patience of 20 and 8 cuts bring it within 0.004), but irtorch's documentation
recommends no other setting, so no second entry is offered.

**Models** (irtorch's classes, :data:`~irtbench.estimators._torch_family.IRTORCH_CLASSES`):
``"2pl"`` its ``TwoParameterLogistic``, :math:`\sigma(a_j\theta + d_j)` under N(0, 1) skills,
the suite's 2PL with :math:`b_j = -d_j/a_j` (slopes of either sign); ``"3pl"`` its
``ThreeParameterLogistic`` (:math:`c_j + (1 - c_j)\sigma(a_j\theta + d_j)`, :math:`c_j` the
sigmoid of a free parameter started at :math:`\sigma(-1.1) = 0.25`, no prior: marginal ML, where
the suite's 3PL fits are Bayes modal; irtorch's docstring calls it "currently very unstable");
``"m2pl"`` the 2PL with ``latent_variables`` D (option ``dims``) under N(0, I): loadings
:math:`a_j`, intercepts :math:`d_j` (irtorch's MML refuses D > 3: the grid grows as
:math:`Q^D`). **Not the Rasch model**: irtorch's ``OneParameterLogistic`` under MML fixes the
skills at N(0, 1) (its covariance is the identity unless given), the model the suite declines
for mirt's "1PL" (:mod:`irtbench.estimators.py_irt`); it has no common slope to stand for the
skill SD.

**Skills**: irtorch's ``latent_scores(data, standard_errors=True)`` with its default
``theta_estimation="ML"`` (L-BFGS from 0, 40 steps, SE :math:`1/\sqrt{I(\hat\theta)}`); students
who got everything right or wrong keep the value where L-BFGS stopped with SE inf (no finite ML
skill). ``"EAP"`` (a 200-point grid on [-3, 3] under N(0, 1)) gives finite posterior means
and SDs. **No item SEs** (irtorch gives none).
"""

from __future__ import annotations

from irtbench.estimators import options as option
from irtbench.estimators._torch_family import COMMON_SPEC, IRTORCH, IrtorchPeer, python_option
from irtbench.estimators.base import register
from irtbench.models import get_model

#: the most latent dimensions irtorch's MML takes (its grid has Q^D points)
MAX_DIMS = 3
#: irtorch's ways of scoring skills with SEs
THETA_ESTIMATION = ("ML", "EAP")


@register
class IrtorchMML(IrtorchPeer):
    """irtorch's MML (gradient steps on a gridded marginal likelihood) in its own interpreter;
    see the module docstring for what it computes and how its models map onto the suite's."""

    name = "irtorch-mml"
    colour = 15
    objective = "marginal"
    method = "MML"
    models = ("2pl", "3pl", "m2pl")
    summary = ("peer: irtorch's marginal ML (Adam on a 15-point grid's likelihood; own venv, "
               "subprocess)")
    stopping_rule = ("epochs; stops after learning_rate_updates_before_stopping cuts of the "
                     "learning rate, keeping the best epoch")
    fit_keywords = ("max_epochs", "integration_method", "quadrature_points", "learning_rate",
                    "learning_rate_update_patience", "learning_rate_updates_before_stopping")
    spec = {
        "max_epochs": option.positive_int(1000, "cap on epochs (irtorch's)"),
        "integration_method": option.choice("quasi_mc", "irtorch's grid: 'quasi_mc' (its "
                                            "default: evenly spaced on [-3, 3]) or "
                                            "'gauss_hermite'", "quasi_mc", "gauss_hermite"),
        "quadrature_points": option.positive_int(None, "grid points a dimension (None: "
                                                 "irtorch's 15, 7, 5 for D = 1, 2, 3)",
                                                 none_ok=True, low=2),
        "learning_rate": option.positive(0.2, "Adam's initial learning rate (irtorch's)"),
        "learning_rate_update_patience": option.positive_int(
            7, "epochs without improvement before the rate is cut by 0.6 (irtorch's)"),
        "learning_rate_updates_before_stopping": option.positive_int(
            2, "cuts of the rate before it stops (irtorch's)"),
        "theta_estimation": option.choice("ML", "how latent_scores scores the skills: 'ML' "
                                          "(irtorch's default) or 'EAP'", *THETA_ESTIMATION),
        **COMMON_SPEC,
        "python": python_option(IRTORCH),
    }
    shortfalls = {
        "3pl": "irtorch's ML skills (latent_scores' default: L-BFGS from 0) under its 3PL "
               "correlate 0.52 with the truth in the battery's 400 x 20 against a floor of "
               "0.73 from the test's reliability",
        "m2pl": "irtorch's ML skills under its 2-dimensional 2PL correlate 0.31 with the truth "
                "(after the M2PL's alignment) in the battery's 400 x 20 against a floor of 0.64",
    }
    test_options: dict = {}
    warm_up_options = {"max_epochs": 2}

    def check_options(self, options) -> None:
        """irtorch's MML takes at most :data:`MAX_DIMS` dimensions."""
        super().check_options(options)
        dims = get_model(str(options["model"])).skill_dims(options)
        if dims is not None and dims > MAX_DIMS:
            raise ValueError(f"estimator {self.name!r}: irtorch's MML takes at most {MAX_DIMS} "
                             f"latent dimensions (its grid has points^D nodes), not dims={dims}; "
                             "irtorch-vae and irtorch-jml take more")

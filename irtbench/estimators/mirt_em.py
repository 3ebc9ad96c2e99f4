r"""``mirt-em``: Python mirt's marginal ML by EM (``mirt.fit_mirt``, its Rust EM), as a peer.

* ``model="2pl"``: ``fit_mirt(data, model="2PL")`` under N(0, 1) skills: mirt's own model, the
  same as ``mml-em``'s 2PL; EAP skills and their SEs by ``mirt.fscores``.
* ``model="rasch"``: mirt's ``"1PL"`` fixes every discrimination at 1 *and* the skill SD at 1, a
  different model (on skills of another spread it shrinks or stretches the difficulties). The
  closest it offers to the Rasch model with an estimated skill SD is the 2PL with every slope
  tied (``constraints=[("discrimination", all items)]``, which its documentation calls "the
  Rasch structure with an estimated common slope"); its parameters are mapped onto the Rasch
  model as described in :mod:`irtbench.estimators._peers` (difficulty = slope x mirt's
  difficulty, skill SD = the slope). mirt skips its fast 2PL path for constrained fits.
* ``model="4pl"``: ``fit_mirt(data, model="4PL", priors=...)``, mirt's four-parameter logistic
  :math:`c + (u - c)\sigma(a(\theta - b))` (its ``guessing`` and ``upper``) under N(0, 1)
  skills, Bayes modal with the suite's Beta priors (mirt's ``BetaPrior`` on each asymptote in its
  own scale, from ``prior_guessing_*`` and ``prior_ceiling_*``; weight 0: Beta(1, 1), flat):
  the posterior ``mml-em``'s 4PL maximises, by mirt's bounded optimiser. Its SEs add the
  priors' curvature (mirt's). The 3PL is not offered here (untested; mirt's ``"3PL"`` would take
  the same priors).

Options: ``nodes`` (mirt's ``n_quadpts``: 61, as R mirt's default for one dimension and as
``mml-em``'s 2PL; Python mirt's own default, 21, leaves its 2PL estimates about 0.17 from the
converged integral at 10000x100 and its EAP intervals too narrow; 121 nodes bring the estimates
within 1e-4, measured, README), ``tol`` (1e-4, mirt's), ``max_iter`` (500, mirt's).
"""

from __future__ import annotations

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators._peers import PeerEstimator, PeerFit, common_slope_as_rasch
from irtbench.estimators.base import register
from irtbench.models import get_model
from irtbench.models.asymptotic import ASYMPTOTES

#: mirt's names of the suite's models (the Rasch model: its 2PL with one slope) and asymptotes
MIRT_MODELS = {"rasch": "2PL", "2pl": "2PL", "4pl": "4PL"}
#: the models mirt fits as its 2PL with one slope shared by every item
COMMON_SLOPE = frozenset({"rasch"})
MIRT_ITEMS = {"guessing": "guessing", "ceiling": "upper"}


@register
class MirtEM(PeerEstimator):
    """Python mirt's EM (``mirt.fit_mirt``), wrapped; see the module docstring for how its
    models map onto the suite's."""

    name = "mirt-em"
    colour = 6
    objective = "marginal"
    backend = "mirt"
    requirements = ("mirt",)
    summary = "peer: Python mirt's marginal ML by EM (Rust), EAP skills by mirt.fscores"
    models = ("rasch", "2pl", "4pl")
    spec = {
        "nodes": option.positive_int(61, "mirt's n_quadpts (R mirt's default for one "
                                      "dimension; Python mirt's 21 is too coarse, module "
                                      "docstring)"),
        "tol": option.positive(1e-4, "mirt's convergence tolerance"),
        "max_iter": option.positive_int(500, "mirt's cap on EM iterations"),
        **option.model_options("prior_guessing_mean", "prior_guessing_weight",
                               "prior_ceiling_mean", "prior_ceiling_weight"),
    }
    warm_up_options = {"max_iter": 2}

    def estimate(self, responses: np.ndarray, options: dict) -> PeerFit:
        import mirt
        from mirt.estimation.priors import BetaPrior

        n_questions = responses.shape[1]
        model = options["model"]
        constraints = ([("discrimination", list(range(n_questions)))]
                       if model in COMMON_SLOPE else None)
        asymptotes = get_model(model).item_parameters[2:]  # after the difficulty and slope
        priors = {MIRT_ITEMS[name]: BetaPrior(*ASYMPTOTES[name].prior_of(options))
                  for name in asymptotes}
        result = mirt.fit_mirt(responses, model=MIRT_MODELS[model],
                               n_quadpts=int(options["nodes"]), tol=float(options["tol"]),
                               max_iter=int(options["max_iter"]), constraints=constraints,
                               priors=priors or None)
        scores = mirt.fscores(result, responses, method="EAP", n_quadpts=int(options["nodes"]))
        parameters, errors = result.model.parameters, result.standard_errors

        def values(source: dict, name: str) -> np.ndarray:
            return np.asarray(source[name], dtype=np.float64).ravel()

        discrimination = values(parameters, "discrimination")
        fit = PeerFit(
            np.asarray(scores.theta, dtype=np.float64).ravel(),
            np.asarray(scores.standard_error, dtype=np.float64).ravel(),
            np.asarray(parameters["difficulty"], dtype=np.float64).ravel(),
            np.asarray(errors["difficulty"], dtype=np.float64).ravel(),
            discrimination,
            np.asarray(errors["discrimination"], dtype=np.float64).ravel(),
            int(result.n_iterations),
            float(result.log_likelihood),
            {"converged": bool(result.converged)},
            **{name: values(parameters, MIRT_ITEMS[name]) for name in asymptotes},
            **{f"{name}_se": values(errors, MIRT_ITEMS[name]) for name in asymptotes},
        )
        if model in COMMON_SLOPE:
            slope_se = float(np.asarray(errors["discrimination"]).ravel()[0])
            return common_slope_as_rasch(fit, float(discrimination[0]), slope_se)
        return fit

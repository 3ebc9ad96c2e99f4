"""``girth-mml``: girth's marginal ML (``girth.onepl_mml``, ``girth.twopl_mml``), as a peer.

* ``model="2pl"``: ``twopl_mml`` under N(0, 1) skills, girth's quadrature; its skills are the
  ``Ability`` it returns (EAP). No SEs (girth offers only a bootstrap).
* ``model="rasch"``: girth's ``rasch_mml`` fixes the discrimination at 1 and the skill SD at 1
  (another model when the skills' spread is not 1); ``onepl_mml`` estimates one common
  discrimination under N(0, 1) skills, which is the Rasch model with an estimated skill SD
  (:mod:`irtbench.estimators._peers` says how it is mapped); skills by ``girth.ability_eap``.

Missing responses are passed as girth's ``INVALID_RESPONSE``. Option ``nodes``: girth's
``quadrature_n`` (None: girth's default; girth refuses fewer than 8 nodes with an
``AssertionError``, so the option's constraint says so).
"""

from __future__ import annotations

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators._peers import PeerEstimator, PeerFit, common_slope_as_rasch
from irtbench.estimators.base import register


def girth_matrix(responses: np.ndarray) -> np.ndarray:
    """girth's layout: ``[items x persons]`` integers, missing as ``INVALID_RESPONSE``."""
    import girth

    return np.where(np.isnan(responses), girth.INVALID_RESPONSE, responses).astype(int).T


@register
class GirthMML(PeerEstimator):
    """girth's marginal ML, wrapped; see the module docstring for the models' mapping."""

    name = "girth-mml"
    colour = 1
    objective = "marginal"
    gives_standard_errors = False
    reports_iterations = False
    backend = "girth"
    requirements = ("girth",)
    summary = "peer: girth's marginal ML (onepl_mml as Rasch with estimated SD, twopl_mml)"
    spec = {"nodes": option.positive_int(None, "girth's quadrature_n (girth takes 8 or more); "
                                          "None: girth's default", none_ok=True, low=8)}

    def estimate(self, responses: np.ndarray, options: dict) -> PeerFit:
        import girth

        data = girth_matrix(responses)
        settings = {} if options["nodes"] is None else {"quadrature_n": int(options["nodes"])}
        return FITS[options["model"]](girth, data, settings)


def twopl(girth, data: np.ndarray, settings: dict) -> PeerFit:  # noqa: ANN001 - the module
    """``twopl_mml``: its EAP ``Ability``, difficulties and discriminations."""
    out = girth.twopl_mml(data, options=settings)
    return PeerFit(np.asarray(out["Ability"], dtype=np.float64), None,
                   np.asarray(out["Difficulty"], dtype=np.float64), None,
                   np.asarray(out["Discrimination"], dtype=np.float64), None, 0,
                   float("nan"), {})


def common_slope(girth, data: np.ndarray, settings: dict) -> PeerFit:  # noqa: ANN001
    """``onepl_mml`` (one common slope under N(0, 1)) mapped onto the Rasch model, skills by
    ``ability_eap``."""
    out = girth.onepl_mml(data, options=settings)
    slope = float(out["Discrimination"])
    difficulty = np.asarray(out["Difficulty"], dtype=np.float64)
    skill = girth.ability_eap(data, difficulty, slope, options=settings)
    fit = PeerFit(np.asarray(skill, dtype=np.float64), None, difficulty, None, None, None, 0,
                  float("nan"), {})
    return common_slope_as_rasch(fit, slope)


#: girth's fit of each model it fits
FITS = {"rasch": common_slope, "2pl": twopl}

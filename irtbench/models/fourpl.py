r"""The four-parameter logistic (4PL) model: the logistic curve between a floor and a ceiling,

.. math::
    P(Y_{ij} = 1) = c_j + (u_j - c_j)\,\sigma\big(a_j(\theta_i - b_j)\big)

the 3PL (:mod:`irtbench.models.threepl`) with an upper asymptote, the **ceiling** :math:`u_j`,
:math:`0 \le c_j < u_j \le 1`: the chance that a student of very high skill answers right,
below 1 where strong students slip (a miskeyed or ambiguous item, careless errors; on LLM
benchmarks, the questions whose keys are wrong, which metabench fits the 4PL for), with a
Beta(20, 2) prior on it by default (mode 0.95) beside the floor's Beta(6, 16). Composed from
the curve between asymptotes, written once in :mod:`irtbench.models.asymptotic` (which says why
the asymptotes need priors and how the bounds are made); this file declares the model.
"""

from __future__ import annotations

from irtbench.models.asymptotic import AsymptoticLogistic

__all__ = ["FourPL"]


class FourPL(AsymptoticLogistic):
    r"""The 4PL, :math:`P(Y_{ij} = 1) = c_j + (u_j - c_j)\sigma(a_j(\theta_i - b_j))` (module
    docstring): the curve between asymptotes with a floor and a ceiling."""

    name = "4pl"
    title = "4PL"
    asymptotes = ("guessing", "ceiling")
    formula = ("P = guessing + (ceiling - guessing) * sigmoid(discrimination * "
               "(skill - difficulty))")

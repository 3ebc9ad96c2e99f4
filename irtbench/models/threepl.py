r"""The three-parameter logistic (3PL) model: the logistic curve above a floor,

.. math::
    P(Y_{ij} = 1) = c_j + (1 - c_j)\,\sigma\big(a_j(\theta_i - b_j)\big)

with discrimination :math:`a_j` (its sign as the 2PL's: free in ``mml-em``, positive in the
Adam fits), difficulty :math:`b_j` and a floor :math:`c_j \in [0, 1)` (the "guessing"
parameter: the chance that a student of very low skill answers right, near 1/k for a
multiple-choice item of k options; LLM benchmarks: four options, a floor near 0.25), with
BILOG-MG's Beta(6, 16) prior on it by default. Composed from the curve between asymptotes,
written once in :mod:`irtbench.models.asymptotic` (which says why the floor needs a prior and
how the bounds are made); this file declares the model.
"""

from __future__ import annotations

from irtbench.models.asymptotic import AsymptoticLogistic

__all__ = ["ThreePL"]


class ThreePL(AsymptoticLogistic):
    r"""The 3PL, :math:`P(Y_{ij} = 1) = c_j + (1 - c_j)\sigma(a_j(\theta_i - b_j))` (module
    docstring): the curve between asymptotes with a floor."""

    name = "3pl"
    title = "3PL"
    asymptotes = ("guessing",)
    formula = "P = guessing + (1 - guessing) * sigmoid(discrimination * (skill - difficulty))"
